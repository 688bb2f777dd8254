/**
 * The sandbox runner: runs a recipe in a child `deno run` process that may only read its
 * inputs, models, the recipe and petrel's own sources, and write its output folder; no network,
 * environment, subprocesses, FFI or system information. The runner enforces a wall-clock limit,
 * a memory cap (V8 heap flag + resident-memory polling), an output-size quota (folder polling,
 * plus `ulimit -f` when `/bin/sh` may be run) and cancellation, streams log lines and progress,
 * and writes the provenance manifest into the output folder.
 *
 * Used by the `petrel` CLI and by the reconstruction server.
 *
 * @module
 */

import type { AdapterReport } from "../gpu/context.ts";
import { folderUsage, sha256File } from "./hash.ts";
import {
  hashOutputs,
  hashTree,
  type Manifest,
  MANIFEST_FORMAT,
  MANIFEST_NAME,
  runtimeVersions,
  writeManifest,
} from "./manifest.ts";
import { decodeMessage, type HarnessErrorKind, type HarnessSpec } from "./protocol.ts";

/** What to run and under which limits. */
export interface SandboxOptions {
  /** Path of the recipe module (.ts). */
  recipe: string;
  /** Input files or folders the recipe may read (the first folder is `ctx.inDir`). */
  inputs: string[];
  /** Model files or folders the recipe may read (the first folder is `ctx.modelsDir`). */
  models?: string[];
  /** Output folder (created if missing; must be empty). The only place the recipe may write. */
  outDir: string;
  /** Raw parameters; strings are parsed as JSON when the schema wants another type. */
  params?: Record<string, unknown>;
  /** Seed (default {@linkcode SANDBOX_DEFAULTS}.seed). */
  seed?: number;
  /** Wall-clock limit in ms (default 10 minutes). */
  timeoutMs?: number;
  /** Memory cap in MiB for the child (V8 heap and resident set; default 4096). */
  memoryMb?: number;
  /** Output-size quota in bytes (default 1 GiB). */
  maxOutputBytes?: number;
  /** Aborting kills the child; the result has reason "cancelled". */
  signal?: AbortSignal;
  /** Every log line of the child (stdout and stderr, protocol lines excluded). */
  onLog?: (line: string) => void;
  /** Progress reported by the recipe through `ctx.progress`. */
  onProgress?: (done: number, total: number) => void;
}

/** How a sandboxed run ended. */
export interface SandboxResult {
  ok: boolean;
  /** Exit code of the child (null when it never started). */
  exitCode: number | null;
  reason?: "timeout" | "memory" | "permission" | "output-quota" | "error" | "cancelled";
  /** One-sentence description of the failure. */
  error?: string;
  durationMs: number;
  /** Path of `manifest.json` in the output folder (absent when the run never started). */
  manifestPath?: string;
  /**
   * Finer kind when reason is "error": "params" (invalid parameters), "input" (missing or
   * malformed inputs, bad options), "recipe" (the recipe threw), "crash" (the child died).
   */
  errorKind?: "params" | "input" | "recipe" | "crash";
}

/** Defaults of the limits in {@linkcode SandboxOptions}. */
export const SANDBOX_DEFAULTS = {
  seed: 0,
  timeoutMs: 10 * 60_000,
  memoryMb: 4096,
  maxOutputBytes: 1 << 30,
} as const;

/** Longest log line passed on (longer ones are cut) and total log bytes passed on per run. */
const MAX_LINE = 8192;
const MAX_LOG_BYTES = 8 << 20;
const POLL_MS = 100;
/** Most entries (files + folders) an output folder may hold. */
const MAX_OUTPUT_ENTRIES = 100_000;

/** Absolute path of petrel's checkout (the folder holding deno.json). */
export function petrelRoot(): string {
  const url = new URL("../../", import.meta.url);
  if (url.protocol !== "file:") {
    throw new Error(`the petrel sandbox needs a local checkout, but petrel runs from ${url.href}`);
  }
  return decodeURIComponent(url.pathname).replace(/\/$/, "");
}

