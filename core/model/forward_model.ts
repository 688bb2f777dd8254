/**
 * The PET forward model `ybar = m ⊙ (A x) + a`, split into ordered subsets of projection data.
 *
 * `A` is any {@linkcode LinearOperator} (e.g. `P ∘ G`, Joseph projector after a Gaussian
 * resolution model), `m` the multiplicative factors (attenuation `exp(−P μ)` × normalisation) and
 * `a` the additive expected counts (randoms + scatter). Every subset holds its own operator `A_k`,
 * its slices `m_k`, `a_k` on the device, and the indices of its bins in the full sinogram, so data
 * are split once and the per-subset sensitivity images `s_k = A_kᵀ m_k` are computed once and
 * cached.
 *
 * @module
 */

import type { GpuArray, GpuContext, KernelRecorder } from "../gpu/context.ts";
import { fill } from "../gpu/ops.ts";
import { type ImageGrid, imageGrid, voxelCount } from "../geometry/grid.ts";
import type { RingScanner } from "../geometry/scanner.ts";
import { JosephProjector } from "../projector/joseph.ts";
import { RingPlanarProjector, ringPlanarUnsupported } from "../projector/ring.ts";
import { RingObliqueProjector, ringObliqueUnsupported } from "../projector/ring_oblique.ts";
import { GaussianFilter } from "../projector/gaussian.ts";
import { compose, type LinearOperator } from "../projector/operator.ts";
import { recordAttenuationFactors, recordAxpyInPlace, recordExpected } from "./kernels.ts";

/** One ordered subset of the projection data and its part of the forward model. */
export interface Subset {
  /** `A_k`: image → the subset's bins. */
  readonly op: LinearOperator;
  /** The purely geometric projector of the subset (used for attenuation), when known. */
  readonly geometric: LinearOperator | null;
  /** Flat indices of the subset's bins in the full data array, in the subset's order. */
  readonly bins: Uint32Array;
  /** `m_k` (null: all ones). */
  readonly multiplicative: GpuArray | null;
  /** `a_k` (null: all zeros). Replaced by {@linkcode ForwardModel.setAdditive}. */
  additive: GpuArray | null;
}

/** Input form of one subset for {@linkcode ForwardModel}. */
export interface SubsetInput {
  /** `A_k`: image → the subset's bins. */
  op: LinearOperator;
  /** Flat indices of the subset's bins in the full data array (length = size of `op.outShape`). */
  bins: Uint32Array;
  /** Purely geometric projector of the subset (for attenuation from a μ-map). */
  geometric?: LinearOperator;
}

/** Options of {@linkcode ForwardModel}. */
export interface ForwardModelOptions {
  /** Multiplicative factors for the FULL data array (normalisation / efficiencies), or none. */
  multiplicative?: Float32Array;
  /**
   * Linear attenuation coefficients on the image grid, in 1/mm (divide values in 1/cm by 10).
   * The attenuation factors `exp(−P_k μ)` are computed on the device with each subset's
   * geometric projector and multiplied into `m_k`.
   */
  muMap?: Float32Array;
  /** Additive expected counts (randoms + scatter) for the FULL data array, or none. */
  additive?: Float32Array;
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Gathers `full[bins[i]]` into a new array.
 *
 * @example
 * ```ts
 * import { gatherBins, mmrLike2d } from "@petrel/petrel";
 * const scanner = mmrLike2d();
 * const sinogram = new Float32Array(scanner.bins).map((_, i) => i);
 * // the bins of OSEM subset 0 of 4, in the order of scanner.lors(views)
 * const views = scanner.subsetViews(0, 4);
 * const part = gatherBins(sinogram, scanner.binIndices(views)); // 129 × 56 values
 * ```
 */
export function gatherBins(full: ArrayLike<number>, bins: Uint32Array): Float32Array {
  const out = new Float32Array(bins.length);
  for (let i = 0; i < bins.length; i++) out[i] = full[bins[i]];
  return out;
}

/**
 * The forward model `ybar_k = m_k ⊙ (A_k x) + a_k` over ordered subsets `k` of the data.
 * Device arrays are owned by the model; call {@linkcode ForwardModel.destroy} to free them.
 *
 * @example
 * ```ts
 * import { defaultContext, ForwardModel, JosephProjector, MMR_VOXEL_MM, mmrLike2d } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * // two subsets of views (ringForwardModel builds this for ring scanners)
 * const subsets = [0, 1].map((k) => {
 *   const views = scanner.subsetViews(k, 2);
 *   const op = new JosephProjector(ctx, scanner.lors(views), grid);
 *   return { op, geometric: op, bins: scanner.binIndices(views) };
 * });
 * const model = new ForwardModel(ctx, subsets, { dataShape: scanner.sinogramShape });
 * const sens = await model.totalSensitivity().read(); // Aᵀ m over all subsets
 * model.destroy();
 * ```
 */
export class ForwardModel {
  /** Shape of the image, fastest axis first. */
  readonly imageShape: readonly number[];
  /** Shape of the full projection data, fastest axis first. */
  readonly dataShape: readonly number[];
  /** The subsets, in processing order. */
  readonly subsets: readonly Subset[];
  #sens: (GpuArray | null)[];
  #totalSens: GpuArray | null = null;
  #scratch = new Map<number, GpuArray>();
  #owned: { destroy(): void }[] = [];

