/**
 * Image-quality figures of merit against a known truth: MSE, PSNR, NRMSE and SSIM.
 *
 * Conventions follow scikit-image (`skimage.metrics`), against which they are tested:
 * - PSNR uses the **data range of the truth** (`max − min` of the truth, or inside the mask)
 *   unless `dataRange` is given: `10·log10(R² / MSE)`.
 * - NRMSE divides the RMSE by `‖truth‖/√N` ("euclidean", the default), the truth's range
 *   ("min-max") or its mean ("mean").
 * - SSIM is the standard Gaussian-window SSIM of Wang et al. (2004) as in
 *   `structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
 *   data_range=R)`: an 11-tap Gaussian (σ = 1.5, truncated at 3.5σ) with mirror ("reflect")
 *   boundaries, K1 = 0.01, K2 = 0.03, averaged over the image minus a 5-voxel border. In "2d"
 *   mode (the default) each z slice is scored on its own and the slice scores are averaged; in
 *   "3d" mode the window is 3-D.
 *
 * Images are host arrays x-fastest with shape `[nx, ny, nz]`. Everything is computed in float64.
 *
 * @module
 */

/**
 * A mask: voxels with a non-zero (or `true`) value are inside.
 *
 * @example
 * ```ts
 * import { type Mask, psnr } from "@petrel/petrel";
 * const truth = Float32Array.of(0, 1, 4, 4, 1, 0);
 * const recon = Float32Array.of(0.1, 1.2, 3.5, 3.9, 0.8, 0.2);
 * const head: Mask = truth.map((v) => (v > 0 ? 1 : 0)); // numbers: non-zero is inside
 * const hot: Mask = Array.from(truth, (v) => v > 2); // or booleans
 * psnr(truth, recon, { mask: head });
 * ```
 */
export type Mask = ArrayLike<number | boolean>;

/** Options shared by {@linkcode mse}, {@linkcode psnr} and {@linkcode nrmse}. */
export interface ErrorMetricOptions {
  /** Restrict the comparison to the voxels of this mask. */
  mask?: Mask;
}

/** Options of {@linkcode psnr}. */
export interface PsnrOptions extends ErrorMetricOptions {
  /** Peak value range R; default: `max(truth) − min(truth)` (over the mask if given). */
  dataRange?: number;
}

/** Options of {@linkcode nrmse}. */
export interface NrmseOptions extends ErrorMetricOptions {
  /** Normaliser (as scikit-image): "euclidean" (default), "min-max" or "mean". */
  normalization?: "euclidean" | "min-max" | "mean";
}

/** Options of {@linkcode ssim}. */
export interface SsimOptions {
  /** Image shape `[nx, ny, nz]` (or `[nx, ny]`), fastest first. */
  shape: readonly number[];
  /** Data range R; default: `max(truth) − min(truth)`. */
  dataRange?: number;
  /** "2d" (default): mean over z slices of per-slice SSIM; "3d": one 3-D window. */
  mode?: "2d" | "3d";
  /** Gaussian σ in voxels (default 1.5). */
  sigma?: number;
  /** Truncation of the Gaussian in σ (default 3.5, giving an 11-tap window for σ = 1.5). */
  truncate?: number;
  /** K1 (default 0.01). */
  k1?: number;
  /** K2 (default 0.03). */
  k2?: number;
}

function checkPair(truth: ArrayLike<number>, test: ArrayLike<number>, what: string): void {
  if (truth.length !== test.length) {
    throw new RangeError(
      `${what}: truth has ${truth.length} values but the test image has ${test.length}; ` +
        `expected images of the same shape`,
    );
  }
  if (truth.length === 0) throw new RangeError(`${what}: the images are empty`);
}

function checkMask(mask: Mask | undefined, n: number, what: string): number {
  if (!mask) return n;
  if (mask.length !== n) {
    throw new RangeError(`${what}: the mask has ${mask.length} voxels, the images ${n}`);
  }
  let c = 0;
  for (let i = 0; i < n; i++) if (mask[i]) c++;
  if (c === 0) throw new RangeError(`${what}: the mask is empty; expected at least one voxel`);
  return c;
}