/**
 * Paths the child may read besides the run's own inputs, models, recipe and output folder:
 * petrel's sources (`mod.ts`, `deno.json`, `shaders/`, every `core/` area except `server/`) and
 * `node_modules/` (npm packages that load their own files, e.g. onnxruntime-web's .wasm).
 */
export function petrelReadPaths(root = petrelRoot()): string[] {
  const core: string[] = [];
  try {
    for (const e of Deno.readDirSync(`${root}/core`)) {
      if (e.name !== "server") core.push(`${root}/core/${e.name}`);
    }
  } catch {
    core.push(`${root}/core`);
  }
  return [
    ...["mod.ts", "deno.json", "shaders", "node_modules"].map((p) => `${root}/${p}`),
    ...core.sort(),
  ];
}

/** The environment passed to the child: nothing but what Deno and the GPU driver need. */
function childEnv(): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  let all: Record<string, string> = {};
  try {
    all = Deno.env.toObject();
  } catch {
    // no env permission: Deno falls back to its defaults
  }
  const keep =
    /^(HOME|PATH|DENO_DIR|XDG_CACHE_HOME|XDG_RUNTIME_DIR|LANG|LC_ALL|TZ|(VK|MESA|LIBGL|GALLIUM|LP|WGPU|__GLX|__EGL|DRI)_[A-Z0-9_]*|VK_ICD_FILENAMES|NVIDIA_[A-Z_]*|CUDA_VISIBLE_DEVICES|LD_LIBRARY_PATH)$/;
  for (const [k, v] of Object.entries(all)) if (keep.test(k)) env[k] = v;
  return env;
}

function canRunShell(): boolean {
  try {
    Deno.statSync("/bin/sh");
    return Deno.permissions.querySync({ name: "run", command: "/bin/sh" }).state === "granted";
  } catch {
    return false;
  }
}

/** The child command line for a validated spec (exported for the docs and tests). */
export function sandboxArgs(
  spec: Pick<HarnessSpec, "recipe" | "inputs" | "models" | "outDir">,
  memoryMb: number,
  root = petrelRoot(),
): string[] {
  const reads = [
    spec.recipe,
    ...spec.inputs,
    ...spec.models,
    spec.outDir,
    ...petrelReadPaths(root),
  ].filter((p) => p !== "");
  const args = [
    "run",
    "--quiet",
    "--no-prompt",
    "--no-lock",
    "--cached-only",
    "--no-remote",
    "--node-modules-dir=manual",
    `--config=${root}/deno.json`,
    `--allow-read=${reads.join(",")}`,
  ];
  if (spec.outDir) args.push(`--allow-write=${spec.outDir}`);
  args.push(`--v8-flags=--max-old-space-size=${memoryMb}`, `${root}/core/runtime/harness.ts`);
  return args;
}

class InputProblem extends Error {}

async function realPathOf(p: string, what: string): Promise<string> {
  if (p.includes(",")) {
    throw new InputProblem(
      `${what} path "${p}" contains a comma, which Deno's permission lists cannot express`,
    );
  }
  try {
    return await Deno.realPath(p);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new InputProblem(`${what} "${p}" does not exist`);
    throw new InputProblem(`${what} "${p}" cannot be accessed: ${(e as Error).message}`);
  }
}

function within(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith("/") ? parent : parent + "/");
}

interface Prepared {
  recipe: string;
  inputs: string[];
  models: string[];
  outDir: string;
}

