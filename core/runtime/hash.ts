/**
 * SHA-256 of files and folders (streamed), and deterministic folder walks.
 *
 * @module
 */

import { createHash } from "node:crypto";

/**
 * Hex SHA-256 of bytes.
 *
 * @example
 * ```ts
 * import { sha256Bytes } from "@petrel/petrel";
 * sha256Bytes("abc"); // "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
 * ```
 */
export function sha256Bytes(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * Hex SHA-256 of a file, read in chunks (works for files larger than memory).
 *
 * @example
 * ```ts
 * import { readManifest, sha256File } from "@petrel/petrel";
 * const m = await readManifest("osem/manifest.json");
 * for (const f of m.inputs) {
 *   if ((await sha256File(f.path)) !== f.sha256) console.warn(`${f.path} changed since the run`);
 * }
 * ```
 */
export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  using f = await Deno.open(path, { read: true });
  const buf = new Uint8Array(1 << 20);
  while (true) {
    const n = await f.read(buf);
    if (n === null) break;
    h.update(buf.subarray(0, n));
  }
  return h.digest("hex");
}

/** A file found by {@linkcode walkFiles}. */
export interface WalkedFile {
  /** Absolute path. */
  path: string;
  /** Path relative to the walked root, `/`-separated. */
  relative: string;
  /** Size in bytes. */
  bytes: number;
}

/**
 * Every regular file under `root` (recursively, symlinks not followed), sorted by relative path.
 * A file `root` yields itself with its base name as relative path.
 *
 * @example
 * ```ts
 * import { walkFiles } from "@petrel/petrel";
 * for (const f of await walkFiles("sim")) console.log(f.relative, f.bytes); // e.g. "mu.nii 4194656"
 * ```
 */
export async function walkFiles(root: string): Promise<WalkedFile[]> {
  const st = await Deno.lstat(root);
  if (st.isFile) {
    return [{ path: root, relative: root.split("/").pop()!, bytes: st.size }];
  }
  const out: WalkedFile[] = [];
  async function rec(dir: string, rel: string): Promise<void> {
    for await (const e of Deno.readDir(dir)) {
      const p = `${dir}/${e.name}`;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await rec(p, r);
      else if (e.isFile) out.push({ path: p, relative: r, bytes: (await Deno.lstat(p)).size });
    }
  }
  if (st.isDirectory) await rec(root, "");
  out.sort((a, b) => (a.relative < b.relative ? -1 : a.relative > b.relative ? 1 : 0));
  return out;
}

/**
 * Total bytes and number of entries under `root` (tolerant of concurrent deletes).
 *
 * @example
 * ```ts
 * import { folderUsage } from "@petrel/petrel";
 * const { bytes, entries } = await folderUsage("out/osem");
 * console.log(`${(bytes / 2 ** 20).toFixed(1)} MiB in ${entries} files and folders`);
 * ```
 */
export async function folderUsage(root: string): Promise<{ bytes: number; entries: number }> {
  let bytes = 0;
  let entries = 0;
  const stack = [root];
  while (stack.length) {
    const dir = stack.pop()!;
    try {
      for await (const e of Deno.readDir(dir)) {
        entries++;
        const p = `${dir}/${e.name}`;
        if (e.isDirectory) stack.push(p);
        else {
          try {
            bytes += (await Deno.lstat(p)).size;
          } catch {
            // vanished between readDir and lstat
          }
        }
      }
    } catch {
      // folder vanished
    }
  }
  return { bytes, entries };
}
