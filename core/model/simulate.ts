/**
 * Data simulation: noise-free projection of a known activity image through a
 * {@linkcode ForwardModel}, scaling to a requested number of true counts, optional uniform
 * randoms, and Poisson noise from the seeded {@linkcode Rng}.
 *
 * The projection runs on the device; the Poisson draws run on the host (the seeded generator in
 * `core/random.ts` is sequential, so the counts are identical on every machine for one seed).
 *
 * @module
 */

import type { GpuArray } from "../gpu/context.ts";
import { Rng } from "../random.ts";
import type { ForwardModel } from "./forward_model.ts";

/**
 * Options of {@linkcode simulateCounts}.
 *
 * @example
 * ```ts
 * import type { SimulationOptions } from "@petrel/petrel";
 * // 2·10⁵ trues with 30 % of the prompts randoms, spread flat over the bins
 * const low: SimulationOptions = { trueCounts: 2e5, randomsFraction: 0.3, seed: 1 };
 * // the same statistics without noise: counts = expected values
 * const noiseFree: SimulationOptions = { ...low, noiseFree: true };
 * ```
 */
export interface SimulationOptions {
  /** Expected number of true (unscattered, unrandom) coincidences in the whole data set. */
  trueCounts: number;
  /**
   * Expected randoms as a fraction of all prompts (0 ≤ f < 1), spread uniformly over the bins
   * (default 0). Ignored when `additive` is given.
   */
  randomsFraction?: number;
  /** Explicit additive expected counts (randoms + scatter) per bin, in counts. */
  additive?: Float32Array;
  /** Seed of the Poisson draws. */
  seed: number;
  /** Skip the Poisson draw (counts = expected values). */
  noiseFree?: boolean;
}

/** Result of {@linkcode simulateCounts}. */
export interface SimulatedData {
  /** Measured prompts (Poisson draws, or the expectation when noise-free). */
  counts: Float32Array;
  /** Expected prompts `scale · m ⊙ (A x) + a`. */
  expected: Float32Array;
  /** Additive expected counts `a` used (pass to `ForwardModel.setAdditive` before reconstructing). */
  additive: Float32Array;
  /**
   * Factor applied to the input image so that its trues sum to `trueCounts`: the reconstruction
   * of these data estimates `scale · truth`.
   */
  scale: number;
}

/**
 * Simulates measured data for the activity image `truth` (on the model's grid). The model's own
 * additive term is ignored: the additive term of the simulation comes from `options`.
 *
 * @example
 * ```ts
 * import { defaultContext, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, ringForwardModel, simulateCounts } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const nema = nemaIecPhantom(grid, { sphereToBackground: 4 });
 * const model = ringForwardModel(ctx, scanner, { grid, muMap: nema.mu, subsets: 4 });
 * const truth = ctx.array(grid.shape, nema.activity);
 * // Poisson prompts with 1e5 expected trues and 20 % flat randoms
 * const { counts, additive } = await simulateCounts(model, truth, {
 *   trueCounts: 1e5,
 *   randomsFraction: 0.2,
 *   seed: 1,
 * });
 * model.setAdditive(additive);
 * ```
 */
export async function simulateCounts(
  model: ForwardModel,
  truth: GpuArray,
  options: SimulationOptions,
): Promise<SimulatedData> {
  if (!(options.trueCounts > 0) || !Number.isFinite(options.trueCounts)) {
    throw new RangeError(`trueCounts must be a finite number > 0, got ${options.trueCounts}`);
  }
  const f = options.randomsFraction ?? 0;
  if (!(f >= 0 && f < 1)) {
    throw new RangeError(`randomsFraction must be in [0, 1), got ${f}`);
  }
  const n = model.binCount;
  if (options.additive && options.additive.length !== n) {
    throw new RangeError(
      `additive has ${options.additive.length} values, expected one per bin (${n})`,
    );
  }
  const trues = await model.expectedTrues(truth);
  let sum = 0;
  for (const v of trues) sum += v;
  if (!(sum > 0)) {
    throw new RangeError("simulateCounts: the image projects to zero trues; nothing to simulate");
  }
  const scale = options.trueCounts / sum;
  const additive = options.additive
    ? Float32Array.from(options.additive)
    : new Float32Array(n).fill((f / (1 - f)) * options.trueCounts / n);
  const expected = new Float32Array(n);
  for (let i = 0; i < n; i++) expected[i] = scale * trues[i] + additive[i];
  let counts: Float32Array;
  if (options.noiseFree) counts = Float32Array.from(expected);
  else {
    const rng = new Rng(options.seed);
    counts = new Float32Array(n);
    for (let i = 0; i < n; i++) counts[i] = rng.poisson(Math.max(0, expected[i]));
  }
  return { counts, expected, additive, scale };
}
