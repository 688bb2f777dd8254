/**
 * Starting the sandboxed child: the `deno run` command line with its permission grants, the
 * cleared environment, and the OS layers of `contain.ts` around it.
 *
 * @module
 */

import { type ContainedCommand, containedCommand } from "./contain.ts";
import type { HarnessSpec } from "./protocol.ts";

/**
 * Absolute path of petrel's checkout (the folder holding deno.json).
 *
 * @example
 * ```ts
 * import { petrelRoot } from "@petrel/petrel";
 * const shaders = `${petrelRoot()}/shaders`; // absolute, wherever petrel is checked out
 * ```
 */
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
 *
 * @example
 * ```ts
 * import { petrelReadPaths } from "@petrel/petrel";
 * console.log(petrelReadPaths()); // [".../mod.ts", ".../deno.json", ".../shaders", ".../node_modules", ".../core/diffusion", …]
 * ```
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
    // experiments/: petrel's own multi-module recipes (a recipe may import its siblings there)
    ...["mod.ts", "deno.json", "shaders", "node_modules", "experiments"].map((p) => `${root}/${p}`),
    ...core.sort(),
  ];
}

function envOf(): Record<string, string> {
  try {
    return Deno.env.toObject();
  } catch {
    return {}; // no env permission: Deno falls back to its defaults
  }
}

/** The environment passed to the child: nothing but what Deno and the GPU driver need. */
function childEnv(): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  const keep =
    /^(HOME|PATH|DENO_DIR|XDG_CACHE_HOME|XDG_RUNTIME_DIR|LANG|LC_ALL|TZ|(VK|MESA|LIBGL|GALLIUM|LP|WGPU|__GLX|__EGL|DRI)_[A-Z0-9_]*|VK_ICD_FILENAMES|NVIDIA_[A-Z_]*|CUDA_VISIBLE_DEVICES|LD_LIBRARY_PATH)$/;
  for (const [k, v] of Object.entries(envOf())) if (keep.test(k)) env[k] = v;
  return env;
}

/** Deno's cache folder as the child will look it up (read-only inside the sandbox). */
function denoDir(env: Record<string, string>): string | null {
  if (env.DENO_DIR) return env.DENO_DIR;
  if (env.XDG_CACHE_HOME) return `${env.XDG_CACHE_HOME}/deno`;
  if (env.HOME) return `${env.HOME}/.cache/deno`;
  return null;
}

/**
 * The child command line for a validated spec (exported for the docs and tests).
 *
 * @example
 * ```ts
 * import { petrelRoot, sandboxArgs } from "@petrel/petrel";
 * const root = petrelRoot();
 * // the `deno run …` arguments of the child: --allow-read of the recipe, inputs, output folder
 * // and petrel's sources, --allow-write of the output folder only, a 4 GiB V8 heap
 * const args = sandboxArgs(
 *   { recipe: `${root}/examples/osem.ts`, inputs: ["/data/sim"], models: [], outDir: "/data/out" },
 *   4096,
 * );
 * ```
 */
export function sandboxArgs(
  spec: Pick<HarnessSpec, "recipe" | "inputs" | "models" | "outDir"> & { channel?: string },
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
  // The output folder's grant stays one argument of its own: the server finds orphaned runs by it.
  if (spec.outDir) args.push(`--allow-write=${spec.outDir}`);
  if (spec.channel) args.push(`--allow-write=${spec.channel}`);
  args.push(`--v8-flags=--max-old-space-size=${memoryMb}`, `${root}/core/runtime/harness.ts`);
  return args;
}

/** Limits the kernel enforces on one run. */
export interface SpawnLimits {
  memoryMb: number;
  maxProcesses: number;
  /** Per-file size cap (0: none). */
  maxFileBytes: number;
}

/** A started child and the layers around it. */
export interface Spawned {
  child: Deno.ChildProcess;
  contained: ContainedCommand;
}

/**
 * Starts the harness for `spec` inside every OS layer this host offers, with the job description
 * on stdin. Throws when the process cannot be started.
 */
export async function spawnChild(
  spec: HarnessSpec,
  limits: SpawnLimits,
  runId: string,
): Promise<Spawned> {
  const root = petrelRoot();
  const deno = Deno.execPath();
  const env = childEnv();
  const cwd = spec.outDir || spec.recipe.slice(0, spec.recipe.lastIndexOf("/")) || "/";
  const reads = [spec.recipe, ...spec.inputs, ...spec.models, ...petrelReadPaths(root)];
  const contained = await containedCommand(
    runId,
    deno,
    sandboxArgs(spec, limits.memoryMb, root),
    {
      read: [...new Set(reads)],
      write: [spec.outDir, spec.channel].filter((p) => p !== ""),
      cwd,
      deno,
      denoDir: denoDir(env),
    },
    limits,
  );
  const child = new Deno.Command(contained.cmd, {
    args: contained.args,
    cwd,
    clearEnv: true,
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  writer.write(new TextEncoder().encode(JSON.stringify(spec))).then(() => writer.close()).catch(
    () => {},
  );
  return { child, contained };
}
