/**
 * A data simulator independent of the reconstruction operator: line integrals of a fine-grid
 * truth (≤ 1 mm voxels) along the scanner's LORs in fine steps with trilinear interpolation, an
 * axial extent of each detector plane (several parallel sub-lines), attenuation per sub-line, a
 * radial detector blur, normalisation, randoms, scatter and Poisson noise. It never touches the
 * projector or forward model that reconstructs the data (this module may not import them, see
 * `tests/layering_test.ts`), so a method tested on these data does not profit from the inverse
 * crime.
 *
 * @module
 */

import type { ImageGrid } from "../geometry/grid.ts";
import type { LorSet } from "../geometry/lors.ts";
import { Rng } from "../random.ts";

/** How the lines are sampled. */
export interface LineIntegralOptions {
  /** Step along each line in mm (default: half the smallest voxel size). */
  stepMm?: number;
  /**
   * Axial extent of a detector plane in mm (default 0: one line). With a width `w` the value of
   * an LOR is the mean over `axialSamples` parallel lines at z offsets spread evenly over
   * `[−w/2, w/2]` (centres of equal parts).
   */
  axialWidthMm?: number;
  /** Number of parallel sub-lines across the axial width (default 4 when a width is given). */
  axialSamples?: number;
}

/** Trilinear interpolation of `image` on `grid` at a point in mm (0 outside the voxel centres' hull). */
function trilinear(
  image: Float32Array,
  grid: ImageGrid,
  x: number,
  y: number,
  z: number,
): number {
  const [nx, ny, nz] = grid.shape;
  const fx = (x - grid.originMm[0]) / grid.voxelSizeMm[0];
  const fy = (y - grid.originMm[1]) / grid.voxelSizeMm[1];
  const fz = nz === 1 ? 0 : (z - grid.originMm[2]) / grid.voxelSizeMm[2];
  if (fx < 0 || fy < 0 || fz < 0 || fx > nx - 1 || fy > ny - 1 || fz > nz - 1) return 0;
  const i = Math.min(Math.floor(fx), nx - 2 < 0 ? 0 : nx - 2);
  const j = Math.min(Math.floor(fy), ny - 2 < 0 ? 0 : ny - 2);
  const k = nz === 1 ? 0 : Math.min(Math.floor(fz), nz - 2);
  const ax = fx - i, ay = fy - j, az = nz === 1 ? 0 : fz - k;
  const sx = nx * 1, sy = nx * ny;
  const at = (di: number, dj: number, dk: number) => {
    const ii = Math.min(i + di, nx - 1),
      jj = Math.min(j + dj, ny - 1),
      kk = Math.min(k + dk, nz - 1);
    return image[ii + sx * jj + sy * kk];
  };
  const c00 = at(0, 0, 0) * (1 - ax) + at(1, 0, 0) * ax;
  const c10 = at(0, 1, 0) * (1 - ax) + at(1, 1, 0) * ax;
  const c01 = at(0, 0, 1) * (1 - ax) + at(1, 0, 1) * ax;
  const c11 = at(0, 1, 1) * (1 - ax) + at(1, 1, 1) * ax;
  const c0 = c00 * (1 - ay) + c10 * ay;
  const c1 = c01 * (1 - ay) + c11 * ay;
  return c0 * (1 - az) + c1 * az;
}

/** The part `[t0, t1]` (in units of the segment) of `p + t d` inside the box `lo … hi`. */
function clipToBox(
  p: readonly number[],
  d: readonly number[],
  lo: readonly number[],
  hi: readonly number[],
): [number, number] | null {
  let t0 = 0, t1 = 1;
  for (let a = 0; a < 3; a++) {
    if (Math.abs(d[a]) < 1e-12) {
      if (p[a] < lo[a] || p[a] > hi[a]) return null;
      continue;
    }
    let ta = (lo[a] - p[a]) / d[a], tb = (hi[a] - p[a]) / d[a];
    if (ta > tb) [ta, tb] = [tb, ta];
    t0 = Math.max(t0, ta);
    t1 = Math.min(t1, tb);
    if (t0 >= t1) return null;
  }
  return [t0, t1];
}