  constructor(
    readonly ctx: GpuContext,
    subsets: readonly SubsetInput[],
    options: ForwardModelOptions & { dataShape: readonly number[] },
  ) {
    if (subsets.length === 0) throw new RangeError("ForwardModel needs at least one subset");
    this.imageShape = [...subsets[0].op.inShape];
    this.dataShape = [...options.dataShape];
    const nbins = size(this.dataShape);
    const seen = new Uint8Array(nbins);
    for (const [k, s] of subsets.entries()) {
      if (size(s.op.inShape) !== size(this.imageShape)) {
        throw new RangeError(
          `ForwardModel: subset ${k} takes images of ${JSON.stringify(s.op.inShape)}, expected ${
            JSON.stringify(this.imageShape)
          }`,
        );
      }
      if (s.bins.length !== size(s.op.outShape)) {
        throw new RangeError(
          `ForwardModel: subset ${k} lists ${s.bins.length} bins but its operator gives ${
            size(s.op.outShape)
          }`,
        );
      }
      for (const b of s.bins) {
        if (b >= nbins || seen[b]) {
          throw new RangeError(
            `ForwardModel: subset ${k} bin ${b} is out of range or in two subsets; the subsets must partition 0 … ${
              nbins - 1
            }`,
          );
        }
        seen[b] = 1;
      }
    }
    for (const name of ["multiplicative", "additive"] as const) {
      const v = options[name];
      if (v && v.length !== nbins) {
        throw new RangeError(
          `ForwardModel: ${name} has ${v.length} values, expected one per bin (${nbins})`,
        );
      }
    }
    if (options.muMap && options.muMap.length !== size(this.imageShape)) {
      throw new RangeError(
        `ForwardModel: muMap has ${options.muMap.length} voxels, expected ${size(this.imageShape)}`,
      );
    }
    if (options.muMap && subsets.some((s) => !s.geometric)) {
      throw new TypeError(
        "ForwardModel: a muMap needs each subset's geometric projector (SubsetInput.geometric)",
      );
    }
    const mu = options.muMap ? ctx.array([options.muMap.length], options.muMap) : null;
    const built: Subset[] = [];
    ctx.run((rec) => {
      for (const s of subsets) {
        let m: GpuArray | null = options.multiplicative
          ? ctx.array(s.op.outShape, gatherBins(options.multiplicative, s.bins))
          : null;
        if (mu) {
          // m_k = exp(−P_k μ) (⊙ normalisation), computed on the device.
          const lineIntegrals = rec.temp(s.op.outShape);
          s.geometric!.apply(rec, mu, lineIntegrals);
          const factors = ctx.array(s.op.outShape);
          recordAttenuationFactors(rec, lineIntegrals, m, factors);
          if (m) this.#owned.push(m); // normalisation input: freed with the model
          m = factors;
        }
        built.push({
          op: s.op,
          geometric: s.geometric ?? null,
          bins: s.bins,
          multiplicative: m,
          additive: options.additive
            ? ctx.array(s.op.outShape, gatherBins(options.additive, s.bins))
            : null,
        });
      }
    });
    mu?.destroy();
    this.subsets = built;
    this.#sens = built.map(() => null);
  }

  /** Number of subsets. */
  get subsetCount(): number {
    return this.subsets.length;
  }

  /** Number of bins in the full data. */
  get binCount(): number {
    return size(this.dataShape);
  }

