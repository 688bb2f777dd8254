/**
 * The {@linkcode RecipeContext} a recipe runs with, built once for both ways of running it: the
 * sandbox harness (`harness.ts`, in the permission-limited child) and
 * {@linkcode runRecipeInProcess} (tests, and runs that need what the sandbox withholds, such as
 * the native onnxruntime's FFI). Outputs, inputs, seeds and the quota behave the same in both.
 *
 * @module
 */

import { defaultContext } from "../gpu/context.ts";
import { Rng } from "../random.ts";
import {
  loadedRecipe,
  type ParamsSchema,
  parseParams,
  type Recipe,
  type RecipeContext,
  RecipeInputError,
  RecipeOutputQuotaError,
} from "./recipe.ts";

// Captured when the module loads: the harness imports it before the recipe, so that a recipe
// replacing TextEncoder cannot change what writeOutput writes.
const encoder = new TextEncoder();
const encode = encoder.encode.bind(encoder);

/** Where a run reads and writes (absolute paths), its seed and its output quota. */
export interface ContextSpec {
  inputs: readonly string[];
  models: readonly string[];
  outDir: string;
  seed: number;
  /** Bytes `writeOutput` may write in all. */
  maxOutputBytes: number;
}

/** Where the context's side channels go (log lines, progress, nondeterministic outputs). */
export interface ContextHooks {
  log(message: string): void;
  progress(done: number, total: number): void;
  nondeterministic(paths: string[]): void;
}

function isInside(name: string): boolean {
  return !name.startsWith("/") && !name.split("/").some((s) => s === ".." || s === "") &&
    !name.includes("\\");
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await Deno.stat(p)).isDirectory;
  } catch {
    return false;
  }
}

function finder(roots: readonly string[], dir: string | undefined, what: string) {
  return (name: string): string => {
    if (dir) return `${dir}/${name}`;
    const hit = roots.find((r) => r.split("/").pop() === name);
    if (hit) return hit;
    throw new RecipeInputError(
      `no ${what} named "${name}"; the run was given: ${roots.join(", ") || "(none)"}`,
    );
  };
}

/** Builds the context of a run with validated `params` (see {@linkcode RecipeContext}). */
export async function recipeContext<P>(
  spec: ContextSpec,
  params: P,
  hooks: ContextHooks,
): Promise<RecipeContext<P>> {
  let inDir: string | undefined;
  for (const p of spec.inputs) if (!inDir && await isDir(p)) inDir = p;
  let modelsDir: string | undefined;
  for (const p of spec.models) if (!modelsDir && await isDir(p)) modelsDir = p;
  let written = 0;
  const inputPath = finder(spec.inputs, inDir, "input");
  const modelPath = finder(spec.models, modelsDir, "model");
  const ctx: RecipeContext<P> = {
    params,
    inputs: spec.inputs,
    inDir,
    models: spec.models,
    modelsDir,
    outDir: spec.outDir,
    seed: spec.seed,
    log: (message) => hooks.log(message),
    progress: (done, total) => hooks.progress(done, total),
    nondeterministic(...names) {
      for (const name of names) {
        if (!isInside(name)) {
          throw new RecipeInputError(
            `nondeterministic: "${name}" must be a relative path inside the output folder (no "..")`,
          );
        }
      }
      hooks.nondeterministic(names.map(String));
    },
    async writeOutput(name, data) {
      if (!isInside(name)) {
        throw new RecipeInputError(
          `writeOutput: "${name}" must be a relative path inside the output folder (no "..")`,
        );
      }
      if (name === "manifest.json") {
        throw new RecipeInputError(
          `writeOutput: "manifest.json" is reserved for the provenance manifest`,
        );
      }
      const bytes = typeof data === "string"
        ? encode(data)
        : data instanceof Uint8Array
        ? data
        : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      if (written + bytes.length > spec.maxOutputBytes) {
        throw new RecipeOutputQuotaError(
          `output quota exceeded: writing ${name} (${bytes.length} bytes) would bring the outputs to ${
            written + bytes.length
          } bytes, the limit is ${spec.maxOutputBytes}`,
        );
      }
      const path = `${spec.outDir}/${name}`;
      const slash = path.lastIndexOf("/");
      await Deno.mkdir(path.slice(0, slash), { recursive: true });
      const tmp = `${path}.petrel-tmp-${crypto.randomUUID().slice(0, 8)}`;
      await Deno.writeFile(tmp, bytes);
      await Deno.rename(tmp, path);
      written += bytes.length;
      return path;
    },
    writeJson(name, value) {
      return this.writeOutput(name, JSON.stringify(value, null, 2) + "\n");
    },
    inputPath,
    readInput: (name) => Deno.readFile(inputPath(name)),
    modelPath,
    gpu: () => defaultContext(),
    rng: (stream = 0) =>
      new Rng(stream === 0 ? spec.seed : (spec.seed ^ Math.imul(stream, 0x9e3779b9)) | 0),
  };
  return ctx;
}

