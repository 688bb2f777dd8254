/**
 * Recipes: plain TypeScript modules that petrel runs in a permission-limited child process.
 *
 * A recipe module exports its parameters as a zod object schema and a default `run` function:
 *
 * ```ts
 * import { z } from "zod";
 * import type { RecipeContext } from "@petrel/petrel";
 * export const params = z.object({ size: z.number().int().default(32) });
 * export default async function run(ctx: RecipeContext<z.infer<typeof params>>): Promise<void> {
 *   await ctx.writeOutput("size.txt", `${ctx.params.size}\n`);
 * }
 * ```
 *
 * or, equivalently, `export default defineRecipe({ params, description, run })`.
 *
 * @module
 */

import { z } from "zod";
import type { GpuContext } from "../gpu/context.ts";
import type { Rng } from "../random.ts";

/** A zod object schema describing a recipe's parameters. */
// deno-lint-ignore no-explicit-any
export type ParamsSchema = z.ZodObject<any>;

/**
 * Everything a recipe may use while it runs (the only doors out of its sandbox).
 *
 * @example
 * ```ts
 * import { readSinogram, type RecipeContext } from "@petrel/petrel";
 * import { z } from "zod";
 * export const params = z.object({ realisations: z.number().int().default(10) });
 * export default async function run(ctx: RecipeContext<z.infer<typeof params>>): Promise<void> {
 *   const prompts = await readSinogram(ctx.inputPath("prompts.npy")); // only granted inputs
 *   const rng = ctx.rng(); // seeded from the run's seed (recorded in the manifest)
 *   for (let r = 0; r < ctx.params.realisations; r++) {
 *     const noisy = prompts.data.map((m) => rng.poisson(m));
 *     await ctx.writeOutput(`noisy_${r}.f32`, noisy); // only under the output folder
 *     ctx.progress(r + 1, ctx.params.realisations);
 *   }
 *   ctx.log(`${ctx.params.realisations} realisations from ${ctx.inDir}`);
 * }
 * ```
 */
export interface RecipeContext<P = Record<string, unknown>> {
  /** Parameters, validated (defaults filled in) by the recipe's schema. */
  readonly params: P;
  /** Absolute paths of the inputs (files or folders) the run may read. */
  readonly inputs: readonly string[];
  /** The first input that is a folder (the CLI's `--in`), if any. */
  readonly inDir: string | undefined;
  /** Absolute paths of the model files or folders the run may read. */
  readonly models: readonly string[];
  /** The first model path that is a folder, if any. */
  readonly modelsDir: string | undefined;
  /** The output folder: the only place the run may write. */
  readonly outDir: string;
  /** Seed of the run (recorded in the manifest); use {@linkcode RecipeContext.rng}. */
  readonly seed: number;
  /** Writes a log line (shown by the CLI, streamed by the server). */
  log(message: string): void;
  /** Reports progress (`done` of `total` steps); the CLI shows a bar with ETA. */
  progress(done: number, total: number): void;
  /**
   * Declares outputs (paths relative to the output folder) whose bytes legitimately differ
   * between reruns, e.g. files holding wall-clock timings. They are hashed in the manifest like
   * every output and listed in its `nondeterministicOutputs`; `petrel verify` reports them as
   * "not compared" instead of failing on them. Declare only what cannot be made deterministic.
   */
  nondeterministic(...paths: string[]): void;
  /**
   * Writes an output file atomically (temporary name, then rename) under the output folder and
   * returns its absolute path. `name` is relative (subfolders allowed, no `..`).
   */
  writeOutput(name: string, data: Uint8Array | ArrayBufferView | string): Promise<string>;
  /** Writes `value` as pretty-printed JSON through {@linkcode RecipeContext.writeOutput}. */
  writeJson(name: string, value: unknown): Promise<string>;
  /** Absolute path of input `name` (relative to {@linkcode RecipeContext.inDir}, or a file input's base name). */
  inputPath(name: string): string;
  /** Reads input `name` (see {@linkcode RecipeContext.inputPath}). */
  readInput(name: string): Promise<Uint8Array>;
  /** Absolute path of model `name` (relative to {@linkcode RecipeContext.modelsDir}, or a model file's base name). */
  modelPath(name: string): string;
  /** The shared WebGPU context (created once per run; its adapter is in the manifest). */
  gpu(): Promise<GpuContext>;
  /** A seeded generator; `stream` derives independent streams from the run's seed. */
  rng(stream?: number): Rng;
}

