/**
 * The sandbox runner: runs a recipe in a child `deno run` process that may only read its
 * inputs, models, the recipe and petrel's own sources, and write its output folder; no network,
 * environment, subprocesses, FFI or system information. Under Deno's permissions, the OS layers
 * of `contain.ts` (bubblewrap namespaces, cgroup memory and process limits, rlimits) hold the
 * child where the host offers them. The runner enforces a wall-clock limit, the output quota
 * (disk blocks and entries, while the child runs and after) and cancellation, streams log lines
 * and progress, tidies the outputs and writes the provenance manifest into the output folder.
 *
 * The pieces: `paths.ts` (what is granted), `spawn.ts` (the command line), `watchdog.ts` (limits
 * while running), `stream.ts` (logs and harness messages), `channel.ts` (the harness's private
 * channel), `quota.ts` (disk use, tidying), `contain.ts` (the OS layers).
 *
 * Used by the `petrel` CLI and by the reconstruction server.
 *
 * @module
 */

import { sha256File } from "./hash.ts";
import { ChannelReader } from "./channel.ts";
import { type Containment, releaseRun, type RunUsage } from "./contain.ts";
import {
  hashOutputs,
  hashTree,
  type Manifest,
  MANIFEST_FORMAT,
  MANIFEST_NAME,
  petrelSourcesHash,
  runtimeVersions,
  writeManifest,
} from "./manifest.ts";
import { InputProblem, prepare } from "./paths.ts";
import type { HarnessSpec } from "./protocol.ts";
import { emptyFolder, scanOutput, tidyOutput } from "./quota.ts";
import { petrelRoot, spawnChild } from "./spawn.ts";
import { applyMessage, emptyReport, type HarnessReport, LogSink, readLines } from "./stream.ts";
import { type KillReason, startWatchdog } from "./watchdog.ts";

export { petrelReadPaths, petrelRoot, sandboxArgs } from "./spawn.ts";
export { type Containment, sandboxContainment } from "./contain.ts";

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
  /** Output quota in bytes of disk (files and folders; default 1 GiB). */
  maxOutputBytes?: number;
  /** Most files and folders the output folder may hold (default 100 000). */
  maxOutputEntries?: number;
  /** Most processes and threads of the run (cgroup `pids.max`; default 1024). */
  maxProcesses?: number;
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
  reason?:
    | "timeout"
    | "memory"
    | "processes"
    | "permission"
    | "output-quota"
    | "error"
    | "cancelled";
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
  /** Peak memory of the run (its cgroup: resident memory and page cache), when measured. */
  peakMemoryMb?: number | null;
  /** The OS layers the run had (null when it never started). */
  containment?: Containment | null;
}

/**
 * Defaults of the limits in {@linkcode SandboxOptions}.
 *
 * @example
 * ```ts
 * import { runSandboxed, SANDBOX_DEFAULTS } from "@petrel/petrel";
 * // twice the default memory for a 3-D DDIP run
 * await runSandboxed({
 *   recipe: "examples/ddip.ts", inputs: ["sim"], models: ["models"], outDir: "out/ddip",
 *   memoryMb: 2 * SANDBOX_DEFAULTS.memoryMb,
 * });
 * ```
 */
export const SANDBOX_DEFAULTS = {
  seed: 0,
  timeoutMs: 10 * 60_000,
  memoryMb: 4096,
  maxOutputBytes: 1 << 30,
  maxOutputEntries: 100_000,
  maxProcesses: 1024,
} as const;

/**
 * Temporary names of `writeOutput` (`x.petrel-tmp-<id>`) and core/io's writers
 * (`.x.tmp-<pid>-<id>`): never outputs; left-overs are removed after a run.
 */
const TEMPORARY = /\.petrel-tmp-|^\..+\.tmp-\d+-[0-9a-f]{8}$/;

interface Limits {
  timeoutMs: number;
  memoryMb: number;
  maxOutputBytes: number;
  maxOutputEntries: number;
  maxProcesses: number;
}

interface ChildOutcome extends HarnessReport {
  exitCode: number | null;
  signal: string | null;
  killed?: KillReason;
  killDetail?: string;
  stderrTail: string;
  spawnError?: string;
  usage: RunUsage;
  containment: Containment | null;
}