async function prepare(o: SandboxOptions, mode: "run" | "describe"): Promise<Prepared> {
  const recipe = await realPathOf(o.recipe, "recipe");
  if (!(await Deno.stat(recipe)).isFile) {
    throw new InputProblem(`recipe "${o.recipe}" is not a file`);
  }
  if (!/\.(ts|js|mts|mjs)$/.test(recipe)) {
    throw new InputProblem(`recipe "${o.recipe}" must be a .ts or .js module`);
  }
  const inputs = await Promise.all((o.inputs ?? []).map((p) => realPathOf(p, "input")));
  const models = await Promise.all((o.models ?? []).map((p) => realPathOf(p, "model")));
  if (mode === "describe") return { recipe, inputs, models, outDir: "" };
  if (!o.outDir) throw new InputProblem("an output folder is required");
  if (o.outDir.includes(",")) {
    throw new InputProblem(`output folder "${o.outDir}" contains a comma`);
  }
  await Deno.mkdir(o.outDir, { recursive: true });
  const outDir = await Deno.realPath(o.outDir);
  if (!(await Deno.stat(outDir)).isDirectory) {
    throw new InputProblem(`output "${o.outDir}" is not a folder`);
  }
  const root = petrelRoot();
  const guarded = [root, recipe, ...inputs, ...models];
  for (const g of guarded) {
    if (within(g, outDir)) {
      throw new InputProblem(
        `output folder "${o.outDir}" contains ${
          g === root ? "petrel itself" : `"${g}"`
        }; the run could overwrite it. Choose a separate folder`,
      );
    }
  }
  for (const p of [...inputs, ...models]) {
    if (within(outDir, p)) {
      throw new InputProblem(
        `output folder "${o.outDir}" lies inside the input "${p}"; choose a separate folder`,
      );
    }
  }
  for await (const _ of Deno.readDir(outDir)) {
    throw new InputProblem(
      `output folder "${o.outDir}" is not empty; choose a new folder or empty it`,
    );
  }
  return { recipe, inputs, models, outDir };
}

interface ChildOutcome {
  exitCode: number | null;
  signal: string | null;
  killed?: "timeout" | "memory" | "output-quota" | "cancelled";
  killDetail?: string;
  harnessError?: { kind: HarnessErrorKind; message: string };
  done: boolean;
  adapter: AdapterReport | null;
  adapterMs: number | null;
  importMs: number | null;
  runMs: number | null;
  params: Record<string, unknown> | null;
  describe: { description: string | null; schema: unknown } | null;
  stderrTail: string;
  spawnError?: string;
}