/** The body of a recipe. */
export type RecipeRun<P> = (ctx: RecipeContext<P>) => Promise<void>;

/** A recipe bundled as one object (what {@linkcode defineRecipe} returns). */
export interface Recipe<S extends ParamsSchema = ParamsSchema> {
  /** Parameter schema. */
  params: S;
  /** One-line description shown by `petrel run <recipe> --help`. */
  description?: string;
  /** The body. */
  run: RecipeRun<z.output<S>>;
}

/**
 * Bundles a recipe's schema and body with their types tied together (use as the default export).
 *
 * @example
 * ```ts
 * import { defineRecipe } from "@petrel/petrel";
 * import { z } from "zod";
 * export default defineRecipe({
 *   description: "writes a summary of its input",
 *   params: z.object({ iterations: z.number().int().positive().default(20) }),
 *   async run(ctx) {
 *     const counts = await ctx.readInput("prompts.npy");
 *     ctx.log(`${ctx.params.iterations} iterations on ${counts.length} bytes`);
 *     await ctx.writeJson("summary.json", { iterations: ctx.params.iterations });
 *   },
 * });
 * ```
 */
export function defineRecipe<S extends ParamsSchema>(recipe: Recipe<S>): Recipe<S> {
  if (!(recipe.params instanceof z.ZodObject)) {
    throw new TypeError("defineRecipe: params must be a zod object schema (z.object({...}))");
  }
  if (typeof recipe.run !== "function") {
    throw new TypeError("defineRecipe: run must be an async function (ctx) => Promise<void>");
  }
  return recipe;
}

/** The parts of a loaded recipe module that petrel uses. */
export interface LoadedRecipe {
  params: ParamsSchema;
  description: string | undefined;
  // deno-lint-ignore no-explicit-any
  run: RecipeRun<any>;
}

/**
 * Normalises a recipe module (`export const params` + `export default run`, or
 * `export default defineRecipe(...)`). Throws a TypeError saying what is missing.
 *
 * @example
 * ```ts
 * import { loadedRecipe, parseParams } from "@petrel/petrel";
 * const path = new URL("./examples/osem.ts", `file://${Deno.cwd()}/`).href;
 * const recipe = loadedRecipe(await import(path), path);
 * const params = parseParams(recipe.params, { iterations: "8" }); // { iterations: 8, subsets: 4, … }
 * ```
 */
export function loadedRecipe(mod: Record<string, unknown>, name: string): LoadedRecipe {
  const def = mod.default;
  if (def && typeof def === "object" && "run" in def && "params" in def) {
    const r = def as Recipe;
    if (!(r.params instanceof z.ZodObject) || typeof r.run !== "function") {
      throw new TypeError(`recipe ${name}: the default export must come from defineRecipe({...})`);
    }
    return { params: r.params, description: r.description, run: r.run };
  }
  if (typeof def !== "function") {
    throw new TypeError(
      `recipe ${name}: expected \`export default async function run(ctx)\` or \`export default defineRecipe({...})\``,
    );
  }
  const params = mod.params ?? z.object({});
  if (!(params instanceof z.ZodObject)) {
    throw new TypeError(`recipe ${name}: \`export const params\` must be a zod object (z.object)`);
  }
  const description = typeof mod.description === "string" ? mod.description : undefined;
  return { params, description, run: def as RecipeRun<unknown> };
}

