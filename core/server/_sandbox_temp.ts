/**
 * TEMPORARY stand-in for `core/runtime/sandbox.ts` (same API), used by the server until the
 * runtime's sandbox lands; then this file and its harness are deleted.
 *
 * @module
 */

/** Options of one sandboxed recipe run. */
export interface SandboxOptions {
  recipe: string;
  inputs: string[];
  models?: string[];
  outDir: string;
  params?: Record<string, unknown>;
  seed?: number;
  timeoutMs?: number;
  memoryMb?: number;
  maxOutputBytes?: number;
  signal?: AbortSignal;
  onLog?: (line: string) => void;
  onProgress?: (done: number, total: number) => void;
}

/** How a sandboxed run ended. */
export interface SandboxResult {
  ok: boolean;
  exitCode: number | null;
  reason?: "timeout" | "memory" | "permission" | "output-quota" | "error" | "cancelled";
  error?: string;
  durationMs: number;
  manifestPath?: string;
}

const HARNESS = new URL("./_sandbox_temp_harness.ts", import.meta.url).pathname;
const PROGRESS = "@@petrel-progress ";

async function dirSize(path: string): Promise<number> {
  let total = 0;
  try {
    for await (const e of Deno.readDir(path)) {
      const p = `${path}/${e.name}`;
      if (e.isDirectory) total += await dirSize(p);
      else if (e.isFile) total += (await Deno.lstat(p)).size;
    }
  } catch {
    // vanished while scanning
  }
  return total;
}

/** Runs a recipe in its own Deno process with least permissions (temporary implementation). */
export async function runSandboxed(o: SandboxOptions): Promise<SandboxResult> {
  const t0 = performance.now();
  await Deno.mkdir(o.outDir, { recursive: true });
  const reads = [o.recipe, ...o.inputs, ...(o.models ?? []), o.outDir];
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const k of ["HOME", "DENO_DIR"]) {
    try {
      const v = Deno.env.get(k);
      if (v) env[k] = v;
    } catch {
      // no env permission: defaults
    }
  }
  const spec = JSON.stringify({
    recipe: o.recipe,
    inputs: o.inputs,
    models: o.models ?? [],
    outDir: o.outDir,
    params: o.params ?? {},
    seed: o.seed,
  });
  const args = [
    "run",
    "--no-prompt",
    "--cached-only",
    `--allow-read=${reads.join(",")}`,
    `--allow-write=${o.outDir}`,
    `--v8-flags=--max-old-space-size=${o.memoryMb ?? 4096}`,
    HARNESS,
    spec,
  ];
  const child = new Deno.Command(Deno.execPath(), {
    args,
    clearEnv: true,
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let reason: SandboxResult["reason"] | undefined;
  const kill = (why: NonNullable<SandboxResult["reason"]>): void => {
    if (reason) return;
    reason = why;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  };
  const timer = setTimeout(() => kill("timeout"), o.timeoutMs ?? 3600_000);
  const onAbort = (): void => kill("cancelled");
  if (o.signal?.aborted) onAbort();
  o.signal?.addEventListener("abort", onAbort);
  const maxOut = o.maxOutputBytes ?? Infinity;
  let polling = true;
  const poll = (async () => {
    while (polling) {
      await new Promise((r) => setTimeout(r, 150));
      if (polling && (await dirSize(o.outDir)) > maxOut) kill("output-quota");
      // --max-old-space-size caps only the V8 heap; ArrayBuffers live outside it: watch RSS.
      try {
        const st = await Deno.readTextFile(`/proc/${child.pid}/status`);
        const kb = Number(/VmRSS:\s+(\d+)/.exec(st)?.[1] ?? 0);
        if (kb > ((o.memoryMb ?? 4096) + 256) * 1024) kill("memory");
      } catch {
        // gone or no /proc
      }
    }
  })();
  let logBytes = 0;
  const stderrTail: string[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>, isErr: boolean): Promise<void> => {
    let buf = "";
    const dec = new TextDecoder();
    const handle = (line: string): void => {
      logBytes += line.length + 1;
      if (logBytes > maxOut) kill("output-quota");
      if (!isErr && line.startsWith(PROGRESS)) {
        const [d, t] = line.slice(PROGRESS.length).split(" ").map(Number);
        o.onProgress?.(d, t);
        return;
      }
      if (isErr) {
        stderrTail.push(line);
        if (stderrTail.length > 20) stderrTail.shift();
      }
      o.onLog?.(line);
    };
    for await (const chunk of stream) {
      buf += dec.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        handle(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      if (buf.length > 8192) {
        handle(buf);
        buf = "";
      }
    }
    if (buf) handle(buf);
  };
  const pumps = Promise.all([pump(child.stdout, false), pump(child.stderr, true)]);
  const status = await child.status;
  await pumps.catch(() => {});
  polling = false;
  await poll;
  clearTimeout(timer);
  o.signal?.removeEventListener("abort", onAbort);
  try {
    await child.stdin.close();
  } catch {
    // closed
  }
  const durationMs = performance.now() - t0;
  const text = stderrTail.join("\n");
  if (!reason && status.success) {
    let manifestPath: string | undefined;
    try {
      await Deno.stat(`${o.outDir}/manifest.json`);
      manifestPath = `${o.outDir}/manifest.json`;
    } catch {
      // none
    }
    return { ok: true, exitCode: 0, durationMs, manifestPath };
  }
  if (!reason) {
    if (/out of memory|heap limit|allocation failed/i.test(text)) reason = "memory";
    else if (/NotCapable|PermissionDenied|Requires \S+ access/.test(text)) reason = "permission";
    else reason = "error";
  }
  const messages: Record<string, string> = {
    timeout: `the recipe ran longer than its limit of ${o.timeoutMs} ms and was stopped`,
    memory: `the recipe used more than its memory cap of ${o.memoryMb} MiB and was stopped`,
    "output-quota": `the recipe wrote more than its output quota of ${o.maxOutputBytes} bytes`,
    cancelled: "the run was cancelled",
  };
  const last = stderrTail.filter((l) => l.trim()).slice(-3).join(" | ");
  return {
    ok: false,
    exitCode: status.code,
    reason,
    error: messages[reason] ?? (last || `the recipe exited with code ${status.code}`),
    durationMs,
  };
}
