/**
 * EM-type reconstruction algorithms on the device: MLEM, OSEM and MAP-EM (De Pierro) with a
 * neighbourhood prior, each iteration recorded into ONE submit; nothing is read back unless a
 * callback asks for it.
 *
 * Every algorithm maximises `L(x) − β R(x)` (β = 0 without a prior) from a {@linkcode
 * PoissonLikelihood}, which holds the forward model and the data, like PyTomography's
 * likelihood objects.
 *
 * @module
 */

import type { GpuArray, KernelRecorder } from "../gpu/context.ts";
import { fill } from "../gpu/ops.ts";
import type { PoissonLikelihood } from "../model/likelihood.ts";
import { recordEmUpdate, recordPenalisedUpdate } from "../model/kernels.ts";
import type { NeighbourhoodPrior } from "./priors.ts";
import { callbackDue, type IterationState, type ReconCallback } from "./callbacks.ts";

/**
 * Options shared by the algorithms.
 *
 * @example
 * ```ts
 * import { defaultContext, type EmOptions, gaussianPostFilter, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, osem, PoissonLikelihood, ringForwardModel, simulateCounts } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const nema = nemaIecPhantom(grid);
 * const model = ringForwardModel(ctx, scanner, { grid, muMap: nema.mu, subsets: 4 });
 * const activity = ctx.array(grid.shape, nema.activity);
 * const { counts } = await simulateCounts(model, activity, { trueCounts: 1e6, seed: 1 });
 * const likelihood = new PoissonLikelihood(model, counts);
 * const warm = await osem(likelihood, { iterations: 2 });
 * const options: EmOptions = {
 *   iterations: 3,
 *   initial: gaussianPostFilter(ctx, grid, warm, 8), // a device array: copied, not modified
 *   submit: "subset", // one submit per sub-iteration (very large problems)
 * };
 * const x = await osem(likelihood, options);
 * ```
 */
export interface EmOptions {
  /** Number of iterations (each iteration visits every subset once). */
  iterations: number;
  /**
   * Initial image: a device array (copied, not modified) or a constant (default 1). Voxels with
   * zero sensitivity become 0 after the first update.
   */
  initial?: GpuArray | number;
  /** Observers called after iterations. */
  callbacks?: readonly ReconCallback[];
  /**
   * "iteration" (default): one submit per iteration (all subsets); "subset": one submit per
   * sub-iteration (shorter command buffers for very large problems).
   */
  submit?: "iteration" | "subset";
}

/** Scratch arrays of one EM run (image-sized). */
export interface EmScratch {
  /** Back projection `A_kᵀ(m y / ybar)`. */
  bp: GpuArray;
  /** Second image-sized array (sums over subsets). */
  tmp: GpuArray;
  /** Prior surrogate coefficients. */
  a: GpuArray;
  bz: GpuArray;
}

/**
 * Allocates the scratch arrays of an EM run on the likelihood's device.
 *
 * @example
 * ```ts
 * import { defaultContext, emScratch, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, PoissonLikelihood, ringForwardModel, simulateCounts } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const nema = nemaIecPhantom(grid);
 * const model = ringForwardModel(ctx, scanner, { grid, muMap: nema.mu, subsets: 4 });
 * const activity = ctx.array(grid.shape, nema.activity);
 * const { counts } = await simulateCounts(model, activity, { trueCounts: 1e6, seed: 1 });
 * const likelihood = new PoissonLikelihood(model, counts);
 * const scratch = emScratch(likelihood); // four image-sized arrays
 * // … recordEmSubiteration(rec, likelihood, x, { subset: k, scratch }) …
 * for (const a of [scratch.bp, scratch.tmp, scratch.a, scratch.bz]) a.destroy();
 * ```
 */
export function emScratch(likelihood: PoissonLikelihood): EmScratch {
  const ctx = likelihood.model.ctx;
  const shape = likelihood.model.imageShape;
  return { bp: ctx.array(shape), tmp: ctx.array(shape), a: ctx.array(shape), bz: ctx.array(shape) };
}