async function runChild(
  prep: Prepared,
  spec: HarnessSpec,
  limits: { timeoutMs: number; memoryMb: number; maxOutputBytes: number },
  o: Pick<SandboxOptions, "signal" | "onLog" | "onProgress">,
): Promise<ChildOutcome> {
  const out: ChildOutcome = {
    exitCode: null,
    signal: null,
    done: false,
    adapter: null,
    adapterMs: null,
    importMs: null,
    runMs: null,
    params: null,
    describe: null,
    stderrTail: "",
  };
  let deno = "deno";
  let child: Deno.ChildProcess;
  try {
    deno = Deno.execPath();
    const args = sandboxArgs(prep, limits.memoryMb);
    let cmd = deno;
    let cmdArgs = args;
    if (spec.mode === "run" && canRunShell()) {
      // A per-file size cap enforced by the kernel (SIGXFSZ; dash counts 512-byte blocks) backs
      // up the folder polling. If the shell refuses the limit, the run goes on without it.
      const blocks = Math.max(1, Math.ceil(limits.maxOutputBytes / 512));
      cmd = "/bin/sh";
      cmdArgs = [
        "-c",
        'ulimit -f "$1" 2>/dev/null; shift; exec "$@"',
        "sh",
        String(blocks),
        deno,
        ...args,
      ];
    }
    child = new Deno.Command(cmd, {
      args: cmdArgs,
      cwd: prep.outDir || prep.recipe.slice(0, prep.recipe.lastIndexOf("/")) || "/",
      clearEnv: true,
      env: childEnv(),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    out.spawnError = `could not start the sandbox process (${deno}): ${(e as Error).message}`;
    return out;
  }
  const kill = (why: NonNullable<ChildOutcome["killed"]>, detail: string): void => {
    if (out.killed) return;
    out.killed = why;
    out.killDetail = detail;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  };

  let logBytes = 0;
  let logCut = false;
  const log = (line: string): void => {
    if (!o.onLog) return;
    if (logBytes > MAX_LOG_BYTES) {
      if (!logCut) o.onLog(`[petrel] log truncated after ${MAX_LOG_BYTES} bytes`);
      logCut = true;
      return;
    }
    const l = line.length > MAX_LINE ? line.slice(0, MAX_LINE) + " …[cut]" : line;
    logBytes += l.length + 1;
    try {
      o.onLog(l);
    } catch {
      // a failing callback must not break the runner
    }
  };

  const readLines = async (
    stream: ReadableStream<Uint8Array>,
    onLine: (line: string) => void,
  ): Promise<void> => {
    let buf = "";
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
        if (buf.length > 4 * MAX_LINE) {
          onLine(buf);
          buf = "";
        }
      }
    } catch {
      // pipe closed by a kill
    }
    if (buf) onLine(buf);
  };

  const stdoutDone = readLines(child.stdout, (line) => {
    const msg = decodeMessage(line);
    if (!msg) return log(line);
    switch (msg.t) {
      case "adapter":
        if (out.adapterMs === null) {
          out.adapter = msg.adapter;
          out.adapterMs = msg.ms;
          if (msg.error) log(`[petrel] no WebGPU adapter: ${msg.error}`);
        }
        break;
      case "imported":
        out.importMs ??= msg.ms;
        break;
      case "params":
        out.params ??= msg.params;
        break;
      case "describe":
        out.describe ??= { description: msg.description, schema: msg.schema };
        break;
      case "progress":
        if (Number.isFinite(msg.done) && Number.isFinite(msg.total) && o.onProgress) {
          try {
            o.onProgress(msg.done, msg.total);
          } catch {
            // ignore callback errors
          }
        }
        break;
      case "done":
        out.done = true;
        out.runMs = msg.ms;
        break;
      case "error":
        out.harnessError ??= { kind: msg.kind, message: String(msg.message) };
        break;
    }
  });
  const stderrDone = readLines(child.stderr, (line) => {
    out.stderrTail = (out.stderrTail + line + "\n").slice(-4096);
    log(line);
  });

  const writer = child.stdin.getWriter();
  writer.write(new TextEncoder().encode(JSON.stringify(spec))).then(() => writer.close()).catch(
    () => {},
  );

  const timer = setTimeout(
    () =>
      kill(
        "timeout",
        `the run exceeded its wall-clock limit of ${limits.timeoutMs / 1000} s and was stopped`,
      ),
    limits.timeoutMs,
  );
  const onAbort = (): void => kill("cancelled", "the run was cancelled");
  if (o.signal?.aborted) onAbort();
  o.signal?.addEventListener("abort", onAbort);

  let polling = false;
  const poll = setInterval(async () => {
    if (polling || out.killed) return;
    polling = true;
    try {
      if (prep.outDir) {
        const u = await folderUsage(prep.outDir);
        if (u.bytes > limits.maxOutputBytes) {
          kill(
            "output-quota",
            `the run wrote more than its output quota of ${limits.maxOutputBytes} bytes and was stopped`,
          );
        } else if (u.entries > MAX_OUTPUT_ENTRIES) {
          kill(
            "output-quota",
            `the run created more than ${MAX_OUTPUT_ENTRIES} files and was stopped`,
          );
        }
      }
      const rssMb = residentMb(child.pid);
      if (rssMb !== null && rssMb > limits.memoryMb) {
        kill(
          "memory",
          `the run used ${
            Math.round(rssMb)
          } MiB, more than its memory limit of ${limits.memoryMb} MiB, and was stopped`,
        );
      }
    } finally {
      polling = false;
    }
  }, POLL_MS);

  const status = await child.status;
  clearTimeout(timer);
  clearInterval(poll);
  o.signal?.removeEventListener("abort", onAbort);
  await Promise.all([stdoutDone, stderrDone]);
  out.exitCode = status.code;
  out.signal = status.signal;
  return out;
}