  /** Splits a full data array (e.g. the measured sinogram) into per-subset device arrays. */
  split(full: ArrayLike<number>): GpuArray[] {
    if (full.length !== this.binCount) {
      throw new RangeError(
        `ForwardModel.split: got ${full.length} values, expected one per bin (${this.binCount})`,
      );
    }
    return this.subsets.map((s) => this.ctx.array(s.op.outShape, gatherBins(full, s.bins)));
  }

  /** Reassembles per-subset host arrays into one full data array. */
  merge(parts: readonly Float32Array[]): Float32Array {
    if (parts.length !== this.subsets.length) {
      throw new RangeError(
        `ForwardModel.merge: got ${parts.length} parts, expected ${this.subsets.length}`,
      );
    }
    const out = new Float32Array(this.binCount);
    this.subsets.forEach((s, k) => {
      if (parts[k].length !== s.bins.length) {
        throw new RangeError(
          `ForwardModel.merge: part ${k} has ${parts[k].length} values, expected ${s.bins.length}`,
        );
      }
      for (let i = 0; i < s.bins.length; i++) out[s.bins[i]] = parts[k][i];
    });
    return out;
  }

  /** Replaces the additive term `a` (full data array of expected counts, or null for none). */
  setAdditive(full: Float32Array | null): void {
    for (const s of this.subsets) s.additive?.destroy();
    const parts = full ? this.split(full) : null;
    this.subsets.forEach((s, k) => {
      (s as { additive: GpuArray | null }).additive = parts ? parts[k] : null;
    });
  }

  /** A scratch projection array of `n` elements owned by the model (reused between calls). */
  scratch(n: number, tag = 0): GpuArray {
    const key = n * 8 + tag;
    let a = this.#scratch.get(key);
    if (!a) {
      a = this.ctx.array([n]);
      this.#scratch.set(key, a);
    }
    return a;
  }

  /** Records `out = m_k ⊙ (A_k x) + a_k` for subset `k` (`proj` receives `A_k x`). */
  recordForward(
    rec: KernelRecorder,
    k: number,
    x: GpuArray,
    out: { proj: GpuArray; expected?: GpuArray },
  ): void {
    const s = this.subsets[k];
    s.op.apply(rec, x, out.proj);
    if (out.expected) {
      recordExpected(rec, {
        proj: out.proj,
        multiplicative: s.multiplicative,
        additive: s.additive,
      }, out.expected);
    }
  }

  /** Sensitivity image of subset `k`, `s_k = A_kᵀ m_k` (computed on first use, then cached). */
  sensitivity(k: number): GpuArray {
    if (!(k >= 0 && k < this.subsets.length)) {
      throw new RangeError(`subset ${k} is outside 0 … ${this.subsets.length - 1}`);
    }
    let s = this.#sens[k];
    if (!s) {
      const sub = this.subsets[k];
      const out = this.ctx.array(this.imageShape);
      this.ctx.run((rec) => {
        let m = sub.multiplicative;
        if (!m) {
          m = rec.temp(sub.op.outShape);
          fill(rec, m, 1);
        }
        sub.op.adjoint(rec, m, out);
      });
      this.#sens[k] = s = out;
    }
    return s;
  }

  /** Sensitivity of all data, `s = Σ_k s_k` (cached; equal to `s_0` for one subset). */
  totalSensitivity(): GpuArray {
    if (this.subsets.length === 1) return this.sensitivity(0);
    if (!this.#totalSens) {
      const parts = this.subsets.map((_, k) => this.sensitivity(k));
      const out = this.ctx.array(this.imageShape);
      this.ctx.run((rec) => {
        rec.copy(parts[0], out);
        for (let k = 1; k < parts.length; k++) recordAxpyInPlace(rec, out, parts[k], 1);
      });
      this.#totalSens = out;
    }
    return this.#totalSens;
  }

  /** Expected data `m ⊙ (A x) + a` for the image `x`, read back as one full array. */
  async expected(x: GpuArray): Promise<Float32Array> {
    const outs = this.subsets.map((s) => this.ctx.array(s.op.outShape));
    this.ctx.run((rec) => {
      this.subsets.forEach((s, k) => {
        const proj = this.scratch(s.bins.length);
        this.recordForward(rec, k, x, { proj, expected: outs[k] });
      });
    });
    const parts = await Promise.all(outs.map((o) => o.read()));
    outs.forEach((o) => o.destroy());
    return this.merge(parts);
  }