function destroyScratch(s: EmScratch): void {
  for (const a of [s.bp, s.tmp, s.a, s.bz]) a.destroy();
}

/**
 * Records one (OS-)EM sub-iteration on subset `k`: `x ← x ⊙ A_kᵀ(m_k y_k / ybar_k) / s_k`, or the
 * De Pierro MAP update with `prior` (β scaled by 1/K for K subsets, so that a full pass weighs
 * the prior once).
 *
 * @example
 * ```ts
 * import { defaultContext, emScratch, fill, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, PoissonLikelihood, recordEmSubiteration, ringForwardModel, simulateCounts } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const nema = nemaIecPhantom(grid);
 * const model = ringForwardModel(ctx, scanner, { grid, muMap: nema.mu, subsets: 4 });
 * const activity = ctx.array(grid.shape, nema.activity);
 * const { counts } = await simulateCounts(model, activity, { trueCounts: 1e6, seed: 1 });
 * const likelihood = new PoissonLikelihood(model, counts);
 * const x = ctx.array(grid.shape);
 * const scratch = emScratch(likelihood);
 * // two OSEM iterations, each one submit over all subsets (what osem() records)
 * for (let it = 0; it < 2; it++) {
 *   ctx.run((rec) => {
 *     if (it === 0) fill(rec, x, 1);
 *     for (let k = 0; k < likelihood.model.subsetCount; k++) {
 *       recordEmSubiteration(rec, likelihood, x, { subset: k, scratch });
 *     }
 *   });
 * }
 * ```
 */
export function recordEmSubiteration(
  rec: KernelRecorder,
  likelihood: PoissonLikelihood,
  x: GpuArray,
  options: { subset: number; scratch: EmScratch; prior?: NeighbourhoodPrior },
): void {
  const { subset: k, scratch } = options;
  const model = likelihood.model;
  const sens = model.sensitivity(k);
  if (options.prior) {
    // The surrogate is built at the image of the start of the sub-iteration.
    options.prior.recordCoefficients(
      rec,
      x,
      { a: scratch.a, bz: scratch.bz },
      1 / model.subsetCount,
    );
  }
  likelihood.recordEmBackprojection(rec, k, x, scratch.bp);
  if (options.prior) {
    recordPenalisedUpdate(rec, x, { bp: scratch.bp, sens, a: scratch.a, bz: scratch.bz });
  } else recordEmUpdate(rec, x, scratch.bp, sens);
}

/**
 * Records one full-data EM iteration (all subsets summed: MLEM, or MAP-EM with `prior`):
 * `x ← x ⊙ Σ_k A_kᵀ(m_k y_k / ybar_k) / Σ_k s_k`.
 *
 * @example
 * ```ts
 * import { defaultContext, emScratch, fill, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, PoissonLikelihood, recordEmIteration, ringForwardModel, simulateCounts } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const nema = nemaIecPhantom(grid);
 * const model = ringForwardModel(ctx, scanner, { grid, muMap: nema.mu, subsets: 4 });
 * const activity = ctx.array(grid.shape, nema.activity);
 * const { counts } = await simulateCounts(model, activity, { trueCounts: 1e6, seed: 1 });
 * const likelihood = new PoissonLikelihood(model, counts);
 * const x = ctx.array(grid.shape);
 * const scratch = emScratch(likelihood);
 * likelihood.model.totalSensitivity(); // compute (and cache) s before recording
 * ctx.run((rec) => {
 *   fill(rec, x, 1);
 *   for (let it = 0; it < 10; it++) recordEmIteration(rec, likelihood, x, { scratch }); // 10 MLEM iterations, one submit
 * });
 * ```
 */
export function recordEmIteration(
  rec: KernelRecorder,
  likelihood: PoissonLikelihood,
  x: GpuArray,
  options: { scratch: EmScratch; prior?: NeighbourhoodPrior },
): void {
  const { scratch, prior } = options;
  const model = likelihood.model;
  const sens = model.totalSensitivity();
  if (prior) prior.recordCoefficients(rec, x, { a: scratch.a, bz: scratch.bz });
  likelihood.recordFullEmBackprojection(rec, x, scratch.bp, scratch.tmp);
  if (prior) recordPenalisedUpdate(rec, x, { bp: scratch.bp, sens, a: scratch.a, bz: scratch.bz });
  else recordEmUpdate(rec, x, scratch.bp, sens);
}

