/**
 * The penalised-EM "x-step" of HQS (half-quadratic splitting) reconstructions: given a target
 * image `z` on the device and a coupling β, it approximately solves
 * `argmax_x L(y | x) − (β/2) ‖x − z‖²` by De Pierro penalised-EM iterations, each
 *
 *   x_em = (x / s) ⊙ Aᵀ(m ⊙ y / ybar(x)),
 *   x ← ½ [(z − s/β) + √((z − s/β)² + 4 x_em s/β)]   (per voxel),
 *
 * the closed-form maximiser of the EM surrogate plus the quadratic coupling (`docs/ddip.md`).
 * It is evaluated without dividing by `s` or β (and in a cancellation-free form), so voxels with
 * zero sensitivity become `max(z, 0)`. All iterations are recorded into the caller's recorder.
 *
 * @module
 */

import type { GpuArray, KernelRecorder } from "../gpu/context.ts";
import type { PoissonLikelihood } from "../model/likelihood.ts";
import { recordClampCopy, recordXStepUpdate } from "../model/kernels.ts";

/**
 * Options of the x-step.
 *
 * @example
 * ```ts
 * import type { XStepOptions } from "@petrel/petrel";
 * // DDIP-HQS's x-step on images in activity units, scale s = 3.6: β_activity = β_prior / s²
 * const options: XStepOptions = {
 *   beta: 0.01 / 3.6 ** 2,
 *   iterations: 5,
 *   initFromTarget: true, // start from max(z, 0)
 *   orderedSubsets: false, // one update over all data per iteration (the paper)
 * };
 * ```
 */
export interface XStepOptions {
  /** Coupling strength β > 0 (in 1/(image unit)², e.g. 0.01 for images scaled to [0, 1]). */
  beta: number;
  /** Number of penalised-EM iterations (reference: 5). */
  iterations: number;
  /** Start from `max(z, 0)` (default true); otherwise from the current `x`. */
  initFromTarget?: boolean;
  /**
   * Ordered subsets (default false): each iteration runs one update per subset of the
   * likelihood's model, maximising `L_k(x) − (β / 2S) ‖x − z‖²` with subset k's data and
   * sensitivity (S subsets). An iteration then costs one pass over the data as before; whether
   * fewer iterations keep the result is measured by `bench/xstep_bench.ts`. With one subset it is
   * the plain x-step.
   */
  orderedSubsets?: boolean;
}

/**
 * The x-step with its scratch arrays allocated once (reuse it across many HQS steps). Uses all
 * data in every iteration (the EM back projection sums over the model's subsets), unless
 * {@linkcode XStepOptions.orderedSubsets}.
 *
 * @example
 * ```ts
 * import { defaultContext, gaussianPostFilter, mlem, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, PenalisedEmStep, PoissonLikelihood, ringForwardModel, simulateCounts } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const nema = nemaIecPhantom(grid);
 * const model = ringForwardModel(ctx, scanner, { grid, muMap: nema.mu });
 * const activity = ctx.array(grid.shape, nema.activity);
 * const { counts } = await simulateCounts(model, activity, { trueCounts: 1e6, seed: 1 });
 * const likelihood = new PoissonLikelihood(model, counts);
 * // the target z: in HQS a denoiser's output (activity units); here a smoothed MLEM image
 * const z = gaussianPostFilter(ctx, grid, await mlem(likelihood, { iterations: 10 }), 6);
 * const x = ctx.array(grid.shape);
 * const step = new PenalisedEmStep(likelihood);
 * // 5 De Pierro iterations of −L(x) + (β/2)‖x − z‖² started from max(z, 0)
 * ctx.run((rec) => step.record(rec, x, z, { beta: 1e-3, iterations: 5, initFromTarget: true }));
 * step.destroy();
 * ```
 */
export class PenalisedEmStep {
  #bp: GpuArray;
  #tmp: GpuArray | null;

  /**
   * @param likelihood the data and forward model
   * @param scratch optional image-sized arrays to use (e.g. `rec.temp` arrays); allocated otherwise
   */
  constructor(
    readonly likelihood: PoissonLikelihood,
    scratch?: { bp: GpuArray; tmp: GpuArray },
  ) {
    const ctx = likelihood.model.ctx;
    const shape = likelihood.model.imageShape;
    this.#bp = scratch?.bp ?? ctx.array(shape);
    this.#tmp = scratch?.tmp ?? (likelihood.model.subsetCount > 1 ? ctx.array(shape) : null);
    likelihood.model.totalSensitivity(); // computed now, outside any recording
    // (the per-subset ones, used with orderedSubsets, are computed and cached with it)
  }

  /** Records `options.iterations` x-step iterations updating `x` in place towards target `z`. */
  record(rec: KernelRecorder, x: GpuArray, z: GpuArray, options: XStepOptions): void {
    if (!(options.beta > 0) || !Number.isFinite(options.beta)) {
      throw new RangeError(`x-step beta must be a finite number > 0, got ${options.beta}`);
    }
    if (!Number.isInteger(options.iterations) || options.iterations < 0) {
      throw new RangeError(`x-step iterations must be an integer ≥ 0, got ${options.iterations}`);
    }
    const n = this.#bp.length;
    if (x.length !== n || z.length !== n) {
      throw new RangeError(
        `x-step: x has ${x.length} and z ${z.length} voxels, expected ${n} each`,
      );
    }
    if (x.buffer === z.buffer) {
      throw new RangeError(
        "x-step: x and z must be different device arrays (x is updated in place)",
      );
    }
    const sens = this.likelihood.model.totalSensitivity();
    if (options.initFromTarget ?? true) recordClampCopy(rec, x, z);
    const nsub = this.likelihood.model.subsetCount;
    if (options.orderedSubsets && nsub > 1) {
      const beta = options.beta / nsub;
      for (let it = 0; it < options.iterations; it++) {
        for (let k = 0; k < nsub; k++) {
          this.likelihood.recordEmBackprojection(rec, k, x, this.#bp);
          const sk = this.likelihood.model.sensitivity(k);
          recordXStepUpdate(rec, x, { bp: this.#bp, sens: sk, z, beta });
        }
      }
      return;
    }
    for (let it = 0; it < options.iterations; it++) {
      this.likelihood.recordFullEmBackprojection(rec, x, this.#bp, this.#tmp ?? undefined);
      recordXStepUpdate(rec, x, { bp: this.#bp, sens, z, beta: options.beta });
    }
  }

  /** Frees the scratch arrays. */
  destroy(): void {
    this.#bp.destroy();
    this.#tmp?.destroy();
  }
}