/** Runs the harness for `spec`: spawn, watch and stream until it exits, then release its cgroups. */
async function runChild(
  spec: Omit<HarnessSpec, "channel">,
  limits: Limits,
  o: Pick<SandboxOptions, "signal" | "onLog" | "onProgress">,
): Promise<ChildOutcome> {
  const out: ChildOutcome = {
    ...emptyReport(),
    exitCode: null,
    signal: null,
    stderrTail: "",
    usage: { peakMemoryMb: null, oomKilled: false, pidsLimitHit: false },
    containment: null,
  };
  const channel = await ChannelReader.create();
  let spawned: Awaited<ReturnType<typeof spawnChild>>;
  try {
    spawned = await spawnChild({ ...spec, channel: channel.path }, {
      memoryMb: limits.memoryMb,
      maxProcesses: limits.maxProcesses,
      maxFileBytes: spec.mode === "run" ? limits.maxOutputBytes : 0,
    }, crypto.randomUUID());
  } catch (e) {
    await channel.close();
    out.spawnError = `could not start the sandbox process: ${(e as Error).message}`;
    return out;
  }
  const { child, contained } = spawned;
  out.containment = contained.containment;
  const onMessage = (m: Parameters<typeof applyMessage>[1]): void =>
    applyMessage(out, m, o.onProgress);
  const log = new LogSink(o.onLog);
  const streams = Promise.all([
    readLines(child.stdout, (line) => log.line(line)),
    readLines(child.stderr, (line) => {
      out.stderrTail = (out.stderrTail + line + "\n").slice(-4096);
      log.line(line);
    }),
  ]);
  const stopWatching = startWatchdog({
    timeoutMs: limits.timeoutMs,
    signal: o.signal,
    outDir: spec.outDir,
    output: { maxBytes: limits.maxOutputBytes, maxEntries: limits.maxOutputEntries },
    tick: () => channel.read(onMessage),
    kill: (why, detail) => {
      out.killed = why;
      out.killDetail = detail;
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    },
  });
  const status = await child.status;
  stopWatching();
  await streams;
  await channel.read(onMessage);
  await channel.close();
  out.usage = await releaseRun(contained.cgroups);
  out.exitCode = status.code;
  out.signal = status.signal;
  return out;
}

function limitsOf(o: SandboxOptions): Limits {
  const timeoutMs = o.timeoutMs ?? SANDBOX_DEFAULTS.timeoutMs;
  const memoryMb = o.memoryMb ?? SANDBOX_DEFAULTS.memoryMb;
  const maxOutputBytes = o.maxOutputBytes ?? SANDBOX_DEFAULTS.maxOutputBytes;
  const maxOutputEntries = o.maxOutputEntries ?? SANDBOX_DEFAULTS.maxOutputEntries;
  const maxProcesses = o.maxProcesses ?? SANDBOX_DEFAULTS.maxProcesses;
  if (!(timeoutMs > 0)) throw new InputProblem(`timeoutMs must be positive, got ${timeoutMs}`);
  if (!(memoryMb >= 128)) throw new InputProblem(`memoryMb must be at least 128, got ${memoryMb}`);
  if (!(maxOutputBytes > 0)) {
    throw new InputProblem(`maxOutputBytes must be positive, got ${maxOutputBytes}`);
  }
  if (!(maxOutputEntries >= 1)) {
    throw new InputProblem(`maxOutputEntries must be at least 1, got ${maxOutputEntries}`);
  }
  // Deno itself runs a few dozen threads (more with many cores), and each one counts.
  if (!(maxProcesses >= 32)) {
    throw new InputProblem(`maxProcesses must be at least 32, got ${maxProcesses}`);
  }
  return {
    timeoutMs,
    memoryMb: Math.floor(memoryMb),
    maxOutputBytes,
    maxOutputEntries: Math.floor(maxOutputEntries),
    maxProcesses: Math.floor(maxProcesses),
  };
}