function residentMb(pid: number): number | null {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = /VmRSS:\s+(\d+) kB/.exec(s);
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

function limitsOf(
  o: SandboxOptions,
): { timeoutMs: number; memoryMb: number; maxOutputBytes: number } {
  const timeoutMs = o.timeoutMs ?? SANDBOX_DEFAULTS.timeoutMs;
  const memoryMb = o.memoryMb ?? SANDBOX_DEFAULTS.memoryMb;
  const maxOutputBytes = o.maxOutputBytes ?? SANDBOX_DEFAULTS.maxOutputBytes;
  if (!(timeoutMs > 0)) throw new InputProblem(`timeoutMs must be positive, got ${timeoutMs}`);
  if (!(memoryMb >= 128)) throw new InputProblem(`memoryMb must be at least 128, got ${memoryMb}`);
  if (!(maxOutputBytes > 0)) {
    throw new InputProblem(`maxOutputBytes must be positive, got ${maxOutputBytes}`);
  }
  return { timeoutMs, memoryMb: Math.floor(memoryMb), maxOutputBytes };
}

/** Classifies a finished child into the public result fields. */
function classify(c: ChildOutcome): Pick<SandboxResult, "ok" | "reason" | "error" | "errorKind"> {
  if (c.spawnError) return { ok: false, reason: "error", error: c.spawnError, errorKind: "crash" };
  if (c.killed) return { ok: false, reason: c.killed, error: c.killDetail };
  const oom = /out of memory|heap limit|Allocation failed/i.test(c.stderrTail);
  if (c.harnessError) {
    const h = c.harnessError;
    if (h.kind === "permission") return { ok: false, reason: "permission", error: h.message };
    if (h.kind === "output-quota") return { ok: false, reason: "output-quota", error: h.message };
    if (h.kind === "input" && /File too large|EFBIG/i.test(h.message)) {
      return {
        ok: false,
        reason: "output-quota",
        error: `an output file exceeded the quota (${h.message})`,
      };
    }
    return { ok: false, reason: "error", error: h.message, errorKind: h.kind };
  }
  if (c.signal === "SIGXFSZ" || c.exitCode === 128 + 25) {
    return {
      ok: false,
      reason: "output-quota",
      error: "an output file exceeded the output quota and the run was stopped",
    };
  }
  if (oom) {
    return {
      ok: false,
      reason: "memory",
      error: "the run ran out of its memory limit (JavaScript heap) and was stopped",
    };
  }
  if (c.exitCode === 0 && c.done) return { ok: true };
  if (c.exitCode === 0) {
    return {
      ok: false,
      reason: "error",
      errorKind: "recipe",
      error: "the recipe exited before finishing (did it call Deno.exit?)",
    };
  }
  const tail = c.stderrTail.trim().split("\n").slice(-5).join("\n");
  return {
    ok: false,
    reason: "error",
    errorKind: "crash",
    error: `the sandbox process exited with ${
      c.signal ? `signal ${c.signal}` : `code ${c.exitCode}`
    }${tail ? `: ${tail}` : ""}`,
  };
}

/**
 * Runs a recipe in a permission-limited child process and writes `manifest.json` into the
 * output folder. Never throws for problems of the run itself: they are reported in the result.
 */
export async function runSandboxed(options: SandboxOptions): Promise<SandboxResult> {
  const startedAt = new Date();
  const t0 = performance.now();
  const elapsed = (): number => Math.round((performance.now() - t0) * 10) / 10;
  let prep: Prepared;
  let limits: ReturnType<typeof limitsOf>;
  try {
    limits = limitsOf(options);
    prep = await prepare(options, "run");
  } catch (e) {
    return {
      ok: false,
      exitCode: null,
      reason: "error",
      errorKind: "input",
      error: (e as Error).message,
      durationMs: elapsed(),
    };
  }
  const seed = options.seed ?? SANDBOX_DEFAULTS.seed;
  const spec: HarnessSpec = {
    mode: "run",
    ...prep,
    params: options.params ?? {},
    seed,
    maxOutputBytes: limits.maxOutputBytes,
  };
  const child = await runChild(prep, spec, limits, options);
  let verdict = classify(child);
  const usage = await folderUsage(prep.outDir);
  if (verdict.ok && usage.bytes > limits.maxOutputBytes) {
    verdict = {
      ok: false,
      reason: "output-quota",
      error:
        `the run wrote ${usage.bytes} bytes, more than its output quota of ${limits.maxOutputBytes}`,
    };
  }
  const durationMs = elapsed();
  const result: SandboxResult = { ...verdict, exitCode: child.exitCode, durationMs };
  try {
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      recipe: { path: prep.recipe, sha256: await sha256File(prep.recipe) },
      params: child.params ?? spec.params,
      seed,
      inputRoots: prep.inputs,
      modelRoots: prep.models,
      inputs: await hashTree(prep.inputs),
      models: await hashTree(prep.models),
      outputs: verdict.reason === "output-quota" ? [] : await hashOutputs(prep.outDir),
      versions: runtimeVersions(),
      adapter: child.adapter,
      limits,
      timings: {
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
        totalMs: durationMs,
        gpuInitMs: child.adapterMs,
        importMs: child.importMs,
        runMs: child.runMs,
      },
      result: {
        ok: result.ok,
        exitCode: result.exitCode,
        ...(result.reason ? { reason: result.reason } : {}),
        ...(result.error ? { error: result.error } : {}),
      },
    };
    const manifestPath = `${prep.outDir}/${MANIFEST_NAME}`;
    await writeManifest(manifestPath, manifest);
    result.manifestPath = manifestPath;
  } catch (e) {
    options.onLog?.(`[petrel] could not write the manifest: ${(e as Error).message}`);
  }
  return result;
}

