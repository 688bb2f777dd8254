/**
 * Region-of-interest figures of merit: ROI mean / standard deviation / coefficient of variation,
 * lesion contrast recovery, background variability, bias and standard deviation across noise
 * realisations, and NEMA NU 2-style sphere contrast and background variability for the IEC body
 * phantom.
 *
 * Masks are arrays with the image's length; a voxel is inside when its value is non-zero (or
 * `true`). Standard deviations are sample standard deviations (divisor n − 1) throughout, as in
 * NEMA NU 2. Everything is computed in float64 on host arrays.
 *
 * @module
 */

import type { Mask } from "./image.ts";

/** Statistics of an image inside one mask. */
export interface RoiStats {
  /** Number of voxels in the mask. */
  count: number;
  /** Mean of the voxel values. */
  mean: number;
  /** Sample standard deviation (n − 1) of the voxel values. */
  std: number;
  /** Coefficient of variation, std / mean. */
  cov: number;
  /** Smallest voxel value. */
  min: number;
  /** Largest voxel value. */
  max: number;
}

function checkMask(image: ArrayLike<number>, mask: Mask, what: string): void {
  if (mask.length !== image.length) {
    throw new RangeError(
      `${what}: the mask has ${mask.length} voxels but the image has ${image.length}; ` +
        `expected the same grid`,
    );
  }
}

/**
 * Mean, sample std, CoV, min and max of `image` inside `mask`. Throws for an empty mask.
 *
 * @example
 * ```ts
 * import { readNifti, roiStats } from "@petrel/petrel";
 * const osem = (await readNifti("out/osem.nii")).data;
 * const whiteMatter = (await readNifti("sim/labels.nii")).data.map((l) => (l === 3 ? 1 : 0));
 * const { mean, std, cov } = roiStats(osem, whiteMatter); // cov = std / mean, the ROI noise
 * ```
 */
