/**
 * The data-disagreement lever of DDIP (issue 15): the final data-consistency iterations are kept
 * only where the data disagree with the chain's output; elsewhere the output stays as it is.
 *
 * A prior trained on PET that follows the MR erases hot lesions the MR does not show (and fills
 * cold ones). The data still see them. With `x̂` the chain's output and `x_dc` the output of the
 * final penalised-EM iterations started from it (`finalEmIterations`, `finalBeta`: the image pulled
 * back to the data), the disagreement image is
 *
 *   d = G ∗ (x_dc − x̂) / σ,
 *
 * an in-plane Gaussian `G` of `disagreementFwhmMm` (it averages the EM iterations' voxel noise, so
 * a coherent lesion-sized change stands out) in units of `σ`, a robust spread of `G ∗ (x_dc − x̂)`
 * over the object (1.4826 × the median absolute deviation over the voxels where `x̂` exceeds 10 % of
 * its maximum), so the threshold does not depend on counts or units. The weight is
 * `w = clamp(|d| − τ, 0, 1)` (τ = `disagreementThreshold`: 0 up to τ σ, 1 from (τ + 1) σ) and the
 * result is `w ⊙ x_dc + (1 − w) ⊙ x̂`: where the data agree the prior's image is kept (no EM
 * noise there), where they disagree the data-consistent image is taken.
 *
 * Opt-in variants ({@linkcode DisagreementOptions}): hysteresis (`seedThreshold`: a connected
 * flagged region is kept only if it reaches a higher seed somewhere) and the smoothed-change blend
 * (`blend: "smoothed-change"`: `x̂ + w ⊙ G_b ∗ (x_dc − x̂)` instead of `w ⊙ x_dc + (1 − w) ⊙ x̂`).
 *
 * Measured on the validation subject (`docs/results.md`, "Data-disagreement lever"). An EM-ratio
 * flag (`Aᵀ(y/ȳ)/Aᵀ1 − 1` at `x̂`) was tried first and rejected: over a suppressed 5.9 mm lesion
 * it was 0.025 against a 95th percentile of 0.13 over the stack (one EM iteration's ratio is
 * diluted by the additive counts and by every other voxel on the lines of response).
 *
 * @module
 */

import type { GpuContext } from "../../gpu/context.ts";
import type { ImageGrid } from "../../geometry/grid.ts";
import { gaussianPostFilter } from "../filter.ts";

/** The robust spread's support: voxels above this fraction of the image's maximum. */
const SUPPORT_FRACTION = 0.1;

/**
 * `1.4826 × median |v − median(v)|` over the voxels `j` with `support[j]` (the standard deviation
 * of normally distributed values, robust to a few outliers such as lesions). 0 for an empty
 * support.
 *
 * @example
 * ```ts
 * import { robustSpread } from "@petrel/petrel";
 * const v = Float32Array.of(1, 2, 3, 4, 100);
 * robustSpread(v, v.map(() => 1)); // 1.4826: the 100 does not count
 * ```
 */
export function robustSpread(v: ArrayLike<number>, support: ArrayLike<number>): number {
  const xs: number[] = [];
  for (let j = 0; j < v.length; j++) if (support[j]) xs.push(v[j]);
  if (xs.length === 0) return 0;
  const med = median(xs);
  return 1.4826 * median(xs.map((x) => Math.abs(x - med)));
}

