/**
 * The data-disagreement lever of DDIP (issue 15): where the measured data disagree with the
 * chain's output, let the final data-consistency iterations act; elsewhere keep the output.
 *
 * A prior trained on PET that follows the MR fills in or erases lesions the MR does not show. The
 * data still see them: at the chain's output `x̂` the EM ratio `r = Aᵀ(m ⊙ y / ȳ(x̂)) / Aᵀm` (the
 * factor one MLEM iteration would multiply each voxel by) is above 1 over a suppressed hot lesion
 * and below 1 over a filled cold one. The disagreement image `d = G ∗ (r − 1)` (in-plane Gaussian
 * `G` of `disagreementFwhmMm`, which averages the ratio's voxel noise) flags such regions; the
 * weight `w = clamp((|d| − τ) / τ, 0, 1)` (τ = `disagreementThreshold`) is 0 where they agree and
 * 1 where they disagree by 2τ or more. The final iterations are then penalised-EM iterations
 * towards `x̂` whose update is kept only in proportion to `w`:
 *
 *   x₀ = x̂,   x_{k+1} = w ⊙ PEM(x_k; x̂, β) + (1 − w) ⊙ x̂,
 *
 * so voxels where the data agree stay at the prior's image (no added noise there), and flagged
 * voxels follow the data while the rest of the image explains the other counts. With `w ≡ 1` it is
 * the unrestricted final x-step (`finalEmRegion: "all"`).
 *
 * @module
 */

import type { GpuArray } from "../../gpu/context.ts";
import type { ImageGrid } from "../../geometry/grid.ts";
import type { PoissonLikelihood } from "../../model/likelihood.ts";
import { gaussianPostFilter } from "../filter.ts";
import { PenalisedEmStep } from "../xstep.ts";

/**
 * The EM ratio image `Aᵀ(m ⊙ y / ȳ(x)) / Aᵀm` at the host image `x` (activity units, clamped at
 * 0), with 1 where the sensitivity is 0 (voxels no line of response sees carry no evidence).
 *
 * @example
 * ```ts
 * import { emRatioImage } from "./residual.ts";
 * const r = await emRatioImage(likelihood, image); // > 1 where the data want more activity
 * ```
 */
export async function emRatioImage(
  likelihood: PoissonLikelihood,
  x: Float32Array,
): Promise<Float32Array> {
  const model = likelihood.model;
  const ctx = model.ctx;
  const n = model.imageShape.reduce((a, b) => a * b, 1);
  if (x.length !== n) throw new RangeError(`emRatioImage: image has ${x.length} voxels, not ${n}`);
  const xd = ctx.array(model.imageShape, Float32Array.from(x, (v) => Math.max(v, 0)));
  const bp = ctx.array(model.imageShape);
  const tmp = model.subsetCount > 1 ? ctx.array(model.imageShape) : undefined;
  try {
    ctx.run((rec) => likelihood.recordFullEmBackprojection(rec, xd, bp, tmp));
    const b = await bp.read();
    const sens = await model.totalSensitivity().read();
    const r = new Float32Array(n);
    for (let j = 0; j < n; j++) r[j] = sens[j] > 0 ? b[j] / sens[j] : 1;
    return r;
  } finally {
    for (const a of [xd, bp, tmp]) a?.destroy();
  }
}

/**
 * The weight of the restricted final iterations from the disagreement image `d`:
 * `clamp((|d| − τ) / τ, 0, 1)`.
 *
 * @example
 * ```ts
 * import { disagreementWeight } from "./residual.ts";
 * disagreementWeight(Float32Array.of(0, 0.1, 0.15, -0.3), 0.1); // [0, 0, 0.5, 1]
 * ```
 */
export function disagreementWeight(d: Float32Array, threshold: number): Float32Array {
  if (!(threshold > 0) || !Number.isFinite(threshold)) {
    throw new RangeError(`disagreement threshold must be a finite number > 0, got ${threshold}`);
  }
  return Float32Array.from(
    d,
    (v) => Math.min(1, Math.max(0, (Math.abs(v) - threshold) / threshold)),
  );
}

