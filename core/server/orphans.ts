/**
 * After a crash, sandbox processes started by the dead server may still run (their wall-clock
 * limit was enforced by that server). They are found by their one write permission, which names
 * the job's output folder, and killed by process id.
 *
 * @module
 */

/**
 * Kills the processes whose command line grants write access to exactly one of `outDirs`
 * (`--allow-write=<dir>`); returns their process ids. Linux only (reads `/proc`); elsewhere, or
 * without permission, it finds nothing.
 */
export async function killOrphanedRuns(outDirs: readonly string[]): Promise<number[]> {
  if (outDirs.length === 0) return [];
  const wanted = new Set<string>();
  for (const d of outDirs) {
    wanted.add(`--allow-write=${d}`);
    try {
      wanted.add(`--allow-write=${await Deno.realPath(d)}`);
    } catch {
      // folder gone: its literal path still identifies the process
    }
  }
  const killed: number[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir("/proc"));
  } catch {
    return killed;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e.name)) continue;
    const pid = Number(e.name);
    if (pid === Deno.pid) continue;
    let args: string[];
    try {
      args = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
    } catch {
      continue; // exited meanwhile, or not readable
    }
    if (!args.some((a) => wanted.has(a))) continue;
    try {
      Deno.kill(pid, "SIGKILL");
      killed.push(pid);
    } catch {
      // exited meanwhile, or not ours to kill
    }
  }
  return killed;
}