function median(xs: number[]): number {
  const s = Float64Array.from(xs).sort();
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

/** How flagged voxels take the data-consistent image (see {@linkcode DisagreementOptions.blend}). */
export type DisagreementBlend = "replace" | "smoothed-change";

/** Options of {@linkcode restrictToDisagreement}. */
export interface DisagreementOptions {
  /** In-plane FWHM (mm) of the Gaussian applied to `x_dc − x̂` (0: none). */
  fwhmMm: number;
  /** τ in units of the robust spread: the weight is `clamp(|d| − τ, 0, 1)`. */
  threshold: number;
  /**
   * Hysteresis (default 0: off): a connected region of flagged voxels (`|d| > τ`, 6-neighbours
   * in the stack, `d` of one sign) keeps its weights only if `|d|` reaches this value somewhere in
   * it; the other regions get weight 0. With a low τ and a high seed the whole of a lesion that
   * stands out somewhere is taken, and the scattered low flags of the EM noise are not. A seed ≤ τ
   * keeps every region (the plain rule).
   */
  seedThreshold?: number;
  /**
   * `"replace"` (default): `w ⊙ x_dc + (1 − w) ⊙ x̂`. `"smoothed-change"`:
   * `max(0, x̂ + w ⊙ G_b ∗ (x_dc − x̂))`, the chain's output corrected by the in-plane smoothed
   * change (`G_b` of {@linkcode DisagreementOptions.blendFwhmMm}), which moves the local mean to
   * the data's without the EM iterations' voxel noise.
   */
  blend?: DisagreementBlend;
  /** FWHM (mm) of `G_b` for `blend: "smoothed-change"` (default 3; 0: the raw change). */
  blendFwhmMm?: number;
}

/** The `disagreement*` fields of a DDIP configuration (`DdipConfig`), as the lever reads them. */
export interface DisagreementConfigFields {
  disagreementFwhmMm: number;
  disagreementThreshold: number;
  disagreementSeedThreshold: number;
  disagreementBlend: DisagreementBlend;
  disagreementBlendFwhmMm: number;
}

/**
 * The lever's options from a DDIP configuration's `disagreement*` fields.
 *
 * @example
 * ```ts
 * import { ddipConfig, disagreementOptionsOf } from "@petrel/petrel";
 * disagreementOptionsOf(ddipConfig()).threshold; // 3 (τ of the library defaults)
 * ```
 */
export function disagreementOptionsOf(c: DisagreementConfigFields): DisagreementOptions {
  return {
    fwhmMm: c.disagreementFwhmMm,
    threshold: c.disagreementThreshold,
    seedThreshold: c.disagreementSeedThreshold,
    blend: c.disagreementBlend,
    blendFwhmMm: c.disagreementBlendFwhmMm,
  };
}

/** Result of {@linkcode restrictToDisagreement}. */
export interface DisagreementResult {
  /** `w ⊙ x_dc + (1 − w) ⊙ x̂` (activity units). */
  image: Float32Array;
  /** The disagreement image `d` (robust-σ units; > 0 where the data want more activity). */
  disagreement: Float32Array;
  /** The weight `w` ∈ [0, 1]. */
  weight: Float32Array;
  /** The robust spread σ of the smoothed difference (activity units). */
  spread: number;
}

/**
 * Keeps the data-consistent image `dc` only where it departs from the chain's output `image`
 * coherently (see the module notes); `image` elsewhere, bit for bit.
 *
 * @example
 * ```ts
 * import { type GpuContext, type ImageGrid, restrictToDisagreement } from "@petrel/petrel";
 * declare const ctx: GpuContext;
 * declare const grid: ImageGrid;
 * declare const image: Float32Array; // the chain's output
 * declare const dc: Float32Array; // penalised-EM iterations from it (the final x-step)
 * const r = await restrictToDisagreement(ctx, grid, image, dc, { fwhmMm: 8, threshold: 3 });
 * r.image; // dc where |d| ≥ 4 σ, image where |d| ≤ 3 σ, blended in between
 * ```
 */
export async function restrictToDisagreement(
  ctx: GpuContext,
  grid: ImageGrid,
  image: Float32Array,
  dc: Float32Array,
  options: DisagreementOptions,
): Promise<DisagreementResult> {
  const n = image.length;
  if (dc.length !== n || grid.shape[0] * grid.shape[1] * grid.shape[2] !== n) {
    throw new RangeError(
      `restrictToDisagreement: image ${n}, data-consistent image ${dc.length} and grid ${
        grid.shape.join("×")
      } voxels differ`,
    );
  }
  if (!(options.threshold >= 0) || !Number.isFinite(options.threshold)) {
    throw new RangeError(`disagreement threshold must be finite and ≥ 0, got ${options.threshold}`);
  }
  let d: Float32Array = Float32Array.from(dc, (v, j) => v - image[j]);
  if (options.fwhmMm > 0) {
    const a = ctx.array(grid.shape, d);
    const f = gaussianPostFilter(ctx, grid, a, options.fwhmMm);
    a.destroy();
    try {
      d = await f.read();
    } finally {
      f.destroy();
    }
  }
  let max = 0;
  for (const v of image) max = Math.max(max, v);
  const spread = robustSpread(
    d,
    Uint8Array.from(image, (v) => (v > SUPPORT_FRACTION * max ? 1 : 0)),
  );
  // no spread (a noiseless or empty image): any departure above 1e-6 of the maximum counts
  const unit = spread > 0 ? spread : 1e-6 * max || 1;
  const seed = options.seedThreshold ?? 0;
  const blend = options.blend ?? "replace";
  const blendFwhm = options.blendFwhmMm ?? 3;
  if (!(seed >= 0) || !Number.isFinite(seed)) {
    throw new RangeError(`disagreement seed threshold must be finite and ≥ 0, got ${seed}`);
  }
  if (blend !== "replace" && blend !== "smoothed-change") {
    throw new RangeError(`disagreement blend must be "replace" or "smoothed-change", got ${blend}`);
  }
  if (!(blendFwhm >= 0) || !Number.isFinite(blendFwhm)) {
    throw new RangeError(`disagreement blend FWHM must be finite and ≥ 0, got ${blendFwhm}`);
  }
  const weight = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    d[j] /= unit;
    weight[j] = Math.min(1, Math.max(0, Math.abs(d[j]) - options.threshold));
  }
  if (seed > options.threshold) keepSeededRegions(weight, d, grid.shape, seed);
  const out = new Float32Array(n);
  if (blend === "replace") {
    for (let j = 0; j < n; j++) {
      const w = weight[j];
      out[j] = w === 0 ? image[j] : w === 1 ? dc[j] : w * dc[j] + (1 - w) * image[j];
    }
  } else {
    let change: Float32Array = Float32Array.from(dc, (v, j) => v - image[j]);
    if (blendFwhm > 0) change = await filtered(ctx, grid, change, blendFwhm);
    for (let j = 0; j < n; j++) {
      const w = weight[j];
      out[j] = w === 0 ? image[j] : Math.max(0, image[j] + w * change[j]);
    }
  }
  return { image: out, disagreement: d, weight, spread };
}

