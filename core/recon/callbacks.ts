/**
 * Per-iteration callbacks of the reconstruction algorithms. A callback declares what it needs
 * (the image, the log-likelihood, or only a finished device queue); the algorithm reads back only
 * what some callback asked for, and only on the iterations it asked for.
 *
 * @module
 */

import { nrmse } from "../metrics/image.ts";

/** What an algorithm hands to callbacks after an iteration. */
export interface IterationState {
  /** Algorithm name, e.g. "OSEM". */
  algorithm: string;
  /** 1-based iteration number. */
  iteration: number;
  /** Number of iterations of the run. */
  iterations: number;
  /** Milliseconds since the run started (device work finished only if some callback synced). */
  elapsedMs: number;
  /** The current image, when a callback asked for it. */
  image?: Float32Array;
  /** `L(x)` of the current image, when a callback asked for it. */
  logLikelihood?: number;
}

/**
 * An observer of a reconstruction.
 *
 * @example
 * ```ts
 * import { defaultContext, mlem, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, PoissonLikelihood, type ReconCallback, ringForwardModel, simulateCounts } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const nema = nemaIecPhantom(grid);
 * const model = ringForwardModel(ctx, scanner, { grid, muMap: nema.mu, subsets: 4 });
 * const activity = ctx.array(grid.shape, nema.activity);
 * const { counts } = await simulateCounts(model, activity, { trueCounts: 1e6, seed: 1 });
 * const likelihood = new PoissonLikelihood(model, counts);
 * // a custom observer: the image's total activity after every 5th iteration and the last
 * const totals: number[] = [];
 * const total: ReconCallback = {
 *   needsImage: true,
 *   every: 5,
 *   onIteration(s) {
 *     totals.push(s.image!.reduce((a, b) => a + b, 0));
 *   },
 * };
 * await mlem(likelihood, { iterations: 12, callbacks: [total] }); // after 5, 10 and 12
 * ```
 */
export interface ReconCallback {
  /** Read the image back before calling. */
  readonly needsImage?: boolean;
  /** Compute and read back the log-likelihood (one extra forward projection). */
  readonly needsLogLikelihood?: boolean;
  /** Wait for the device to finish the iteration (true timings, no data read). */
  readonly needsSync?: boolean;
  /** Call only every `every`-th iteration and on the last (default 1). */
  readonly every?: number;
  /** Called after each (selected) iteration. */
  onIteration(state: IterationState): void | Promise<void>;
}

/**
 * True when `cb` runs after iteration `it` of `n`.
 *
 * @example
 * ```ts
 * import { callbackDue, progressCallback } from "@petrel/petrel";
 * const cb = progressCallback({ every: 5 });
 * [1, 5, 7, 10, 12].filter((it) => callbackDue(cb, it, 12)); // [5, 10, 12]: every 5th and the last
 * ```
 */
export function callbackDue(cb: ReconCallback, it: number, n: number): boolean {
  const every = cb.every ?? 1;
  return it === n || it % every === 0;
}

/** Options of {@linkcode progressCallback}. */
export interface ProgressOptions {
  /** Where lines go (default: stderr). */
  write?: (line: string) => void;
  /** Print every `every`-th iteration (default 1). */
  every?: number;
  /** Label put in front of each line. */
  label?: string;
}

/**
 * Prints `label OSEM 3/10  1.2 s` lines after iterations (waits for the device, reads nothing).
 *
 * @example
 * ```ts
 * import { defaultContext, mlem, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, PoissonLikelihood, progressCallback, ringForwardModel, simulateCounts } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const nema = nemaIecPhantom(grid);
 * const model = ringForwardModel(ctx, scanner, { grid, muMap: nema.mu, subsets: 4 });
 * const activity = ctx.array(grid.shape, nema.activity);
 * const { counts } = await simulateCounts(model, activity, { trueCounts: 1e6, seed: 1 });
 * const likelihood = new PoissonLikelihood(model, counts);
 * const progress = progressCallback({ every: 5, label: "NEMA" }); // "NEMA MLEM 5/20  1.23 s"
 * await mlem(likelihood, { iterations: 20, callbacks: [progress] });
 * ```
 */