/** Options of {@linkcode restrictedDataConsistency}. */
export interface RestrictedDcOptions {
  /** Penalised-EM iterations (`finalEmIterations`). */
  iterations: number;
  /** Coupling towards the chain's output in activity units (`finalBeta / s²`). */
  beta: number;
  /** In-plane FWHM (mm) of the Gaussian applied to `r − 1` (0: none). */
  fwhmMm: number;
  /** τ of {@linkcode disagreementWeight}. */
  threshold: number;
  /** Ordered-subset x-step iterations (`xStepOrderedSubsets`). */
  orderedSubsets?: boolean;
}

/** Result of {@linkcode restrictedDataConsistency}. */
export interface RestrictedDcResult {
  /** The image after the restricted iterations (activity units). */
  image: Float32Array;
  /** The disagreement image `d = G ∗ (r − 1)` at the chain's output. */
  disagreement: Float32Array;
  /** The weight `w` of the iterations' update. */
  weight: Float32Array;
}

/**
 * The disagreement image `G ∗ (r − 1)` of {@linkcode emRatioImage} at `x` (in-plane Gaussian of
 * `fwhmMm`, zero padding: outside the image there is no evidence either way).
 *
 * @example
 * ```ts
 * import { disagreementImage } from "./residual.ts";
 * const d = await disagreementImage(likelihood, grid, image, 6); // ≈ 0 where data and image agree
 * ```
 */
export async function disagreementImage(
  likelihood: PoissonLikelihood,
  grid: ImageGrid,
  x: Float32Array,
  fwhmMm: number,
): Promise<Float32Array> {
  const r = await emRatioImage(likelihood, x);
  for (let j = 0; j < r.length; j++) r[j] -= 1;
  if (!(fwhmMm > 0)) return r;
  const ctx = likelihood.model.ctx;
  const rd = ctx.array(grid.shape, r);
  const f = gaussianPostFilter(ctx, grid, rd, fwhmMm);
  rd.destroy();
  try {
    return await f.read();
  } finally {
    f.destroy();
  }
}

/**
 * The final data-consistency iterations restricted to where the data disagree with `image` (see
 * the module notes): `iterations` penalised-EM iterations towards `image`, each update blended
 * with `image` by the weight `w`.
 *
 * @example
 * ```ts
 * import { restrictedDataConsistency } from "./residual.ts";
 * const { image: kept, weight } = await restrictedDataConsistency(likelihood, grid, image, {
 *   iterations: 20, beta: 1e-4 / (s * s), fwhmMm: 6, threshold: 0.05,
 * });
 * ```
 */
export async function restrictedDataConsistency(
  likelihood: PoissonLikelihood,
  grid: ImageGrid,
  image: Float32Array,
  options: RestrictedDcOptions,
): Promise<RestrictedDcResult> {
  const disagreement = await disagreementImage(likelihood, grid, image, options.fwhmMm);
  const weight = disagreementWeight(disagreement, options.threshold);
  return {
    image: await weightedEm(likelihood, image, weight, options),
    disagreement,
    weight,
  };
}

/**
 * `iterations` penalised-EM iterations towards `target` from `target`, each update kept with
 * weight `w` (`x ← w ⊙ PEM(x) + (1 − w) ⊙ target`). With `w ≡ 1` it equals one x-step of
 * `iterations` iterations from the target, bit for bit (tested).
 */
export async function weightedEm(
  likelihood: PoissonLikelihood,
  target: Float32Array,
  weight: Float32Array,
  options: { iterations: number; beta: number; orderedSubsets?: boolean },
): Promise<Float32Array> {
  const model = likelihood.model;
  const ctx = model.ctx;
  const n = target.length;
  if (weight.length !== n) {
    throw new RangeError(`weightedEm: weight has ${weight.length} voxels, image ${n}`);
  }
  const z: GpuArray = ctx.array(model.imageShape, target);
  const x: GpuArray = ctx.array(model.imageShape);
  const step = new PenalisedEmStep(likelihood);
  try {
    let cur = Float32Array.from(target, (v) => Math.max(v, 0));
    for (let it = 0; it < options.iterations; it++) {
      x.write(cur);
      ctx.run((rec) =>
        step.record(rec, x, z, {
          beta: options.beta,
          iterations: 1,
          initFromTarget: false,
          orderedSubsets: options.orderedSubsets,
        })
      );
      const upd = await x.read();
      const next = new Float32Array(n);
      for (let j = 0; j < n; j++) next[j] = weight[j] * upd[j] + (1 - weight[j]) * target[j];
      cur = next;
    }
    return cur;
  } finally {
    z.destroy();
    x.destroy();
    step.destroy();
  }
}
