/**
 * The output quota counts what uses disk: the blocks of files and of folders (an empty folder
 * takes a block too), and every entry. Scans stop as soon as a limit is passed, so one scan
 * costs at most `maxEntries` lookups however many files a run created. After a run, outputs are
 * tidied: setuid, setgid, sticky and world-write bits are cleared, and anything that is neither
 * a regular file nor a folder (symbolic links, FIFOs, sockets) is removed, and so are temporary
 * files (they never count as outputs).
 *
 * @module
 */

/** Disk use of an output folder as counted against the quota. */
export interface OutputUsage {
  /** Bytes on disk: for each file and folder, the larger of its size and its allocated blocks. */
  bytes: number;
  /** Files, folders and other entries. */
  entries: number;
  /** Set when the scan stopped early because a limit was passed. */
  over: "bytes" | "entries" | null;
}

/** Limits of {@linkcode scanOutput}. */
export interface OutputLimits {
  maxBytes: number;
  maxEntries: number;
}

function diskBytes(st: Deno.FileInfo): number {
  return Math.max(st.size, (st.blocks ?? 0) * 512);
}

/**
 * Counts the disk use of `root` (itself excluded), stopping at the first passed limit. Tolerates
 * entries that vanish while it runs.
 *
 * @example
 * ```ts
 * const u = await scanOutput("out", { maxBytes: 1 << 30, maxEntries: 100_000 });
 * if (u.over) console.log(`over the ${u.over} limit`);
 * ```
 */
export async function scanOutput(root: string, limits: OutputLimits): Promise<OutputUsage> {
  const u: OutputUsage = { bytes: 0, entries: 0, over: null };
  const stack = [root];
  while (stack.length) {
    const dir = stack.pop()!;
    let it: AsyncIterable<Deno.DirEntry>;
    try {
      it = Deno.readDir(dir);
    } catch {
      continue;
    }
    try {
      for await (const e of it) {
        u.entries++;
        if (u.entries > limits.maxEntries) {
          u.over = "entries";
          return u;
        }
        const p = `${dir}/${e.name}`;
        try {
          u.bytes += diskBytes(await Deno.lstat(p));
        } catch {
          // vanished between readDir and lstat
        }
        if (u.bytes > limits.maxBytes) {
          u.over = "bytes";
          return u;
        }
        if (e.isDirectory) stack.push(p);
      }
    } catch {
      // folder vanished while listed
    }
  }
  return u;
}

/** What {@linkcode tidyOutput} changed. */
export interface TidyReport {
  /** Paths (relative) whose mode lost setuid/setgid/sticky/world-write bits. */
  modesFixed: string[];
  /** Paths (relative) of removed entries that were neither files nor folders. */
  removed: string[];
  /** Temporary files left behind and removed. */
  leftovers: string[];
}

/** Mode bits cleared from outputs: setuid, setgid, sticky, world-writable. */
const STRIPPED_BITS = 0o7002;

/**
 * After a run: clears setuid, setgid, sticky and world-write bits of the output folder and
 * everything in it, removes symbolic links and special files, and removes files whose name
 * matches `temporary` (the writers' temporary names: they never count as outputs).
 */
export async function tidyOutput(root: string, temporary: RegExp): Promise<TidyReport> {
  const r: TidyReport = { modesFixed: [], removed: [], leftovers: [] };
  const fix = async (p: string, rel: string, st: Deno.FileInfo): Promise<void> => {
    const mode = st.mode ?? 0;
    if (mode & STRIPPED_BITS) {
      await Deno.chmod(p, mode & 0o777 & ~STRIPPED_BITS);
      r.modesFixed.push(rel || ".");
    }
  };
  await fix(root, "", await Deno.lstat(root));
  const stack: [string, string][] = [[root, ""]];
  while (stack.length) {
    const [dir, rel] = stack.pop()!;
    for await (const e of Deno.readDir(dir)) {
      const p = `${dir}/${e.name}`;
      const rp = rel ? `${rel}/${e.name}` : e.name;
      const st = await Deno.lstat(p);
      if (st.isDirectory) {
        await fix(p, rp, st);
        stack.push([p, rp]);
      } else if (st.isFile) {
        if (temporary.test(e.name)) {
          await Deno.remove(p);
          r.leftovers.push(rp);
        } else await fix(p, rp, st);
      } else {
        await Deno.remove(p);
        r.removed.push(rp);
      }
    }
  }
  return r;
}

/** Removes everything in `root` except the entries named in `keep` (after a quota breach). */
export async function emptyFolder(root: string, keep: readonly string[] = []): Promise<void> {
  for await (const e of Deno.readDir(root)) {
    if (keep.includes(e.name)) continue;
    await Deno.remove(`${root}/${e.name}`, { recursive: true }).catch(() => {});
  }
}