export function progressCallback(options: ProgressOptions = {}): ReconCallback {
  const enc = new TextEncoder();
  const write = options.write ??
    ((line: string) => Deno.stderr.writeSync(enc.encode(line + "\n")));
  return {
    needsSync: true,
    every: options.every,
    onIteration(s) {
      const label = options.label ? `${options.label} ` : "";
      const ll = s.logLikelihood !== undefined ? `  L=${s.logLikelihood.toPrecision(10)}` : "";
      write(
        `${label}${s.algorithm} ${s.iteration}/${s.iterations}  ${
          (s.elapsedMs / 1000).toFixed(2)
        } s${ll}`,
      );
    },
  };
}

/** A callback that records `L(x)` after every (selected) iteration into `values`. */
export interface LogLikelihoodRecorder extends ReconCallback {
  /** `[iteration, L]` pairs in order. */
  readonly values: [number, number][];
}

/**
 * Records the log-likelihood after every `every`-th iteration.
 *
 * @example
 * ```ts
 * import { defaultContext, logLikelihoodCallback, mlem, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, PoissonLikelihood, ringForwardModel, simulateCounts } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const nema = nemaIecPhantom(grid);
 * const model = ringForwardModel(ctx, scanner, { grid, muMap: nema.mu, subsets: 4 });
 * const activity = ctx.array(grid.shape, nema.activity);
 * const { counts } = await simulateCounts(model, activity, { trueCounts: 1e6, seed: 1 });
 * const likelihood = new PoissonLikelihood(model, counts);
 * const ll = logLikelihoodCallback({ every: 2 });
 * await mlem(likelihood, { iterations: 10, callbacks: [ll] });
 * ll.values; // [[2, L₂], [4, L₄], …, [10, L₁₀]]: increasing for MLEM
 * ```
 */
export function logLikelihoodCallback(options: { every?: number } = {}): LogLikelihoodRecorder {
  const values: [number, number][] = [];
  return {
    needsLogLikelihood: true,
    every: options.every,
    values,
    onIteration(s) {
      values.push([s.iteration, s.logLikelihood!]);
    },
  };
}

/** A metric of an image against the truth (both host arrays of the same length). */
export type ImageMetric = (image: Float32Array, truth: Float32Array) => number;

/** A callback that evaluates metrics against a known truth after selected iterations. */
export interface MetricsRecorder extends ReconCallback {
  /** One row per evaluated iteration: `{iteration, <metric>: value, …}`. */
  readonly rows: Record<string, number>[];
}

/**
 * Evaluates `metrics` (default: NRMSE `‖x − t‖₂ / ‖t‖₂` from `core/metrics`) of the current
 * image against `truth` after every `every`-th iteration (reads the image back on those iterations
 * only).
 *
 * @example
 * ```ts
 * import { defaultContext, metricsCallback, mlem, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, PoissonLikelihood, psnr, ringForwardModel, simulateCounts } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const nema = nemaIecPhantom(grid);
 * const model = ringForwardModel(ctx, scanner, { grid, muMap: nema.mu, subsets: 4 });
 * const activity = ctx.array(grid.shape, nema.activity);
 * const { counts, scale } = await simulateCounts(model, activity, { trueCounts: 1e6, seed: 1 });
 * const likelihood = new PoissonLikelihood(model, counts);
 * const truth = nema.activity.map((v) => v * scale); // what the reconstruction estimates
 * const m = metricsCallback(truth, {
 *   every: 5,
 *   metrics: { psnr: (x, t) => psnr(t, x) }, // default: { nrmse }
 * });
 * await mlem(likelihood, { iterations: 20, callbacks: [m] });
 * console.table(m.rows); // { iteration, psnr } after iterations 5, 10, 15, 20
 * ```
 */
export function metricsCallback(
  truth: Float32Array,
  options: { metrics?: Record<string, ImageMetric>; every?: number } = {},
): MetricsRecorder {
  const metrics = options.metrics ??
    { nrmse: (x: Float32Array, t: Float32Array) => nrmse(t, x) };
  const rows: Record<string, number>[] = [];
  return {
    needsImage: true,
    every: options.every,
    rows,
    onIteration(s) {
      if (s.image!.length !== truth.length) {
        throw new RangeError(
          `metricsCallback: image has ${s.image!.length} voxels, truth has ${truth.length}`,
        );
      }
      const row: Record<string, number> = { iteration: s.iteration };
      for (const [name, f] of Object.entries(metrics)) row[name] = f(s.image!, truth);
      rows.push(row);
    },
  };
}