/**
 * Line integrals (value × mm) of `images` (all on `grid`) along every LOR, sampled every
 * `stepMm` with trilinear interpolation (midpoint rule), averaged over the axial sub-lines. With
 * `mu` given, each image's integral on a sub-line is weighted by that sub-line's attenuation
 * factor `exp(−∫μ)` before the average, and the mean attenuation factor per LOR is returned too.
 *
 * @example
 * ```ts
 * import { brainPhantomStudy, centredGrid, fineLineIntegrals, mmrLike2d } from "@petrel/petrel";
 * const scanner = mmrLike2d();
 * const fineGrid = centredGrid([512, 512, 1], [0.5, 0.5, 2.086]);
 * const activity = brainPhantomStudy({ dims: 2, grid: fineGrid }).activity.fdg!;
 * // a 0.5 mm truth, the LORs of a direct plane of 2.086 mm, 0.25 mm steps
 * const { integrals } = fineLineIntegrals([activity], fineGrid, scanner.lors(), {
 *   stepMm: 0.25,
 *   axialWidthMm: 2.086,
 * });
 * ```
 */
export function fineLineIntegrals(
  images: readonly Float32Array[],
  grid: ImageGrid,
  lors: LorSet,
  options: LineIntegralOptions & { mu?: Float32Array } = {},
): { integrals: Float32Array[]; attenuation?: Float32Array } {
  const [nx, ny, nz] = grid.shape;
  const n = nx * ny * nz;
  for (const im of images) {
    if (im.length !== n) {
      throw new RangeError(`fineLineIntegrals: an image has ${im.length} voxels, the grid ${n}`);
    }
  }
  if (options.mu && options.mu.length !== n) {
    throw new RangeError(`fineLineIntegrals: mu has ${options.mu.length} voxels, the grid ${n}`);
  }
  const step = options.stepMm ?? Math.min(...grid.voxelSizeMm) / 2;
  if (!(step > 0)) throw new RangeError(`stepMm must be > 0, got ${step}`);
  const width = options.axialWidthMm ?? 0;
  const subs = width > 0 ? options.axialSamples ?? 4 : 1;
  if (!Number.isInteger(subs) || subs < 1) {
    throw new RangeError(`axialSamples must be an integer ≥ 1, got ${subs}`);
  }
  const lo = [0, 1, 2].map((a) =>
    grid.originMm[a] - (a === 2 && nz === 1 ? grid.voxelSizeMm[2] / 2 : 0)
  );
  const hi = [0, 1, 2].map((a) =>
    grid.originMm[a] + (grid.shape[a] - 1) * grid.voxelSizeMm[a] +
    (a === 2 && nz === 1 ? grid.voxelSizeMm[2] / 2 : 0)
  );
  const out = images.map(() => new Float32Array(lors.count));
  const att = options.mu ? new Float32Array(lors.count) : undefined;
  const e = lors.endpoints;
  const vals = new Float64Array(images.length);
  for (let l = 0; l < lors.count; l++) {
    const sums = new Float64Array(images.length);
    let attSum = 0;
    for (let s = 0; s < subs; s++) {
      const dz = subs === 1 ? 0 : width * ((s + 0.5) / subs - 0.5);
      const p = [e[6 * l], e[6 * l + 1], e[6 * l + 2] + dz];
      const d = [e[6 * l + 3] - p[0], e[6 * l + 4] - p[1], e[6 * l + 5] + dz - p[2]];
      const len = Math.hypot(d[0], d[1], d[2]);
      const seg = clipToBox(p, d, lo, hi);
      vals.fill(0);
      let muInt = 0;
      if (seg) {
        const span = (seg[1] - seg[0]) * len;
        const m = Math.max(1, Math.ceil(span / step));
        const h = span / m;
        for (let q = 0; q < m; q++) {
          const t = seg[0] + ((q + 0.5) * h) / len;
          const x = p[0] + t * d[0], y = p[1] + t * d[1], z = p[2] + t * d[2];
          for (let c = 0; c < images.length; c++) vals[c] += trilinear(images[c], grid, x, y, z);
          if (options.mu) muInt += trilinear(options.mu, grid, x, y, z);
        }
        for (let c = 0; c < images.length; c++) vals[c] *= h;
        muInt *= h;
      }
      const a = options.mu ? Math.exp(-muInt) : 1;
      for (let c = 0; c < images.length; c++) sums[c] += vals[c] * a;
      attSum += a;
    }
    for (let c = 0; c < images.length; c++) out[c][l] = sums[c] / subs;
    if (att) att[l] = attSum / subs;
  }
  return { integrals: out, attenuation: att };
}