  /** `m ⊙ (A x)` without the additive term (expected trues), read back as one full array. */
  async expectedTrues(x: GpuArray): Promise<Float32Array> {
    const saved = this.subsets.map((s) => s.additive);
    this.subsets.forEach((s) => (s as { additive: GpuArray | null }).additive = null);
    try {
      return await this.expected(x);
    } finally {
      this.subsets.forEach((s, k) => (s as { additive: GpuArray | null }).additive = saved[k]);
    }
  }

  /** Frees the model's device arrays (operators built by {@linkcode ringForwardModel} too). */
  destroy(): void {
    for (const s of this.subsets) {
      s.multiplicative?.destroy();
      s.additive?.destroy();
    }
    for (const s of this.#sens) s?.destroy();
    if (this.subsets.length > 1) this.#totalSens?.destroy();
    for (const a of this.#scratch.values()) a.destroy();
    for (const o of this.#owned) o.destroy();
  }

  /** Registers something the model frees in {@linkcode ForwardModel.destroy}. */
  own(resource: { destroy(): void }): void {
    this.#owned.push(resource);
  }
}

/**
 * Options of {@linkcode ringForwardModel}.
 *
 * @example
 * ```ts
 * import { defaultContext, MMR_VOXEL_MM, mmrLike2d, type RingModelOptions, ringForwardModel } from "@petrel/petrel";
 * const scanner = mmrLike2d();
 * const options: RingModelOptions = {
 *   subsets: 14, // ordered subsets of views (224 / 14 = 16 views each)
 *   resolutionFwhmMm: [4.5, 4.5, 0], // image-space resolution model, mm
 *   multiplicative: new Float32Array(scanner.bins).fill(0.95), // normalisation sinogram
 *   additive: new Float32Array(scanner.bins).fill(0.1), // randoms + scatter, expected counts per bin
 *   projector: "auto", // ring-planar when the geometry allows it
 * };
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const model = ringForwardModel(await defaultContext(), scanner, { ...options, grid });
 * ```
 */
export interface RingModelOptions extends ForwardModelOptions {
  /** Number of ordered subsets of views (default 1). */
  subsets?: number;
  /** Image-space Gaussian resolution model, FWHM in mm per axis (default none). */
  resolutionFwhmMm?: readonly [number, number, number];
  /** Passed to each {@linkcode JosephProjector} (tests force chunking with it). */
  maxLorsPerChunk?: number;
  /**
   * `"ring"`: the ring-sinogram projectors of a circular scanner: {@linkcode RingPlanarProjector}
   * for direct-plane sinograms with one slice per ring (about 2× faster than Joseph's on CPU
   * adapters, see docs/performance.md), else {@linkcode RingObliqueProjector} (oblique planes,
   * any z grid; several times faster than Joseph's on CPU adapters); `"joseph"`:
   * {@linkcode JosephProjector} on the scanner's LORs (any geometry); `"auto"` (default): the
   * planar ring projector where the geometry allows it, the oblique one where it allows that, the
   * adapter is a fallback (CPU) one and there are at least {@linkcode OBLIQUE_PLANES_PER_SLICE}
   * sinogram planes per image slice (where it is measured faster), else Joseph's; never a ring
   * projector when `maxLorsPerChunk` is given.
   */
  projector?: "auto" | "ring" | "joseph";
}

/**
 * The forward model of a ring scanner's span-1 sinogram on `grid`: one projector per subset of
 * views (`RingScanner.subsetViews`; Joseph's or the ring-planar one, see
 * {@linkcode RingModelOptions.projector}), optionally after a shared Gaussian resolution model,
 * with attenuation from a μ-map (1/mm), normalisation and additive terms given as full sinograms
 * `[radial, views, planes]`.
 *
 * @example
 * ```ts
 * import { defaultContext, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, ringForwardModel } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const { mu } = nemaIecPhantom(grid); // μ-map in 1/mm
 * // ybar = m ⊙ A x + a with attenuation from the μ-map, 4 ordered subsets, 4.5 mm resolution
 * const model = ringForwardModel(ctx, scanner, {
 *   grid,
 *   muMap: mu,
 *   subsets: 4,
 *   resolutionFwhmMm: [4.5, 4.5, 0],
 * });
 * model.dataShape; // [129, 224, 1]
 * ```
 */
export function ringForwardModel(
  ctx: GpuContext,
  scanner: RingScanner,
  options: RingModelOptions & { grid: ImageGrid },
): ForwardModel {
  const grid = imageGrid(options.grid);
  scanner.checkGridFits(grid);
  const nsub = options.subsets ?? 1;
  const blur = options.resolutionFwhmMm && options.resolutionFwhmMm.some((f) => f > 0)
    ? new GaussianFilter(ctx, grid, options.resolutionFwhmMm)
    : null;
  const inputs: SubsetInput[] = [];
  const owned: { destroy(): void }[] = [];
  const kind = ringProjectorKind(ctx, scanner, grid, options);
  for (let k = 0; k < nsub; k++) {
    const views = scanner.subsetViews(k, nsub);
    const p = kind === "planar"
      ? new RingPlanarProjector(ctx, scanner, grid, { views })
      : kind === "oblique"
      ? new RingObliqueProjector(ctx, scanner, grid, { views })
      : new JosephProjector(ctx, scanner.lors(views), grid, {
        maxLorsPerChunk: options.maxLorsPerChunk,
      });
    owned.push(p);
    inputs.push({
      op: blur ? compose(ctx, p, blur) : p,
      geometric: p,
      bins: scanner.binIndices(views),
    });
  }
  if (voxelCount(grid) !== size(inputs[0].op.inShape)) {
    throw new RangeError("ringForwardModel: grid and projector disagree");
  }
  const model = new ForwardModel(ctx, inputs, { ...options, dataShape: scanner.sinogramShape });
  for (const o of owned) model.own(o);
  return model;
}

/**
 * `projector: "auto"` uses {@linkcode RingObliqueProjector} (on CPU adapters) from this many
 * sinogram planes per image slice; below, Joseph's is faster there.
 *
 * @example
 * ```ts
 * import { mmrLike3d, OBLIQUE_PLANES_PER_SLICE } from "@petrel/petrel";
 * const s = mmrLike3d({ rings: 2, maxRingDifference: 1 }); // 4 planes
 * s.planes.length >= OBLIQUE_PLANES_PER_SLICE * 3; // false: on 3 slices auto keeps Joseph's
 * ```
 */
export const OBLIQUE_PLANES_PER_SLICE = 1.75;

/**
 * The projector {@linkcode ringForwardModel} builds for `scanner` on `grid` with `options`
 * (see {@linkcode RingModelOptions.projector}): `"planar"` ({@linkcode RingPlanarProjector}),
 * `"oblique"` ({@linkcode RingObliqueProjector}) or `"joseph"` ({@linkcode JosephProjector}).
 * Throws when `projector: "ring"` is asked for a geometry neither ring projector covers.
 *
 * @example
 * ```ts
 * import { defaultContext, MMR_VOXEL_MM, mmrLike3d, ringProjectorKind } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike3d({ rings: 4, maxRingDifference: 3 });
 * ringProjectorKind(ctx, scanner, scanner.imageGrid(128, MMR_VOXEL_MM)); // "oblique" on a CPU adapter
 * ```
 */
export function ringProjectorKind(
  ctx: GpuContext,
  scanner: RingScanner,
  grid: ImageGrid,
  options: Pick<RingModelOptions, "projector" | "maxLorsPerChunk"> = {},
): "planar" | "oblique" | "joseph" {
  const kind = options.projector ?? "auto";
  if (kind === "joseph") return "joseph";
  const planar = ringPlanarUnsupported(scanner, grid);
  const oblique = ringObliqueUnsupported(scanner, grid);
  if (kind === "ring") {
    if (!planar) return "planar";
    if (!oblique) return "oblique";
    throw new RangeError(`ringForwardModel: projector "ring": ${planar}; ${oblique}`);
  }
  if (options.maxLorsPerChunk) return "joseph";
  if (!planar) return "planar";
  // On GPUs Joseph's atomic scatter is cheap and the oblique kernels' private per-invocation
  // arrays (up to 256 planes) would spill: the oblique ring projector is a CPU-adapter path. It
  // pays per chord and plane step for all slices, so it wins when there are clearly more
  // sinogram planes than slices (measured on llvmpipe, docs/performance.md: pair CPU 0.12× of
  // Joseph's at 424 planes / 32 slices, 0.69× at 16 / 7, 0.75× at 4 / 2, 0.85× at 9 / 5, but
  // 1.55× at 4 planes / 3 slices).
  const slices = imageGrid(grid).shape[2];
  if (
    !oblique && ctx.adapter.isFallback && scanner.planes.length >= OBLIQUE_PLANES_PER_SLICE * slices
  ) {
    return "oblique";
  }
  return "joseph";
}