/**
 * A validation failure of recipe parameters, listing every offending key.
 *
 * @example
 * ```ts
 * import { loadedRecipe, parseParams, RecipeParamsError } from "@petrel/petrel";
 * const path = new URL("./examples/osem.ts", `file://${Deno.cwd()}/`).href;
 * const { params } = loadedRecipe(await import(path), path);
 * try {
 *   parseParams(params, { iterations: 0 });
 * } catch (e) {
 *   if (e instanceof RecipeParamsError) console.error(e.message); // "invalid parameters: iterations: Too small: …"
 * }
 * ```
 */
export class RecipeParamsError extends Error {
  override name = "RecipeParamsError";
}

/**
 * Validates `raw` against `schema`. String values (from `--set key=value`) that do not fit a
 * non-string field are parsed as JSON first, so `--set iterations=4` and
 * `--set 'fwhm=[4,4,4]'` work.
 *
 * @example
 * ```ts
 * import { parseParams } from "@petrel/petrel";
 * import { z } from "zod";
 * const schema = z.object({ iterations: z.number().int().default(4), fwhmMm: z.array(z.number()) });
 * // values from `--set iterations=8 --set 'fwhmMm=[4,4,4]'` arrive as strings
 * parseParams(schema, { iterations: "8", fwhmMm: "[4,4,4]" }); // { iterations: 8, fwhmMm: [4, 4, 4] }
 * ```
 */
export function parseParams(
  schema: ParamsSchema,
  raw: Record<string, unknown>,
): Record<string, unknown> {
  const shape = schema.shape as Record<string, z.ZodType>;
  const unknown = Object.keys(raw).filter((k) => !(k in shape));
  if (unknown.length) {
    throw new RecipeParamsError(
      `unknown parameter${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}; expected one of: ${
        Object.keys(shape).join(", ") || "(none)"
      }`,
    );
  }
  const coerced: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    coerced[k] = v;
    if (typeof v === "string" && !shape[k].safeParse(v).success) {
      try {
        const parsed = JSON.parse(v);
        if (shape[k].safeParse(parsed).success) coerced[k] = parsed;
      } catch {
        // keep the string; the schema reports the error
      }
    }
  }
  const res = schema.safeParse(coerced);
  if (!res.success) {
    const issues = res.error.issues.map((i) => `${i.path.join(".") || "(params)"}: ${i.message}`);
    throw new RecipeParamsError(`invalid parameters: ${issues.join("; ")}`);
  }
  return res.data as Record<string, unknown>;
}

/**
 * Thrown by recipes (and petrel) when an input is missing or malformed (CLI exit code 3).
 *
 * @example
 * ```ts
 * import { defineRecipe, RecipeInputError } from "@petrel/petrel";
 * import { z } from "zod";
 * export default defineRecipe({
 *   params: z.object({}),
 *   async run(ctx) {
 *     if (!ctx.inDir) throw new RecipeInputError("give the study folder with --in (prompts.npy, mu.nii)");
 *   },
 * });
 * ```
 */
export class RecipeInputError extends Error {
  override name = "RecipeInputError";
}

/**
 * Thrown when a run would exceed its output-size quota.
 *
 * @example
 * ```ts
 * import { defineRecipe, RecipeOutputQuotaError } from "@petrel/petrel";
 * import { z } from "zod";
 * export default defineRecipe({
 *   params: z.object({}),
 *   async run(ctx) {
 *     const iterates = new Float32Array(128 * 128 * 64 * 20);
 *     try {
 *       // ctx.writeOutput throws RecipeOutputQuotaError when the run's output quota would be passed
 *       await ctx.writeOutput("debug/iterates.f32", iterates);
 *     } catch (e) {
 *       if (!(e instanceof RecipeOutputQuotaError)) throw e;
 *       ctx.log("iterates skipped: they do not fit the output quota");
 *     }
 *   },
 * });
 * ```
 */
export class RecipeOutputQuotaError extends Error {
  override name = "RecipeOutputQuotaError";
}