async function filtered(
  ctx: GpuContext,
  grid: ImageGrid,
  v: Float32Array,
  fwhmMm: number,
): Promise<Float32Array> {
  const a = ctx.array(grid.shape, v);
  const f = gaussianPostFilter(ctx, grid, a, fwhmMm);
  a.destroy();
  try {
    return await f.read();
  } finally {
    f.destroy();
  }
}

/**
 * Hysteresis on the weights: zeroes every connected region of `weight > 0` (6-neighbours on the
 * `[nx, ny, nz]` grid, `d` of one sign) in which `|d|` never reaches `seed`. In place.
 *
 * @example
 * ```ts
 * import { keepSeededRegions } from "@petrel/petrel";
 * // one row of 5 voxels: two regions above τ = 1, only the second reaches the seed 3
 * const d = Float32Array.of(1.5, 0, 2, 3.5, 2);
 * const w = Float32Array.of(0.5, 0, 1, 1, 1);
 * keepSeededRegions(w, d, [5, 1, 1], 3);
 * w; // Float32Array [0, 0, 1, 1, 1]
 * ```
 */
export function keepSeededRegions(
  weight: Float32Array,
  d: ArrayLike<number>,
  shape: readonly number[],
  seed: number,
): void {
  const [nx, ny, nz] = shape;
  const n = weight.length;
  if (d.length !== n || nx * ny * nz !== n) {
    throw new RangeError(
      `keepSeededRegions: weight ${n}, d ${d.length} and shape ${shape.join("×")} differ`,
    );
  }
  const keep = new Uint8Array(n);
  const stack: number[] = [];
  for (let j = 0; j < n; j++) {
    if (keep[j] || weight[j] <= 0 || !(Math.abs(d[j]) >= seed)) continue;
    keep[j] = 1;
    stack.push(j);
    while (stack.length) {
      const v = stack.pop()!;
      const i = v % nx, jj = Math.floor(v / nx) % ny, k = Math.floor(v / (nx * ny));
      const sign = Math.sign(d[v]);
      const visit = (u: number) => {
        if (!keep[u] && weight[u] > 0 && Math.sign(d[u]) === sign) {
          keep[u] = 1;
          stack.push(u);
        }
      };
      if (i > 0) visit(v - 1);
      if (i < nx - 1) visit(v + 1);
      if (jj > 0) visit(v - nx);
      if (jj < ny - 1) visit(v + nx);
      if (k > 0) visit(v - nx * ny);
      if (k < nz - 1) visit(v + nx * ny);
    }
  }
  for (let j = 0; j < n; j++) if (!keep[j]) weight[j] = 0;
}