/**
 * Gaussian blur along the fastest (radial) axis of `[radial, …]` data, FWHM in bins, edges
 * clamped; the sum of each row is kept (normalised taps, up to the clamped edges).
 *
 * @example
 * ```ts
 * import { radialBlur } from "@petrel/petrel";
 * const sinogram = new Float32Array(344 * 252); // [344 radial, 252 views]
 * const blurred = radialBlur(sinogram, 344, 2.2); // 2.2-bin FWHM detector response
 * ```
 */
export function radialBlur(data: Float32Array, radial: number, fwhmBins: number): Float32Array {
  if (!(fwhmBins > 0)) return Float32Array.from(data);
  if (data.length % radial !== 0) {
    throw new RangeError(`radialBlur: ${data.length} values are not rows of ${radial}`);
  }
  const sigma = fwhmBins / (2 * Math.sqrt(2 * Math.log(2)));
  const half = Math.ceil(3 * sigma);
  const w: number[] = [];
  let ws = 0;
  for (let t = -half; t <= half; t++) {
    w.push(Math.exp(-0.5 * (t / sigma) ** 2));
    ws += w[w.length - 1];
  }
  const out = new Float32Array(data.length);
  for (let row = 0; row < data.length / radial; row++) {
    const o = row * radial;
    for (let r = 0; r < radial; r++) {
      let s = 0;
      for (let t = -half; t <= half; t++) {
        s += w[t + half] * data[o + Math.min(radial - 1, Math.max(0, r + t))];
      }
      out[o + r] = s / ws;
    }
  }
  return out;
}

/** Options of {@linkcode simulateFineCounts}. */
export interface FineCountOptions extends LineIntegralOptions {
  /** Activity on `grid` (any units). */
  activity: Float32Array;
  /** μ at 511 keV on `grid`, 1/mm (default: no attenuation). */
  mu?: Float32Array;
  /** The fine grid (voxels ≤ 1 mm for an honest bench). */
  grid: ImageGrid;
  /** The scanner's LORs; `shape[0]` is the radial axis. */
  lors: LorSet;
  /** Detector blur along the radial axis, FWHM in bins (default 0). */
  radialBlurFwhmBins?: number;
  /** Bin efficiencies (normalisation) multiplying the trues (default 1). */
  normalisation?: Float32Array;
  /** Expected true coincidences in the whole data set. */
  trueCounts: number;
  /** Flat randoms as a fraction of the expected prompts (default 0). */
  randomsFraction?: number;
  /** Scatter as a fraction of the expected prompts (default 0). */
  scatterFraction?: number;
  /** Scatter shape: the trues blurred radially with this σ in bins (default 12). */
  scatterSigmaBins?: number;
  /** Seed of the Poisson draws. */
  seed: number;
  /**
   * This activity's line integrals and attenuation factors, precomputed by
   * {@linkcode fineLineIntegrals} with the same LORs, grid, μ and sampling (they do not depend on
   * the counts or the seed, so one pass can serve many noise realisations and tracers).
   */
  lineIntegrals?: { integral: Float32Array; attenuation?: Float32Array };
}

/** Result of {@linkcode simulateFineCounts} (all sinograms in the LORs' order and layout). */
export interface FineCounts {
  /** Poisson prompts. */
  prompts: Float32Array;
  /** Expected trues (attenuated, blurred, normalised, scaled to `trueCounts`). */
  trues: Float32Array;
  /** Expected randoms + scatter (what a reconstruction is given as its additive term). */
  additive: Float32Array;
  /** Mean attenuation factor per LOR (1 without μ). */
  attenuation: Float32Array;
  /** Counts per (activity unit × mm): the truth in the reconstruction's units is activity × scale. */
  scale: number;
}