/** A recipe's self-description (for `--help`). */
export interface RecipeDescription {
  /** Absolute path of the recipe. */
  recipe: string;
  description: string | null;
  /** JSON Schema of the parameters (input form: defaults are optional). */
  schema: {
    properties?: Record<
      string,
      { type?: string; description?: string; default?: unknown } & Record<string, unknown>
    >;
    required?: string[];
  } & Record<string, unknown>;
}

/**
 * Imports a recipe in the sandbox (no write access, no GPU) and returns its description and
 * parameter schema. Throws an Error whose message says what went wrong.
 */
export async function describeRecipe(
  recipe: string,
  options: { timeoutMs?: number } = {},
): Promise<RecipeDescription> {
  const prep = await prepare({ recipe, inputs: [], outDir: "" }, "describe").catch((e) => {
    throw new Error((e as Error).message);
  });
  const spec: HarnessSpec = {
    mode: "describe",
    ...prep,
    params: {},
    seed: 0,
    maxOutputBytes: 0,
  };
  const lines: string[] = [];
  const child = await runChild(
    prep,
    spec,
    { timeoutMs: options.timeoutMs ?? 60_000, memoryMb: 1024, maxOutputBytes: 1 },
    { onLog: (l) => lines.push(l) },
  );
  if (child.describe) {
    return { recipe: prep.recipe, ...child.describe } as RecipeDescription;
  }
  const v = classify(child);
  throw new Error(`cannot load recipe ${recipe}: ${v.error ?? "no description was reported"}`);
}

/** True when `e` came from a bad option or input (for callers that map errors to exit codes). */
export function isInputProblem(e: unknown): boolean {
  return e instanceof InputProblem;
}
