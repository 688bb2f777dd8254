/**
 * The `metrics.json` of a reconstruction: the method and its parameters, image statistics, the
 * Poisson log-likelihood, and PSNR / SSIM / NRMSE / MSE against a reference (truth) when one is
 * given. Pure and host-side; {@linkcode reconMetrics} builds the object, the recipes write it
 * (see `writeReconResults` in `core/runtime/results.ts`).
 *
 * @module
 */
import { mse, nrmse, psnr, ssim } from "./image.ts";

/**
 * Format tag of `metrics.json`.
 *
 * @example
 * ```ts
 * import { METRICS_FORMAT } from "@petrel/petrel";
 * const m = JSON.parse(await Deno.readTextFile("out/metrics.json"));
 * if (m.format !== METRICS_FORMAT) throw new Error(`out/metrics.json: not ${METRICS_FORMAT}`);
 * ```
 */
export const METRICS_FORMAT = "petrel-metrics/1";

/** A reference image (usually the simulation's truth) to score against. */
export interface MetricsReference {
  /** Where it came from, e.g. "truth.nii". */
  name: string;
  /** Voxels, x fastest. */
  data: ArrayLike<number>;
  /** Its shape `[nx, ny, nz]`; a shape unlike the image's is reported, not scored. */
  shape: readonly number[];
}

/** What {@linkcode reconMetrics} needs. */
export interface ReconMetricsInput {
  /** Method name, e.g. "OSEM". */
  method: string;
  /** The run's parameters (recorded as given). */
  params?: Record<string, unknown>;
  /** The reconstructed image, x fastest. */
  image: ArrayLike<number>;
  /** Its shape `[nx, ny, nz]`. */
  shape: readonly number[];
  /** Poisson log-likelihood `L(x)` of the image (with its constant term), if computed. */
  logLikelihood?: number;
  /** A reference to score against. */
  reference?: MetricsReference | null;
  /** Units of the image values (recorded). */
  units?: string;
  /** Any further figures (e.g. per-iteration objective values). */
  extra?: Record<string, unknown>;
}

/** Scores against the reference (data range = reference max − min; SSIM per axial slice). */
export interface ReferenceScores {
  /** The reference's name. */
  name: string;
  /** PSNR in dB over the whole image. */
  psnrDb: number;
  /** Gaussian-window SSIM, averaged over axial slices; null when a slice is under 11 × 11. */
  ssim: number | null;
  /** RMSE / √mean(reference²). */
  nrmse: number;
  /** Mean squared error. */
  mse: number;
  /** Data range used by PSNR and SSIM. */
  dataRange: number;
}

/** The content of `metrics.json`. */
export interface ReconMetrics {
  /** {@linkcode METRICS_FORMAT}. */
  format: typeof METRICS_FORMAT;
  /** Method name. */
  method: string;
  /** Parameters as given. */
  params: Record<string, unknown>;
  /** Image shape. */
  shape: number[];
  /** Units of the values. */
  units: string;
  /** Statistics of the image values. */
  image: { min: number; max: number; mean: number; sum: number };
  /** `L(x)`, or null when not computed. */
  logLikelihood: number | null;
  /** Scores against the reference, or null when none was given. */
  reference: ReferenceScores | null;
  /** Why a given reference was not scored (e.g. another shape). */
  referenceNote?: string;
  /** Further figures. */
  extra?: Record<string, unknown>;
}

/**
 * Builds the `metrics.json` object of a reconstruction.
 *
 * @example
 * ```ts
 * import { readNifti, reconMetrics } from "@petrel/petrel";
 * const x = (await readNifti("out/osem.nii")).data; // 32 × 32 × 1
 * const truth = (await readNifti("sim/truth.nii")).data;
 * const logLikelihood = -1.52e5; // e.g. await new PoissonLikelihood(model, counts).logLikelihood(xGpu)
 * const m = reconMetrics({
 *   method: "OSEM", params: { iterations: 4 }, image: x, shape: [32, 32, 1],
 *   logLikelihood,
 *   reference: { name: "truth.nii", data: truth, shape: [32, 32, 1] },
 * });
 * // m.reference?.psnrDb, m.reference?.ssim, m.logLikelihood
 * ```
 */
export function reconMetrics(input: ReconMetricsInput): ReconMetrics {
  const { image, shape } = input;
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== image.length) {
    throw new RangeError(
      `reconMetrics: shape ${
        JSON.stringify(shape)
      } holds ${n} voxels but the image has ${image.length}`,
    );
  }
  let min = Infinity, max = -Infinity, sum = 0;
  for (let i = 0; i < image.length; i++) {
    const v = image[i];
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  const out: ReconMetrics = {
    format: METRICS_FORMAT,
    method: input.method,
    params: { ...(input.params ?? {}) },
    shape: [...shape],
    units: input.units ?? "a.u.",
    image: { min, max, mean: sum / Math.max(1, image.length), sum },
    logLikelihood: input.logLikelihood ?? null,
    reference: null,
  };
  const ref = input.reference;
  if (ref) {
    const same = ref.shape.length === shape.length && ref.shape.every((d, i) => d === shape[i]) &&
      ref.data.length === image.length;
    if (!same) {
      out.referenceNote = `${ref.name} has shape ${JSON.stringify(ref.shape)}, the image ${
        JSON.stringify(shape)
      }: not scored`;
    } else {
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < ref.data.length; i++) {
        lo = Math.min(lo, ref.data[i]);
        hi = Math.max(hi, ref.data[i]);
      }
      const dataRange = hi > lo ? hi - lo : 1;
      out.reference = {
        name: ref.name,
        psnrDb: psnr(ref.data, image, { dataRange }),
        // SSIM's 11-voxel window needs slices of at least 11 × 11.
        ssim: shape[0] >= 11 && shape[1] >= 11 ? ssim(ref.data, image, { shape, dataRange }) : null,
        nrmse: nrmse(ref.data, image),
        mse: mse(ref.data, image),
        dataRange,
      };
    }
  }
  if (input.extra) out.extra = { ...input.extra };
  return out;
}
