/**
 * Time-of-flight parameters and the TOF kernel (float64 reference): the geometry side of TOF,
 * shared by the projectors (`core/projector/tof.ts`), the sinogram sidecars and list-mode files.
 *
 * Conventions (after parallelproj's `joseph3d_tof_sino` / `joseph3d_tof_lm`; see
 * `docs/reconstruction.md`): the TOF coordinate of a point on a LOR is its distance in mm from the
 * LOR midpoint, positive towards the LOR's end point; TOF bin `t` of `nt` bins of width `w` spans
 * `[(t − nt/2)·w + c, (t + 1 − nt/2)·w + c]` (centre `(t − (nt−1)/2)·w + c`), `c` being the TOF
 * centre offset; the kernel is the Gaussian of the TOF FWHM truncated at `nSigmas`·σ, integrated
 * over the bin and renormalised so that bins tiling the LOR sum to one.
 *
 * @module
 */

import { z } from "zod";

/**
 * Speed of light in mm/ps.
 *
 * @example
 * ```ts
 * import { SPEED_OF_LIGHT_MM_PER_PS } from "@petrel/petrel";
 * const mm = 400 * SPEED_OF_LIGHT_MM_PER_PS / 2; // 400 ps timing → ≈ 60 mm along the LOR
 * ```
 */
export const SPEED_OF_LIGHT_MM_PER_PS = 0.299792458;

/**
 * Position difference along a LOR (mm) that a time difference of `ps` picoseconds means:
 * `c · Δt / 2` (the annihilation point moves half as far as the light travel difference).
 *
 * @example
 * ```ts
 * tofPsToMm(400); // ≈ 59.96 mm
 * ```
 */
export function tofPsToMm(ps: number): number {
  return ps * SPEED_OF_LIGHT_MM_PER_PS / 2;
}

const positive = z.number().positive().finite();

/**
 * zod schema of the TOF parameters (the sidecar `tof` block): FWHM and bin width each in ps or
 * mm (exactly one of the two), the number of bins, the truncation in σ and the TOF centre offset.
 *
 * @example
 * ```ts
 * import { TofSchema } from "@petrel/petrel";
 * const tof = TofSchema.parse({ bins: 13, binWidthPs: 312, fwhmPs: 390 }); // nSigmas: 3, centreOffsetMm: 0
 * ```
 */
export const TofSchema = z.object({
  /** Number of TOF bins per LOR. */
  bins: z.number().int().positive(),
  /** TOF bin width along the LOR in mm ... */
  binWidthMm: positive.optional(),
  /** ... or as a time difference in ps (converted with {@linkcode tofPsToMm}). */
  binWidthPs: positive.optional(),
  /** TOF resolution (FWHM of the Gaussian kernel) in mm along the LOR ... */
  fwhmMm: positive.optional(),
  /** ... or in ps of coincidence timing resolution. */
  fwhmPs: positive.optional(),
  /** Truncation of the Gaussian in units of σ (default 3). */
  nSigmas: positive.default(3),
  /** TOF centre offset of every LOR in mm, towards the LOR end point (default 0). */
  centreOffsetMm: z.number().finite().default(0),
}).strict();

/**
 * TOF parameters as given (ps or mm).
 *
 * @example
 * ```ts
 * import { type TofInput, tofParameters } from "@petrel/petrel";
 * // the same TOF set-up given in ps (timing) or in mm along the LOR
 * const inPs: TofInput = { bins: 13, binWidthPs: 312, fwhmPs: 390 };
 * const inMm: TofInput = { bins: 13, binWidthMm: 46.8, fwhmMm: 58.5, nSigmas: 3 };
 * tofParameters(inPs).fwhmMm; // ≈ 58.5
 * ```
 */
export type TofInput = z.input<typeof TofSchema>;

/** TOF parameters resolved to mm. */
export interface TofParameters {
  readonly bins: number;
  readonly binWidthMm: number;
  readonly fwhmMm: number;
  /** σ = FWHM / (2√(2 ln 2)), mm. */
  readonly sigmaMm: number;
  readonly nSigmas: number;
  readonly centreOffsetMm: number;
}