function initialImage(
  likelihood: PoissonLikelihood,
  initial: GpuArray | number | undefined,
): GpuArray {
  const ctx = likelihood.model.ctx;
  const shape = likelihood.model.imageShape;
  const x = ctx.array(shape);
  if (initial === undefined || typeof initial === "number") {
    const v = initial ?? 1;
    if (!(v > 0) || !Number.isFinite(v)) {
      throw new RangeError(`initial image value must be a finite number > 0, got ${v}`);
    }
    ctx.run((rec) => fill(rec, x, v));
  } else {
    if (initial.length !== x.length) {
      throw new RangeError(
        `initial image has ${initial.length} voxels, expected ${x.length} (shape ${
          JSON.stringify(shape)
        })`,
      );
    }
    ctx.run((rec) => rec.copy(initial, x));
  }
  return x;
}

/**
 * The shared driver: records `step(rec, x, part)` for `parts` parts per iteration (sub-iterations)
 * into one submit per iteration (or per part with `submit: "subset"`), then serves the callbacks
 * that are due (reading back only what they asked for).
 */
async function iterate(
  name: string,
  likelihood: PoissonLikelihood,
  options: EmOptions,
  parts: number,
  step: (rec: KernelRecorder, x: GpuArray, part: number) => void,
): Promise<GpuArray> {
  const n = options.iterations;
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`iterations must be an integer ≥ 0, got ${n}`);
  }
  const ctx = likelihood.model.ctx;
  // Sensitivities are computed (and cached) before the first iteration's recording.
  for (let k = 0; k < likelihood.model.subsetCount; k++) likelihood.model.sensitivity(k);
  likelihood.model.totalSensitivity();
  const x = initialImage(likelihood, options.initial);
  const callbacks = options.callbacks ?? [];
  const ll = callbacks.some((c) => c.needsLogLikelihood) ? ctx.array([1]) : null;
  const t0 = performance.now();
  try {
    for (let it = 1; it <= n; it++) {
      const due = callbacks.filter((c) => callbackDue(c, it, n));
      const wantLl = due.some((c) => c.needsLogLikelihood);
      let rec = ctx.record();
      for (let p = 0; p < parts; p++) {
        if (p > 0 && options.submit === "subset") {
          rec.submit();
          rec = ctx.record();
        }
        step(rec, x, p);
      }
      if (wantLl) likelihood.recordLogLikelihood(rec, x, ll!);
      rec.submit();
      if (due.length === 0) continue;
      const state: IterationState = {
        algorithm: name,
        iteration: it,
        iterations: n,
        elapsedMs: 0,
      };
      if (due.some((c) => c.needsImage)) state.image = await x.read();
      if (wantLl) state.logLikelihood = (await ll!.read())[0] + likelihood.constant;
      if (due.some((c) => c.needsSync)) await ctx.finish();
      state.elapsedMs = performance.now() - t0;
      for (const c of due) await c.onIteration(state);
    }
  } catch (e) {
    x.destroy();
    throw e;
  } finally {
    ll?.destroy();
  }
  return x;
}

/**
 * MLEM: full-data EM iterations (sums over the model's subsets when it has several).
 *
 * @example
 * ```ts
 * import { defaultContext, mlem, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, PoissonLikelihood, ringForwardModel, simulateCounts } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const nema = nemaIecPhantom(grid);
 * const model = ringForwardModel(ctx, scanner, { grid, muMap: nema.mu, subsets: 4 });
 * const truth = ctx.array(grid.shape, nema.activity);
 * const { counts } = await simulateCounts(model, truth, { trueCounts: 1e6, seed: 1 });
 * const likelihood = new PoissonLikelihood(model, counts);
 * const x = await mlem(likelihood, { iterations: 20 });
 * const image = await x.read(); // estimates simulateCounts' scale × truth
 * ```
 */