function range(a: ArrayLike<number>, mask?: Mask): { min: number; max: number } {
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < a.length; i++) {
    if (mask && !mask[i]) continue;
    const v = a[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

/**
 * Mean squared error between `truth` and `test` (over `mask` if given).
 *
 * @example
 * ```ts
 * import { mse, readNifti } from "@petrel/petrel";
 * const truth = (await readNifti("sim/truth.nii")).data;
 * const osem = (await readNifti("out/osem.nii")).data;
 * const err = mse(truth, osem, { mask: truth.map((v) => (v > 0 ? 1 : 0)) }); // inside the head only
 * ```
 */
export function mse(
  truth: ArrayLike<number>,
  test: ArrayLike<number>,
  options: ErrorMetricOptions = {},
): number {
  checkPair(truth, test, "mse");
  const n = checkMask(options.mask, truth.length, "mse");
  let s = 0;
  for (let i = 0; i < truth.length; i++) {
    if (options.mask && !options.mask[i]) continue;
    const d = test[i] - truth[i];
    s += d * d;
  }
  return s / n;
}

/**
 * Peak signal-to-noise ratio in dB, `10·log10(R²/MSE)` with R the truth's data range by default
 * (skimage's `peak_signal_noise_ratio(truth, test, data_range=R)`). Infinite for identical images.
 *
 * @example
 * ```ts
 * import { psnr, readNifti } from "@petrel/petrel";
 * const truth = (await readNifti("sim/truth.nii")).data;
 * const image = (await readNifti("out/osem.nii")).data;
 * const brain = truth.map((v) => (v > 0 ? 1 : 0));
 * psnr(truth, image); // dB, data range = the truth's max − min
 * psnr(truth, image, { mask: brain }); // over a mask only
 * ```
 */
export function psnr(
  truth: ArrayLike<number>,
  test: ArrayLike<number>,
  options: PsnrOptions = {},
): number {
  const e = mse(truth, test, options);
  let r = options.dataRange;
  if (r === undefined) {
    const { min, max } = range(truth, options.mask);
    r = max - min;
  }
  if (!(r > 0)) {
    throw new RangeError(`psnr: the data range is ${r}; expected > 0 (is the truth constant?)`);
  }
  return 10 * Math.log10((r * r) / e);
}

/**
 * Normalised root-mean-square error (skimage's `normalized_root_mse`): RMSE divided by
 * `√mean(truth²)` ("euclidean", default), `max − min` of the truth ("min-max") or its mean ("mean").
 *
 * @example
 * ```ts
 * import { nrmse, readNifti } from "@petrel/petrel";
 * const truth = (await readNifti("sim/truth.nii")).data;
 * const osem = (await readNifti("out/osem.nii")).data;
 * nrmse(truth, osem); // RMSE / √mean(truth²)
 * nrmse(truth, osem, { normalization: "min-max" }); // RMSE / (max − min)
 * ```
 */
export function nrmse(
  truth: ArrayLike<number>,
  test: ArrayLike<number>,
  options: NrmseOptions = {},
): number {
  const rmse = Math.sqrt(mse(truth, test, options));
  const norm = options.normalization ?? "euclidean";
  const mask = options.mask;
  let denom: number;
  if (norm === "euclidean" || norm === "mean") {
    let s = 0, n = 0;
    for (let i = 0; i < truth.length; i++) {
      if (mask && !mask[i]) continue;
      s += norm === "euclidean" ? truth[i] * truth[i] : truth[i];
      n++;
    }
    denom = norm === "euclidean" ? Math.sqrt(s / n) : s / n;
  } else if (norm === "min-max") {
    const { min, max } = range(truth, mask);
    denom = max - min;
  } else {
    throw new TypeError(
      `nrmse: normalization "${norm}" is unknown; expected "euclidean", "min-max" or "mean"`,
    );
  }
  return rmse / denom;
}

/** 1-D Gaussian weights as `scipy.ndimage.gaussian_filter1d` builds them. */
function gaussianWeights(sigma: number, truncate: number): Float64Array {
  const r = Math.floor(truncate * sigma + 0.5);
  const w = new Float64Array(2 * r + 1);
  let s = 0;
  for (let x = -r; x <= r; x++) {
    const v = Math.exp((-0.5 * x * x) / (sigma * sigma));
    w[x + r] = v;
    s += v;
  }
  for (let i = 0; i < w.length; i++) w[i] /= s;
  return w;
}

/** Index into an axis of length n with scipy's "reflect" (half-sample symmetric) extension. */
function reflect(i: number, n: number): number {
  const p = 2 * n;
  let j = ((i % p) + p) % p;
  if (j >= n) j = p - 1 - j;
  return j;
}

/** Separable Gaussian filter of a 3-D float64 volume along the listed axes (in place). */
function gaussianFilter(
  vol: Float64Array,
  dims: readonly [number, number, number],
  axes: readonly number[],
  w: Float64Array,
): void {
  const r = (w.length - 1) / 2;
  const strides = [1, dims[0], dims[0] * dims[1]];
  for (const axis of axes) {
    const n = dims[axis];
    const st = strides[axis];
    const line = new Float64Array(n);
    const others = [0, 1, 2].filter((a) => a !== axis);
    const [a1, a2] = others;
    for (let i2 = 0; i2 < dims[a2]; i2++) {
      for (let i1 = 0; i1 < dims[a1]; i1++) {
        const base = i1 * strides[a1] + i2 * strides[a2];
        for (let k = 0; k < n; k++) line[k] = vol[base + k * st];
        for (let k = 0; k < n; k++) {
          let s = 0;
          for (let t = -r; t <= r; t++) s += w[t + r] * line[reflect(k + t, n)];
          vol[base + k * st] = s;
        }
      }
    }
  }
}

/** SSIM map of one block (a slice or the volume), averaged over the cropped interior. */
function ssimBlock(
  x: Float64Array,
  y: Float64Array,
  dims: [number, number, number],
  axes: readonly number[],
  w: Float64Array,
  c1: number,
  c2: number,
): number {
  const n = x.length;
  const ux = x.slice(), uy = y.slice();
  const uxx = new Float64Array(n), uyy = new Float64Array(n), uxy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    uxx[i] = x[i] * x[i];
    uyy[i] = y[i] * y[i];
    uxy[i] = x[i] * y[i];
  }
  for (const v of [ux, uy, uxx, uyy, uxy]) gaussianFilter(v, dims, axes, w);
  const pad = (w.length - 1) / 2;
  const lo = [0, 1, 2].map((a) => (axes.includes(a) ? pad : 0));
  const hi = [0, 1, 2].map((a) => (axes.includes(a) ? dims[a] - pad : dims[a]));
  let sum = 0, count = 0;
  for (let k = lo[2]; k < hi[2]; k++) {
    for (let j = lo[1]; j < hi[1]; j++) {
      for (let i = lo[0]; i < hi[0]; i++) {
        const p = i + dims[0] * (j + dims[1] * k);
        const mx = ux[p], my = uy[p];
        const vx = uxx[p] - mx * mx;
        const vy = uyy[p] - my * my;
        const vxy = uxy[p] - mx * my;
        const a1 = 2 * mx * my + c1, a2 = 2 * vxy + c2;
        const b1 = mx * mx + my * my + c1, b2 = vx + vy + c2;
        sum += (a1 * a2) / (b1 * b2);
        count++;
      }
    }
  }
  return sum / count;
}

/**
 * SSIM of each z slice (2-D Gaussian window), as skimage's `structural_similarity` on
 * `truth[k]`, `test[k]` with `gaussian_weights=True, sigma=1.5, use_sample_covariance=False`.
 *
 * @example
 * ```ts
 * import { readNifti, ssimSlices } from "@petrel/petrel";
 * const truth = await readNifti("sim/truth.nii");
 * const osem = await readNifti("out/osem.nii");
 * const perSlice = ssimSlices(truth.data, osem.data, { shape: truth.grid.shape }); // one per z slice
 * const worst = perSlice.indexOf(Math.min(...perSlice));
 * ```
 */
export function ssimSlices(
  truth: ArrayLike<number>,
  test: ArrayLike<number>,
  options: SsimOptions,
): number[] {
  return ssimImpl(truth, test, { ...options, mode: "2d" }).slices;
}

/**
 * Structural similarity (Gaussian-window SSIM, scikit-image conventions; see the module notes).
 * Default mode "2d": mean over z slices of the per-slice SSIM; "3d": one 3-D window.
 *
 * @example
 * ```ts
 * import { readNifti, ssim } from "@petrel/petrel";
 * const truth = (await readNifti("sim/truth.nii")).data; // 128 × 128 × 3
 * const recon = (await readNifti("out/osem.nii")).data;
 * const s = ssim(truth, recon, { shape: [128, 128, 3] }); // data range of the truth
 * ```
 */
export function ssim(
  truth: ArrayLike<number>,
  test: ArrayLike<number>,
  options: SsimOptions,
): number {
  return ssimImpl(truth, test, options).value;
}

function ssimImpl(
  truth: ArrayLike<number>,
  test: ArrayLike<number>,
  options: SsimOptions,
): { value: number; slices: number[] } {
  checkPair(truth, test, "ssim");
  const sh = options.shape;
  if (!sh || sh.length < 2 || sh.length > 3 || !sh.every((n) => Number.isInteger(n) && n > 0)) {
    throw new RangeError(
      `ssim: shape ${JSON.stringify(sh)} must be [nx, ny] or [nx, ny, nz] positive integers`,
    );
  }
  const dims: [number, number, number] = [sh[0], sh[1], sh[2] ?? 1];
  if (dims[0] * dims[1] * dims[2] !== truth.length) {
    throw new RangeError(
      `ssim: shape ${JSON.stringify(sh)} holds ${dims[0] * dims[1] * dims[2]} voxels but the ` +
        `images have ${truth.length}`,
    );
  }
  const sigma = options.sigma ?? 1.5;
  const w = gaussianWeights(sigma, options.truncate ?? 3.5);
  const mode = options.mode ?? "2d";
  const axes = mode === "3d" ? [0, 1, 2] : [0, 1];
  for (const a of axes) {
    if (dims[a] < w.length) {
      throw new RangeError(
        `ssim: the ${w.length}-voxel window exceeds the image extent ${dims[a]} along ` +
          `${"xyz"[a]} (shape ${JSON.stringify(sh)}, mode ${mode}); expected at least ${w.length}`,
      );
    }
  }
  let r = options.dataRange;
  if (r === undefined) {
    const m = range(truth);
    r = m.max - m.min;
  }
  if (!(r > 0)) {
    throw new RangeError(`ssim: the data range is ${r}; expected > 0 (is the truth constant?)`);
  }
  const c1 = ((options.k1 ?? 0.01) * r) ** 2;
  const c2 = ((options.k2 ?? 0.03) * r) ** 2;
  if (mode === "3d") {
    const value = ssimBlock(
      Float64Array.from(truth),
      Float64Array.from(test),
      dims,
      axes,
      w,
      c1,
      c2,
    );
    return { value, slices: [] };
  }
  const plane = dims[0] * dims[1];
  const slices: number[] = [];
  for (let k = 0; k < dims[2]; k++) {
    const x = new Float64Array(plane), y = new Float64Array(plane);
    for (let i = 0; i < plane; i++) {
      x[i] = truth[k * plane + i];
      y[i] = test[k * plane + i];
    }
    slices.push(ssimBlock(x, y, [dims[0], dims[1], 1], axes, w, c1, c2));
  }
  return { value: slices.reduce((a, b) => a + b, 0) / slices.length, slices };
}

/** The usual table row against a truth: PSNR (dB), SSIM, NRMSE ("euclidean"), MSE. */
export interface ImageMetrics {
  /** Peak signal-to-noise ratio in dB. */
  psnr: number;
  /** Gaussian-window SSIM. */
  ssim: number;
  /** RMSE / √mean(truth²). */
  nrmse: number;
  /** Mean squared error. */
  mse: number;
}

/**
 * PSNR, SSIM, NRMSE and MSE of `test` against `truth` in one call (the data range of the truth
 * unless `dataRange` is given; SSIM in `mode` "2d" by default). A `mask` restricts PSNR, NRMSE
 * and MSE (SSIM always uses the whole image, as its window needs the neighbourhood).
 *
 * @example
 * ```ts
 * import { imageMetrics, readNifti } from "@petrel/petrel";
 * const truth = (await readNifti("sim/truth.nii")).data;
 * const image = (await readNifti("out/osem.nii")).data;
 * const { psnr, ssim, nrmse } = imageMetrics(truth, image, { shape: [128, 128, 3] });
 * ```
 */
export function imageMetrics(
  truth: ArrayLike<number>,
  test: ArrayLike<number>,
  options: SsimOptions & { mask?: Mask },
): ImageMetrics {
  const { mask, dataRange } = options;
  return {
    psnr: psnr(truth, test, { mask, dataRange }),
    ssim: ssim(truth, test, options),
    nrmse: nrmse(truth, test, { mask }),
    mse: mse(truth, test, { mask }),
  };
}