/**
 * Validates TOF parameters and resolves them to mm; throws naming the problem.
 *
 * @example
 * ```ts
 * const tof = tofParameters({ bins: 17, binWidthMm: 24, fwhmPs: 400 });
 * tof.sigmaMm; // ≈ 25.5
 * ```
 */
export function tofParameters(
  input: TofInput | TofParameters,
  what = "TOF parameters",
): TofParameters {
  if ("sigmaMm" in input) return input;
  const r = TofSchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new RangeError(`${what}: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  const p = r.data;
  const one = (mm: number | undefined, ps: number | undefined, name: string): number => {
    if ((mm === undefined) === (ps === undefined)) {
      throw new RangeError(`${what}: give exactly one of ${name}Mm and ${name}Ps`);
    }
    return mm ?? tofPsToMm(ps!);
  };
  const fwhmMm = one(p.fwhmMm, p.fwhmPs, "fwhm");
  return {
    bins: p.bins,
    binWidthMm: one(p.binWidthMm, p.binWidthPs, "binWidth"),
    fwhmMm,
    sigmaMm: fwhmMm / (2 * Math.sqrt(2 * Math.LN2)),
    nSigmas: p.nSigmas,
    centreOffsetMm: p.centreOffsetMm,
  };
}

/**
 * The error function in float64 (|error| < 1e-15): the series `2/√π·e^{−x²}·Σ 2ⁿx^{2n+1}/(2n+1)!!`
 * has positive terms only, so it does not cancel. The independent reference of the tests.
 *
 * @example
 * ```ts
 * erf(1); // 0.8427007929497149
 * ```
 */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax > 6) return Math.sign(x);
  let term = ax;
  let sum = ax;
  for (let n = 1; n < 200; n++) {
    term *= (2 * ax * ax) / (2 * n + 1);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-ax * ax) * sum;
}

/**
 * Edges `[lo, hi]` (mm from the LOR midpoint towards its end point) of TOF bin `t` (may be
 * fractional: a continuous position) with extra centre offset `offsetMm`.
 *
 * @example
 * ```ts
 * tofBinEdges(tofParameters({ bins: 5, binWidthMm: 10, fwhmMm: 30 }), 2); // [-5, 5]
 * ```
 */
export function tofBinEdges(tof: TofParameters, t: number, offsetMm = 0): [number, number] {
  const c = tof.centreOffsetMm + offsetMm;
  const w = tof.binWidthMm;
  return [(t - tof.bins / 2) * w + c, (t + 1 - tof.bins / 2) * w + c];
}

/**
 * TOF kernel weight (float64 reference) of a point at TOF position `s` (mm) for the bin
 * `[lo, hi]`: the truncated, renormalised Gaussian integrated over the bin.
 *
 * @example
 * ```ts
 * const tof = tofParameters({ bins: 5, binWidthMm: 10, fwhmMm: 30 });
 * tofKernelWeight(tof, 0, tofBinEdges(tof, 2)); // ≈ 0.306: the central bin
 * ```
 */
export function tofKernelWeight(tof: TofParameters, s: number, bin: [number, number]): number {
  const h = tof.nSigmas * tof.sigmaMm;
  const lo = Math.max(bin[0], s - h);
  const hi = Math.min(bin[1], s + h);
  if (!(hi > lo)) return 0;
  const k = 1 / (tof.sigmaMm * Math.SQRT2);
  return (erf((hi - s) * k) - erf((lo - s) * k)) / (2 * erf(tof.nSigmas / Math.SQRT2));
}

/**
 * Fractional TOF bin of a continuous TOF position `posMm` (mm from the LOR midpoint towards the
 * end point): the bin of width `binWidthMm` centred on `posMm`, for list-mode events.
 *
 * @example
 * ```ts
 * tofBinOfPosition(tofParameters({ bins: 5, binWidthMm: 10, fwhmMm: 30 }), 7.5); // 2.75
 * ```
 */
export function tofBinOfPosition(tof: TofParameters, posMm: number): number {
  return (posMm - tof.centreOffsetMm) / tof.binWidthMm + (tof.bins - 1) / 2;
}