/**
 * Simulates prompts from a fine-grid truth without the reconstruction operator (see the module
 * notes): expected trues = normalisation × blur(∫ activity · exp(−∫μ)), scaled to `trueCounts`;
 * randoms flat and scatter a broad radial blur of the trues, each a fraction of the expected
 * prompts; Poisson draws from one seeded stream.
 *
 * @example
 * ```ts
 * import { brainPhantomStudy, centredGrid, mmrLike2d, simulateFineCounts } from "@petrel/petrel";
 * const scanner = mmrLike2d();
 * const fineGrid = centredGrid([512, 512, 1], [0.5, 0.5, 2.086]);
 * const study = brainPhantomStudy({ dims: 2, grid: fineGrid, seed: 1 });
 * const activity = study.activity.fdg!, mu = study.mu!;
 * const sim = simulateFineCounts({
 *   activity, mu, grid: fineGrid, lors: scanner.lors(),
 *   axialWidthMm: 2.086, radialBlurFwhmBins: 2,
 *   trueCounts: 3e5, randomsFraction: 0.2, scatterFraction: 0.3, seed: 1,
 * });
 * // reconstruct sim.prompts with sim.additive; compare with truth × sim.scale
 * ```
 */
export function simulateFineCounts(options: FineCountOptions): FineCounts {
  const { lors, grid } = options;
  const radial = lors.shape[0];
  const rf = options.randomsFraction ?? 0;
  const sf = options.scatterFraction ?? 0;
  if (!(options.trueCounts > 0) || !Number.isFinite(options.trueCounts)) {
    throw new RangeError(`trueCounts must be a finite number > 0, got ${options.trueCounts}`);
  }
  if (!(rf >= 0 && sf >= 0 && rf + sf < 1)) {
    throw new RangeError(`randomsFraction ${rf} + scatterFraction ${sf} must be in [0, 1)`);
  }
  if (options.normalisation && options.normalisation.length !== lors.count) {
    throw new RangeError(
      `normalisation has ${options.normalisation.length} bins, the LORs ${lors.count}`,
    );
  }
  const pre = options.lineIntegrals;
  if (pre && pre.integral.length !== lors.count) {
    throw new RangeError(`lineIntegrals has ${pre.integral.length} values, the LORs ${lors.count}`);
  }
  const { integrals, attenuation } = pre
    ? { integrals: [pre.integral], attenuation: pre.attenuation }
    : fineLineIntegrals([options.activity], grid, lors, { ...options, mu: options.mu });
  let trues = radialBlur(integrals[0], radial, options.radialBlurFwhmBins ?? 0);
  if (options.normalisation) {
    const nrm = options.normalisation;
    trues = trues.map((v, i) => v * nrm[i]);
  }
  let sumT = 0;
  for (const v of trues) sumT += v;
  if (!(sumT > 0)) throw new RangeError("the truth projects to zero trues");
  const scale = options.trueCounts / sumT;
  for (let i = 0; i < trues.length; i++) trues[i] *= scale;
  const prompts = options.trueCounts / (1 - rf - sf);
  const additive = new Float32Array(trues.length);
  if (rf > 0) additive.fill(rf * prompts / trues.length);
  if (sf > 0) {
    const shape = radialBlur(trues, radial, (options.scatterSigmaBins ?? 12) * 2.3548200450309493);
    let s = 0;
    for (const v of shape) s += v;
    for (let i = 0; i < additive.length; i++) additive[i] += sf * prompts * shape[i] / s;
  }
  const rng = new Rng(options.seed);
  const counts = new Float32Array(trues.length);
  for (let i = 0; i < counts.length; i++) counts[i] = rng.poisson(trues[i] + additive[i]);
  return {
    prompts: counts,
    trues,
    additive,
    attenuation: attenuation ?? new Float32Array(lors.count).fill(1),
    scale,
  };
}