export function roiStats(image: ArrayLike<number>, mask: Mask): RoiStats {
  checkMask(image, mask, "roiStats");
  let n = 0, s = 0, min = Infinity, max = -Infinity;
  for (let i = 0; i < image.length; i++) {
    if (!mask[i]) continue;
    const v = image[i];
    n++;
    s += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (n === 0) throw new RangeError("roiStats: the mask is empty; expected at least one voxel");
  const mean = s / n;
  let ss = 0;
  for (let i = 0; i < image.length; i++) {
    if (mask[i]) ss += (image[i] - mean) ** 2;
  }
  const std = n > 1 ? Math.sqrt(ss / (n - 1)) : 0;
  return { count: n, mean, std, cov: std / mean, min, max };
}

/**
 * Mean of `image` inside `mask`.
 *
 * @example
 * ```ts
 * import { readNifti, roiMean } from "@petrel/petrel";
 * const truth = (await readNifti("sim/truth.nii")).data;
 * const image = (await readNifti("out/osem.nii")).data;
 * const lesion = Uint8Array.from(truth, (v) => (v > 3 ? 1 : 0));
 * roiMean(image, lesion) / roiMean(truth, lesion); // recovery of the lesion mean
 * ```
 */
export function roiMean(image: ArrayLike<number>, mask: Mask): number {
  checkMask(image, mask, "roiMean");
  let n = 0, s = 0;
  for (let i = 0; i < image.length; i++) {
    if (mask[i]) {
      s += image[i];
      n++;
    }
  }
  if (n === 0) throw new RangeError("roiMean: the mask is empty; expected at least one voxel");
  return s / n;
}

/** Options of {@linkcode contrastRecovery}. */
export interface ContrastRecoveryOptions {
  /** Lesion (hot or cold) mask. */
  lesion: Mask;
  /** Background mask. */
  background: Mask;
  /** True lesion-to-background ratio a_true / b_true. Give this or `truth`. */
  trueRatio?: number;
  /** True image, from which the ratio is measured with the same masks. */
  truth?: ArrayLike<number>;
}

/**
 * Lesion contrast recovery `CRC = (ā/b̄ − 1) / (a_true/b_true − 1)`, with ā, b̄ the means of
 * `image` in the lesion and background masks. 1 means full recovery; for a cold lesion
 * (true ratio < 1) the same formula gives the cold contrast recovery.
 *
 * @example
 * ```ts
 * import { contrastRecovery, readNifti } from "@petrel/petrel";
 * const truth = (await readNifti("sim/truth.nii")).data;
 * const image = (await readNifti("out/osem.nii")).data;
 * const lesion = truth.map((v) => (v > 3 ? 1 : 0));
 * const background = truth.map((v) => (v > 0 && v <= 3 ? 1 : 0));
 * // CRC = (ā/b̄ − 1) / (a_true/b_true − 1)
 * const crc = contrastRecovery(image, { lesion, background, truth });
 * ```
 */
export function contrastRecovery(
  image: ArrayLike<number>,
  options: ContrastRecoveryOptions,
): number {
  const a = roiMean(image, options.lesion);
  const b = roiMean(image, options.background);
  let ratio = options.trueRatio;
  if (ratio === undefined) {
    if (!options.truth) {
      throw new TypeError("contrastRecovery: give trueRatio or truth (the true image)");
    }
    ratio = roiMean(options.truth, options.lesion) / roiMean(options.truth, options.background);
  }
  if (ratio === 1) {
    throw new RangeError("contrastRecovery: the true lesion/background ratio is 1 (no contrast)");
  }
  return (a / b - 1) / (ratio - 1);
}

/** Background variability over a set of ROIs. */
export interface BackgroundVariability {
  /** Mean of each ROI. */
  roiMeans: number[];
  /** Mean of the ROI means. */
  mean: number;
  /** Sample standard deviation (K − 1) of the ROI means. */
  std: number;
  /** std / mean (a fraction; ×100 for NEMA's percent). */
  variability: number;
}

/**
 * Background variability as in NEMA NU 2: the sample standard deviation of the means of K
 * background ROIs divided by their average. Needs at least two ROIs.
 *
 * @example
 * ```ts
 * import { backgroundVariability, centredGrid, voxelCentreMm } from "@petrel/petrel";
 * const grid = centredGrid([128, 128, 1], [2, 2, 2]);
 * const image = new Float32Array(128 * 128).fill(1);
 * // 12 circular ROIs of 10 mm radius on a 60 mm ring
 * const rois = Array.from({ length: 12 }, (_, k) => {
 *   const cx = 60 * Math.cos((k * Math.PI) / 6), cy = 60 * Math.sin((k * Math.PI) / 6);
 *   return Uint8Array.from({ length: 128 * 128 }, (_, i) => {
 *     const [x, y] = voxelCentreMm(grid, i % 128, Math.floor(i / 128), 0);
 *     return Math.hypot(x - cx, y - cy) <= 10 ? 1 : 0;
 *   });
 * });
 * const { variability } = backgroundVariability(image, rois); // 0 for a flat image
 * ```
 */
export function backgroundVariability(
  image: ArrayLike<number>,
  rois: readonly Mask[],
): BackgroundVariability {
  if (rois.length < 2) {
    throw new RangeError(
      `backgroundVariability: got ${rois.length} ROI(s); expected at least 2 background ROIs`,
    );
  }
  const roiMeans = rois.map((m) => roiMean(image, m));
  const k = roiMeans.length;
  const mean = roiMeans.reduce((a, b) => a + b, 0) / k;
  const std = Math.sqrt(roiMeans.reduce((a, b) => a + (b - mean) ** 2, 0) / (k - 1));
  return { roiMeans, mean, std, variability: std / mean };
}

/** Options of {@linkcode ensembleStats}. */
export interface EnsembleOptions {
  /** Ground truth: enables the bias images and percentages. */
  truth?: ArrayLike<number>;
  /** ROI for the summary numbers (default: all voxels). */
  mask?: Mask;
}

/** Statistics across noise realisations of the same object. */
export interface EnsembleStats {
  /** Number of realisations. */
  count: number;
  /** Voxel-wise mean over realisations. */
  mean: Float64Array;
  /** Voxel-wise sample standard deviation (R − 1) over realisations. */
  std: Float64Array;
  /** Voxel-wise bias, mean − truth (when `truth` is given). */
  bias?: Float64Array;
  /**
   * Summary in the mask, in percent of the truth's ROI mean (or of the ensemble's ROI mean
   * without a truth): ROI bias `(mean_ROI(ensemble mean) − mean_ROI(truth))`, mean absolute
   * voxel bias, mean voxel std (the usual "noise" axis of bias–noise curves), and the std across
   * realisations of the ROI mean.
   */
  summary: {
    biasPercent?: number;
    absBiasPercent?: number;
    stdPercent: number;
    roiMeanStdPercent: number;
  };
}

/**
 * Voxel-wise mean, standard deviation and bias over noise realisations, with ROI summaries for
 * bias–noise plots. Needs at least two realisations.
 *
 * @example
 * ```ts
 * import { ensembleStats, readNifti } from "@petrel/petrel";
 * const truth = (await readNifti("sim/truth.nii")).data;
 * // one OSEM image per noise realisation (seeds 1 … 10)
 * const realisations = await Promise.all(
 *   Array.from({ length: 10 }, async (_, r) => (await readNifti(`out/osem_seed${r + 1}.nii`)).data),
 * );
 * const mask = truth.map((v) => (v > 0 ? 1 : 0));
 * const { summary } = ensembleStats(realisations, { truth, mask });
 * console.log(summary.biasPercent, summary.stdPercent); // one point of a bias–noise curve
 * ```
 */
export function ensembleStats(
  realisations: readonly ArrayLike<number>[],
  options: EnsembleOptions = {},
): EnsembleStats {
  const r = realisations.length;
  if (r < 2) {
    throw new RangeError(`ensembleStats: got ${r} realisation(s); expected at least 2`);
  }
  const n = realisations[0].length;
  realisations.forEach((x, k) => {
    if (x.length !== n) {
      throw new RangeError(
        `ensembleStats: realisation ${k} has ${x.length} voxels, realisation 0 has ${n}`,
      );
    }
  });
  const { truth } = options;
  if (truth && truth.length !== n) {
    throw new RangeError(`ensembleStats: the truth has ${truth.length} voxels, the images ${n}`);
  }
  const mask = options.mask ?? new Uint8Array(n).fill(1);
  if (mask.length !== n) {
    throw new RangeError(`ensembleStats: the mask has ${mask.length} voxels, the images ${n}`);
  }
  const mean = new Float64Array(n);
  for (const x of realisations) for (let i = 0; i < n; i++) mean[i] += x[i];
  for (let i = 0; i < n; i++) mean[i] /= r;
  const std = new Float64Array(n);
  for (const x of realisations) for (let i = 0; i < n; i++) std[i] += (x[i] - mean[i]) ** 2;
  for (let i = 0; i < n; i++) std[i] = Math.sqrt(std[i] / (r - 1));
  const ref = truth ? roiMean(truth, mask) : roiMean(mean, mask);
  let m = 0, sStd = 0, sBias = 0, sAbs = 0;
  let bias: Float64Array | undefined;
  if (truth) {
    bias = new Float64Array(n);
    for (let i = 0; i < n; i++) bias[i] = mean[i] - truth[i];
  }
  for (let i = 0; i < n; i++) {
    if (!mask[i]) continue;
    m++;
    sStd += std[i];
    if (bias) {
      sBias += bias[i];
      sAbs += Math.abs(bias[i]);
    }
  }
  const roiMeans = realisations.map((x) => roiMean(x, mask));
  const rm = roiMeans.reduce((a, b) => a + b, 0) / r;
  const rmStd = Math.sqrt(roiMeans.reduce((a, b) => a + (b - rm) ** 2, 0) / (r - 1));
  return {
    count: r,
    mean,
    std,
    bias,
    summary: {
      biasPercent: bias ? (100 * sBias) / m / ref : undefined,
      absBiasPercent: bias ? (100 * sAbs) / m / ref : undefined,
      stdPercent: (100 * sStd) / m / ref,
      roiMeanStdPercent: (100 * rmStd) / ref,
    },
  };
}

/** One sphere of the IEC body phantom for {@linkcode nemaIec}. */
export interface NemaSphere {
  /** Label, e.g. "10 mm". */
  name?: string;
  /** Sphere ROI mask (NEMA: a circular ROI of the sphere's diameter on its central slice). */
  mask: Mask;
  /** Hot (filled with the sphere activity) or cold (no activity). */
  hot: boolean;
  /** Background ROIs of this sphere's size; default: the shared `backgroundRois`. */
  backgroundRois?: readonly Mask[];
}

/** Options of {@linkcode nemaIec}. */
export interface NemaIecOptions {
  /** The phantom's spheres. */
  spheres: readonly NemaSphere[];
  /** Background ROIs shared by the spheres without their own (NEMA: 12 per slice × 5 slices). */
  backgroundRois?: readonly Mask[];
  /** True hot-sphere to background activity ratio a_H / a_B (NEMA: 4 or 8). */
  activityRatio: number;
}

/** NEMA NU 2 figures for one sphere. */
export interface NemaSphereResult {
  name?: string;
  hot: boolean;
  /** Mean in the sphere ROI. */
  sphereMean: number;
  /** Average of the background ROI means (C_B). */
  backgroundMean: number;
  /** Hot: `Q_H = (C_H/C_B − 1)/(a_H/a_B − 1)·100`; cold: `Q_C = (1 − C_C/C_B)·100`. */
  contrastPercent: number;
  /** `N = SD_B / C_B · 100`, SD_B the sample std (K − 1) of the background ROI means. */
  backgroundVariabilityPercent: number;
}

/**
 * NEMA NU 2-style percent contrast and background variability for the IEC body phantom, from
 * sphere and background ROI masks (building the ROIs is the caller's, e.g. the phantom
 * generator's, job).
 *
 * @example
 * ```ts
 * import { centredGrid, NemaMaterial, nemaIec, nemaIecPhantom, voxelCentreMm } from "@petrel/petrel";
 * const grid = centredGrid([128, 128, 1], [2, 2, 2]); // the sphere plane
 * const nema = nemaIecPhantom(grid, { sphereToBackground: 4 });
 * const image = nema.activity; // or a reconstruction of it
 * const spheres = [0, 1, 2, 3, 4, 5].map((n) => ({
 *   name: `sphere ${n}`,
 *   hot: true,
 *   mask: nema.fractions[NemaMaterial.SPHERE0 + n].map((f) => (f > 0.5 ? 1 : 0)),
 * }));
 * // background ROIs: 15 mm discs in the uniform region below the spheres
 * const backgroundRois = [-60, -30, 30, 60].map((cx) =>
 *   Uint8Array.from({ length: 128 * 128 }, (_, i) => {
 *     const [x, y] = voxelCentreMm(grid, i % 128, Math.floor(i / 128), 0);
 *     return Math.hypot(x - cx, y + 80) <= 15 ? 1 : 0;
 *   })
 * );
 * const results = nemaIec(image, { spheres, backgroundRois, activityRatio: 4 });
 * console.log(results.map((r) => r.contrastPercent.toFixed(1))); // Q_H per sphere, %
 * ```
 */
export function nemaIec(image: ArrayLike<number>, options: NemaIecOptions): NemaSphereResult[] {
  if (!(options.activityRatio > 1)) {
    throw new RangeError(
      `nemaIec: activityRatio ${options.activityRatio} must exceed 1 (hot spheres over background)`,
    );
  }
  return options.spheres.map((s, j) => {
    const rois = s.backgroundRois ?? options.backgroundRois;
    if (!rois) {
      throw new TypeError(
        `nemaIec: sphere ${s.name ?? j} has no background ROIs; pass backgroundRois`,
      );
    }
    const bv = backgroundVariability(image, rois);
    const c = roiMean(image, s.mask);
    const contrast = s.hot
      ? (100 * (c / bv.mean - 1)) / (options.activityRatio - 1)
      : 100 * (1 - c / bv.mean);
    return {
      name: s.name,
      hot: s.hot,
      sphereMean: c,
      backgroundMean: bv.mean,
      contrastPercent: contrast,
      backgroundVariabilityPercent: 100 * bv.variability,
    };
  });
}