/** Classifies a finished child into the public result fields. */
function classify(
  c: ChildOutcome,
  limits: Pick<Limits, "memoryMb" | "maxProcesses">,
): Pick<SandboxResult, "ok" | "reason" | "error" | "errorKind"> {
  if (c.spawnError) return { ok: false, reason: "error", error: c.spawnError, errorKind: "crash" };
  if (c.killed) return { ok: false, reason: c.killed, error: c.killDetail };
  const finished = c.exitCode === 0 && c.done;
  if (c.usage.oomKilled && !finished) {
    const peak = c.usage.peakMemoryMb !== null
      ? ` (peak ${Math.round(c.usage.peakMemoryMb)} MiB)`
      : "";
    return {
      ok: false,
      reason: "memory",
      error:
        `the run reached its memory limit of ${limits.memoryMb} MiB${peak} and was stopped by the kernel`,
    };
  }
  if (c.usage.pidsLimitHit && !finished) {
    return {
      ok: false,
      reason: "processes",
      error:
        `the run reached its limit of ${limits.maxProcesses} processes and threads and was stopped`,
    };
  }
  const contain = /^petrel-contain: (.*)$/m.exec(c.stderrTail);
  if (contain && !finished) {
    return {
      ok: false,
      reason: "error",
      errorKind: "crash",
      error: `the sandbox could not be set up: ${contain[1]}`,
    };
  }
  const oom = /out of memory|heap limit|Allocation failed/i.test(c.stderrTail);
  if (c.harnessError) {
    const h = c.harnessError;
    if (h.kind === "permission") return { ok: false, reason: "permission", error: h.message };
    if (h.kind === "output-quota") return { ok: false, reason: "output-quota", error: h.message };
    if (h.kind === "recipe" && /Array buffer allocation failed|out of memory/i.test(h.message)) {
      // Under RLIMIT_DATA (hosts without a memory cgroup) allocations fail instead.
      return {
        ok: false,
        reason: "memory",
        error: `the run reached its memory limit of ${limits.memoryMb} MiB (${h.message})`,
      };
    }
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
  if (finished) return { ok: true };
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
 * After the child exited: counts the outputs again (a breach removes them all but the manifest,
 * so that the disk is given back), then tidies them (modes, links, temporary leftovers).
 */
async function settleOutputs(
  outDir: string,
  limits: Limits,
  verdict: Pick<SandboxResult, "ok" | "reason" | "error" | "errorKind">,
  log: (line: string) => void,
): Promise<Pick<SandboxResult, "ok" | "reason" | "error" | "errorKind">> {
  // The name is the runner's: whatever the recipe left there goes.
  const forged = await Deno.lstat(`${outDir}/${MANIFEST_NAME}`).then(() => true, () => false);
  if (forged) {
    await Deno.remove(`${outDir}/${MANIFEST_NAME}`, { recursive: true });
    log(`[petrel] removed a ${MANIFEST_NAME} written by the recipe (the name is reserved)`);
  }
  const u = await scanOutput(outDir, {
    maxBytes: limits.maxOutputBytes,
    maxEntries: limits.maxOutputEntries,
  });
  if (u.over && verdict.reason !== "output-quota") {
    verdict = {
      ok: false,
      reason: "output-quota",
      error: u.over === "bytes"
        ? `the run used more than its output quota of ${limits.maxOutputBytes} bytes of disk (files and folders)`
        : `the run created more than ${limits.maxOutputEntries} files and folders`,
    };
  }
  if (verdict.reason === "output-quota") {
    await emptyFolder(outDir);
    log("[petrel] the output quota was exceeded: the outputs were removed");
  }
  const t = await tidyOutput(outDir, TEMPORARY);
  if (t.modesFixed.length) {
    log(`[petrel] cleared setuid/setgid/sticky/world-write bits of: ${t.modesFixed.join(", ")}`);
  }
  if (t.removed.length) {
    log(`[petrel] removed outputs that are not regular files or folders: ${t.removed.join(", ")}`);
  }
  if (t.leftovers.length) {
    log(`[petrel] removed temporary files (never outputs): ${t.leftovers.join(", ")}`);
  }
  return verdict;
}

/**
 * Runs a recipe in a permission-limited child process and writes `manifest.json` into the
 * output folder. Never throws for problems of the run itself: they are reported in the result.
 *
 * @example
 * ```ts
 * import { runSandboxed } from "@petrel/petrel";
 * const r = await runSandboxed({
 *   recipe: "examples/osem.ts",
 *   inputs: ["sim"], // prompts.npy, mu.nii, truth.nii from `petrel simulate`
 *   outDir: "out/osem",
 *   params: { iterations: 4, subsets: 14 },
 *   seed: 1,
 *   onProgress: (done, total) => console.log(`${done}/${total}`),
 * });
 * if (!r.ok) console.error(r.reason, r.error);
 * else console.log(`manifest: ${r.manifestPath}`);
 * ```
 */
export async function runSandboxed(options: SandboxOptions): Promise<SandboxResult> {
  const startedAt = new Date();
  const t0 = performance.now();
  const elapsed = (): number => Math.round((performance.now() - t0) * 10) / 10;
  let prep: Awaited<ReturnType<typeof prepare>>;
  let limits: Limits;
  try {
    limits = limitsOf(options);
    prep = await prepare(options, "run", petrelRoot());
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
  const spec: Omit<HarnessSpec, "channel"> = {
    mode: "run",
    ...prep,
    params: options.params ?? {},
    seed,
    maxOutputBytes: limits.maxOutputBytes,
  };
  const child = await runChild(spec, limits, options);
  const log = (line: string): void => {
    try {
      options.onLog?.(line);
    } catch {
      // a failing callback must not break the runner
    }
  };
  let verdict = classify(child, limits);
  try {
    verdict = await settleOutputs(prep.outDir, limits, verdict, log);
  } catch (e) {
    verdict = {
      ok: false,
      reason: "error",
      errorKind: "crash",
      error: `the outputs could not be checked: ${(e as Error).message}`,
    };
  }
  const durationMs = elapsed();
  const result: SandboxResult = {
    ...verdict,
    exitCode: child.exitCode,
    durationMs,
    peakMemoryMb: child.usage.peakMemoryMb,
    containment: child.containment,
  };
  try {
    const outputs = verdict.reason === "output-quota" ? [] : await hashOutputs(prep.outDir);
    const produced = new Set(outputs.map((f) => f.path));
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      recipe: { path: prep.recipe, sha256: await sha256File(prep.recipe) },
      params: child.params ?? spec.params,
      seed,
      inputRoots: prep.inputs,
      modelRoots: prep.models,
      inputs: await hashTree(prep.inputs),
      models: await hashTree(prep.models),
      outputs,
      nondeterministicOutputs: child.nondeterministic.filter((p) => produced.has(p)),
      versions: { ...runtimeVersions(), petrelSources: await petrelSourcesHash(petrelRoot()) },
      adapter: child.adapter,
      limits,
      sandbox: child.containment
        ? {
          namespaces: child.containment.namespaces,
          memory: child.containment.memory,
          processes: child.containment.processes,
          peakMemoryMb: child.usage.peakMemoryMb,
        }
        : null,
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
    log(`[petrel] could not write the manifest: ${(e as Error).message}`);
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
 *
 * @example
 * ```ts
 * import { describeRecipe } from "@petrel/petrel";
 * const d = await describeRecipe("examples/osem.ts");
 * console.log(d.description, Object.keys(d.schema.properties ?? {})); // "OSEM with …", ["size", …]
 * ```
 */
export async function describeRecipe(
  recipe: string,
  options: { timeoutMs?: number } = {},
): Promise<RecipeDescription> {
  const prep = await prepare({ recipe, inputs: [], outDir: "" }, "describe", petrelRoot()).catch(
    (e) => {
      throw new Error((e as Error).message);
    },
  );
  const spec: Omit<HarnessSpec, "channel"> = {
    mode: "describe",
    ...prep,
    params: {},
    seed: 0,
    maxOutputBytes: 0,
  };
  const lines: string[] = [];
  const limits: Limits = {
    timeoutMs: options.timeoutMs ?? 60_000,
    memoryMb: 1024,
    maxOutputBytes: 1,
    maxOutputEntries: 1,
    maxProcesses: SANDBOX_DEFAULTS.maxProcesses,
  };
  const child = await runChild(spec, limits, { onLog: (l) => lines.push(l) });
  if (child.describe) {
    return { recipe: prep.recipe, ...child.describe } as RecipeDescription;
  }
  const v = classify(child, limits);
  throw new Error(`cannot load recipe ${recipe}: ${v.error ?? "no description was reported"}`);
}

/**
 * True when `e` came from a bad option or input (for callers that map errors to exit codes).
 *
 * @example
 * ```ts
 * import { isInputProblem } from "@petrel/petrel";
 * // map an error to an exit status: 3 for a bad option or input (as the petrel CLI), else 1
 * const exitCode = (e: unknown): number => (isInputProblem(e) ? 3 : 1);
 * ```
 */
export function isInputProblem(e: unknown): boolean {
  return e instanceof InputProblem;
}