export async function mlem(likelihood: PoissonLikelihood, options: EmOptions): Promise<GpuArray> {
  const scratch = emScratch(likelihood);
  try {
    return await iterate("MLEM", likelihood, options, 1, (rec, x) => {
      recordEmIteration(rec, likelihood, x, { scratch });
    });
  } finally {
    await likelihood.model.ctx.finish();
    destroyScratch(scratch);
  }
}

/**
 * OSEM over the model's subsets (one submit per iteration = all subsets).
 *
 * @example
 * ```ts
 * import { defaultContext, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, osem, PoissonLikelihood, progressCallback, ringForwardModel, simulateCounts } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const nema = nemaIecPhantom(grid);
 * const model = ringForwardModel(ctx, scanner, { grid, muMap: nema.mu, subsets: 4 });
 * const truth = ctx.array(grid.shape, nema.activity);
 * const { counts } = await simulateCounts(model, truth, { trueCounts: 1e6, seed: 1 });
 * const likelihood = new PoissonLikelihood(model, counts);
 * // the model's 4 subsets, 4 full iterations
 * const x = await osem(likelihood, {
 *   iterations: 4,
 *   callbacks: [progressCallback({ label: "NEMA" })], // "NEMA OSEM 1/4  0.42 s" on stderr
 * });
 * ```
 */
export async function osem(likelihood: PoissonLikelihood, options: EmOptions): Promise<GpuArray> {
  const scratch = emScratch(likelihood);
  try {
    const subsets = likelihood.model.subsetCount;
    return await iterate("OSEM", likelihood, options, subsets, (rec, x, k) => {
      recordEmSubiteration(rec, likelihood, x, { subset: k, scratch });
    });
  } finally {
    await likelihood.model.ctx.finish();
    destroyScratch(scratch);
  }
}

/** Options of {@linkcode mapEm}. */
export interface MapEmOptions extends EmOptions {
  /** Use the model's subsets as ordered subsets (OS-MAP-EM, β/K per subset; default true). */
  orderedSubsets?: boolean;
}

/**
 * MAP-EM with De Pierro's separable surrogate for a {@linkcode NeighbourhoodPrior}
 * (maximises `L(x) − β R(x)`). With `orderedSubsets` and a multi-subset model each iteration
 * visits every subset; otherwise each iteration uses all data.
 *
 * @example
 * ```ts
 * import { defaultContext, mapEm, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, PoissonLikelihood, relativeDifferencePrior, ringForwardModel, simulateCounts } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const nema = nemaIecPhantom(grid);
 * const model = ringForwardModel(ctx, scanner, { grid, muMap: nema.mu, subsets: 4 });
 * const truth = ctx.array(grid.shape, nema.activity);
 * const { counts } = await simulateCounts(model, truth, { trueCounts: 1e6, seed: 1 });
 * const likelihood = new PoissonLikelihood(model, counts);
 * const prior = relativeDifferencePrior(ctx, grid, { beta: 1, gamma: 2 });
 * const x = await mapEm(likelihood, prior, { iterations: 10 }); // OS-MAP-EM over the 4 subsets
 * ```
 */
export async function mapEm(
  likelihood: PoissonLikelihood,
  prior: NeighbourhoodPrior,
  options: MapEmOptions,
): Promise<GpuArray> {
  const scratch = emScratch(likelihood);
  const name = prior.kind === "quadratic" ? "MAP-EM(quadratic)" : "MAP-EM(RDP)";
  const os = (options.orderedSubsets ?? true) && likelihood.model.subsetCount > 1;
  try {
    const parts = os ? likelihood.model.subsetCount : 1;
    return await iterate(name, likelihood, options, parts, (rec, x, k) => {
      if (os) recordEmSubiteration(rec, likelihood, x, { subset: k, scratch, prior });
      else recordEmIteration(rec, likelihood, x, { scratch, prior });
    });
  } finally {
    await likelihood.model.ctx.finish();
    destroyScratch(scratch);
  }
}