/** What {@linkcode runRecipeInProcess} runs a recipe on. */
export interface InProcessOptions {
  /** Raw parameters, validated (defaults filled in) by the recipe's schema like `--set` values. */
  params?: Record<string, unknown>;
  /** Input files or folders (the first folder is `ctx.inDir`); made absolute. */
  inputs?: readonly string[];
  /** Model files or folders (the first folder is `ctx.modelsDir`); made absolute. */
  models?: readonly string[];
  /** Output folder (created if missing); made absolute. */
  outDir: string;
  /** Seed of the run (default 0, as the sandbox's). */
  seed?: number;
  /** Output quota in bytes (default: none). */
  maxOutputBytes?: number;
  /** Log lines of the recipe (default: stdout). */
  log?: (message: string) => void;
  /** Progress of the recipe. */
  onProgress?: (done: number, total: number) => void;
}

/** What an in-process run reports. */
export interface InProcessResult {
  /** The validated parameters the recipe ran with. */
  params: Record<string, unknown>;
  /** Outputs the recipe declared nondeterministic. */
  nondeterministic: string[];
}

function absolute(p: string): string {
  const url = new URL(p.replaceAll("%", "%25"), `file://${Deno.cwd()}/`);
  return decodeURIComponent(url.pathname).replace(/(.)\/$/, "$1");
}

/**
 * Runs a recipe in this process with the same {@linkcode RecipeContext} as the sandbox gives it
 * (parameters validated by its schema, outputs written atomically under `outDir`), but none of
 * the sandbox's limits: no permissions are dropped, no wall-clock limit, no manifest. For tests,
 * and for runs that need what the sandbox withholds (`petrel run` is the provenance path).
 * Throws what the recipe throws (a {@linkcode RecipeParamsError} for invalid parameters).
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { defineRecipe, runRecipeInProcess } from "@petrel/petrel";
 * const recipe = defineRecipe({
 *   params: z.object({ n: z.number().int().default(3) }),
 *   async run(ctx) {
 *     await ctx.writeJson("n.json", { n: ctx.params.n, seed: ctx.seed });
 *   },
 * });
 * await runRecipeInProcess(recipe, { params: { n: "4" }, outDir: "out/n", seed: 7 });
 * // out/n/n.json holds { "n": 4, "seed": 7 }
 * ```
 */
export async function runRecipeInProcess<S extends ParamsSchema>(
  recipe: Recipe<S> | Record<string, unknown>,
  options: InProcessOptions,
): Promise<InProcessResult> {
  const loaded = "run" in recipe && "params" in recipe && typeof recipe.run === "function"
    ? loadedRecipe({ default: recipe }, "(in process)")
    : loadedRecipe(recipe as Record<string, unknown>, "(in process)");
  const params = parseParams(loaded.params, options.params ?? {});
  const outDir = absolute(options.outDir);
  await Deno.mkdir(outDir, { recursive: true });
  const nondeterministic: string[] = [];
  const ctx = await recipeContext(
    {
      inputs: (options.inputs ?? []).map(absolute),
      models: (options.models ?? []).map(absolute),
      outDir,
      seed: options.seed ?? 0,
      maxOutputBytes: options.maxOutputBytes ?? Infinity,
    },
    params,
    {
      log: options.log ?? ((m) => console.log(m)),
      progress: options.onProgress ?? (() => {}),
      nondeterministic: (paths) => {
        for (const p of paths) if (!nondeterministic.includes(p)) nondeterministic.push(p);
      },
    },
  );
  await loaded.run(ctx);
  return { params, nondeterministic };
}
