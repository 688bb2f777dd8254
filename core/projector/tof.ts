/**
 * Time-of-flight Joseph projectors in WGSL (`shaders/joseph_tof.wgsl`): one for TOF sinograms
 * (every LOR × every TOF bin) and one for list-mode events (a LOR and a TOF bin, or a continuous
 * TOF position, per event), with exact adjoints and the deterministic fixed-point back
 * projection of {@linkcode JosephProjector}.
 *
 * Conventions (after parallelproj's `joseph3d_tof_sino` / `joseph3d_tof_lm`, see
 * `docs/reconstruction.md`): the TOF coordinate of a point on a LOR is its distance in mm from
 * the LOR midpoint, positive towards the LOR's end point; TOF bin `t` of `nt` bins of width `w`
 * is centred at `(t − (nt−1)/2)·w + c` with `c` the LOR's TOF centre offset; the kernel is a
 * Gaussian of the TOF FWHM, truncated at `nSigmas`·σ, integrated over the bin and renormalised so
 * that bins tiling the LOR sum to the non-TOF projection (parallelproj does not renormalise).
 *
 * @module
 */

import type { GpuArray, GpuContext, KernelRecorder } from "../gpu/context.ts";
import { type ImageGrid, imageGrid } from "../geometry/grid.ts";
import type { LorSet } from "../geometry/lors.ts";
import { checkShape, type LinearOperator } from "./operator.ts";
import { FixedPointBack } from "./fixed_point.ts";
import { chunkBuffer } from "./chunk.ts";
import { type TofInput, type TofParameters, tofParameters } from "../geometry/tof.ts";

/** Options of the TOF projectors. */
export interface TofProjectorOptions {
  /** Extra TOF centre offset per LOR (or event), mm, added to `tof.centreOffsetMm`. */
  centreOffsetsMm?: ArrayLike<number>;
  /** Maximum LORs per dispatch (tests force chunking with it). */
  maxLorsPerChunk?: number;
}

/** Sinograms of up to this many TOF bins use the one-invocation-per-LOR kernels. */
const MAX_SINO_BINS = 64;

interface Chunk {
  first: number;
  count: number;
  lors: GPUBuffer;
  info: GPUBuffer;
  params: GPUBuffer;
}

/** Shared machinery of the two TOF projectors (chunked LOR buffers, fixed-point adjoint). */
abstract class TofJosephBase implements LinearOperator {
  readonly inShape: readonly number[];
  abstract readonly outShape: readonly number[];
  readonly grid: ImageGrid;
  readonly tof: TofParameters;
  readonly lorCount: number;
  #chunks: Chunk[] = [];
  #back: FixedPointBack;
  #resolveParams: GPUBuffer;
  #binsPerLor: number;
  #name: string;
  /** Kernel entries and invocations per LOR (per-LOR sinogram kernels, or per (LOR, bin)). */
  #entries: { forward: string; back: string; perLor: number };

  constructor(
    readonly ctx: GpuContext,
    init: {
      name: string;
      lors: LorSet;
      grid: ImageGrid;
      tof: TofInput | TofParameters;
      /** Per LOR: fractional bin (list mode) and centre offset. */
      info: Float32Array;
      binsPerLor: number;
      listMode: boolean;
      maxLorsPerChunk?: number;
    },
  ) {
    const { name, lors } = init;
    this.#name = name;
    this.grid = imageGrid(init.grid);
    this.tof = tofParameters(init.tof, `${name}: TOF parameters`);
    if (lors.endpoints.length !== 6 * lors.count) {
      throw new RangeError(
        `${name}: LOR set says ${lors.count} LORs but holds ${lors.endpoints.length / 6}`,
      );
    }
    for (let i = 0; i < lors.endpoints.length; i++) {
      if (!Number.isFinite(lors.endpoints[i])) {
        throw new RangeError(
          `${name}: LOR ${
            Math.floor(i / 6)
          } has a non-finite coordinate; endpoints must be finite mm`,
        );
      }
    }
    for (let i = 0; i < init.info.length; i++) {
      if (!Number.isFinite(init.info[i])) {
        throw new RangeError(
          `${name}: LOR ${Math.floor(i / 2)} has a non-finite TOF bin or offset`,
        );
      }
    }
    this.lorCount = lors.count;
    this.inShape = [...this.grid.shape];
    this.#binsPerLor = init.binsPerLor;
    this.#entries = !init.listMode && init.binsPerLor <= MAX_SINO_BINS
      ? { forward: "forward_sino", back: "back_sino", perLor: 1 }
      : { forward: "forward", back: "back", perLor: init.binsPerLor };
    const limits = ctx.adapter.limits;
    const outBytes = lors.count * init.binsPerLor * 4;
    if (outBytes > limits.maxStorageBufferBindingSize) {
      throw new RangeError(
        `${name}: ${lors.count} LORs × ${init.binsPerLor} TOF bins (${outBytes} bytes) exceed the adapter's storage binding limit of ${limits.maxStorageBufferBindingSize} bytes; split the data into subsets`,
      );
    }
    let perChunk = Math.floor(limits.maxStorageBufferBindingSize / 24);
    if (init.maxLorsPerChunk) perChunk = Math.min(perChunk, init.maxLorsPerChunk);
    perChunk = Math.max(1, perChunk);
    const log2Step = Math.log2(Math.sqrt(3) * Math.max(...this.grid.voxelSizeMm));
    const tofWords = [
      this.tof.sigmaMm,
      this.tof.binWidthMm,
      this.tof.nSigmas * this.tof.sigmaMm,
      this.tof.bins,
    ];
    for (let first = 0; first < lors.count; first += perChunk) {
      const count = Math.min(perChunk, lors.count - first);
      this.#chunks.push({
        first,
        count,
        lors: chunkBuffer(ctx, lors.endpoints, first, count, 6),
        info: chunkBuffer(ctx, init.info, first, count, 2),
        params: this.#params(count, log2Step, tofWords, [
          init.binsPerLor,
          lors.count,
          first,
          init.listMode ? 1 : 0,
        ]),
      });
    }
    const nvox = this.grid.shape[0] * this.grid.shape[1] * this.grid.shape[2];
    this.#back = new FixedPointBack(ctx, nvox);
    this.#resolveParams = this.#params(0, log2Step, tofWords, [0, 0, 0, 0]);
  }

  #params(count: number, log2Step: number, tof: number[], tofi: number[]): GPUBuffer {
    const g = this.grid;
    const buf = new ArrayBuffer(80);
    new Float32Array(buf, 0, 8).set([...g.originMm, 0, ...g.voxelSizeMm, log2Step]);
    new Uint32Array(buf, 32, 4).set([...g.shape, count]);
    new Float32Array(buf, 48, 4).set(tof);
    new Uint32Array(buf, 64, 4).set(tofi);
    return this.ctx.uniform(new Uint32Array(buf));
  }

  /** Number of dispatch chunks the LORs were split into. */
  get chunkCount(): number {
    return this.#chunks.length;
  }

  /** Records `out = P_tof x`. */
  apply(rec: KernelRecorder, x: GpuArray, out: GpuArray): void {
    checkShape(`${this.#name}.apply input`, x, this.inShape);
    checkShape(`${this.#name}.apply output`, out, this.outShape);
    for (const c of this.#chunks) {
      rec.dispatch1d("joseph_tof", this.#entries.forward, [
        c.params,
        c.lors,
        c.info,
        out,
        null,
        null,
        null,
        x,
      ], c.count * this.#entries.perLor);
    }
  }

  /** Records `out = P_tofᵀ y` (deterministic: fixed-point integer accumulation). */
  adjoint(rec: KernelRecorder, y: GpuArray, out: GpuArray): void {
    checkShape(`${this.#name}.adjoint input`, y, this.outShape);
    checkShape(`${this.#name}.adjoint output`, out, this.inShape);
    const back = this.#back;
    back.record(rec, "joseph_tof", this.#resolveParams, y, out, () => {
      for (const c of this.#chunks) {
        rec.dispatch1d("joseph_tof", this.#entries.back, [
          c.params,
          c.lors,
          c.info,
          null,
          y,
          back.accum,
          back.maxBits,
        ], c.count * this.#entries.perLor);
      }
    });
  }

  /** Frees the device buffers. */
  destroy(): void {
    for (const c of this.#chunks) {
      c.lors.destroy();
      c.info.destroy();
    }
    this.#back.destroy();
  }
}

function offsetsInfo(
  n: number,
  base: number,
  offsets: ArrayLike<number> | undefined,
  bins: ArrayLike<number> | undefined,
  name: string,
): Float32Array {
  if (offsets && offsets.length !== n) {
    throw new RangeError(`${name}: centreOffsetsMm has ${offsets.length} values, expected ${n}`);
  }
  const info = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    info[2 * i] = bins ? bins[i] : 0;
    info[2 * i + 1] = base + (offsets ? offsets[i] : 0);
  }
  return info;
}

/**
 * TOF sinogram projector: image on `grid` → `[...lors.shape, tof.bins]` (TOF bin slowest: bin
 * `t` of LOR `n` at `n + lorCount·t`), so each TOF bin is a full non-TOF sinogram.
 *
 * @example
 * ```ts
 * import { defaultContext, MMR_VOXEL_MM, mmrLike2d, TofSinogramProjector } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const P = new TofSinogramProjector(ctx, scanner.lors(), grid, {
 *   bins: 17,
 *   binWidthMm: 24,
 *   fwhmPs: 400, // 60 mm FWHM along the LOR
 * });
 * P.outShape; // [129, 224, 1, 17]: [radial, views, planes, TOF bins]
 * ```
 */
export class TofSinogramProjector extends TofJosephBase {
  readonly outShape: readonly number[];

  constructor(
    ctx: GpuContext,
    lors: LorSet,
    grid: ImageGrid,
    tof: TofInput | TofParameters,
    options: TofProjectorOptions = {},
  ) {
    const t = tofParameters(tof, "TofSinogramProjector: TOF parameters");
    const offsets = options.centreOffsetsMm;
    super(ctx, {
      name: "TofSinogramProjector",
      lors,
      grid,
      tof: t,
      info: offsetsInfo(lors.count, t.centreOffsetMm, offsets, undefined, "TofSinogramProjector"),
      binsPerLor: t.bins,
      listMode: false,
      maxLorsPerChunk: options.maxLorsPerChunk,
    });
    this.outShape = [...lors.shape, t.bins];
  }
}

/**
 * List-mode TOF projector: image on `grid` → one value per event, the TOF-weighted line integral
 * along the event's LOR for its TOF bin (`tofBins[e]`, 0-based like the sinogram's TOF axis; a
 * fractional value is a continuous position, see {@linkcode tofBinOfPosition}).
 *
 * @example
 * ```ts
 * import { centredGrid, defaultContext, lorSet, TofListModeProjector } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const grid = centredGrid([128, 128, 1], [2.086, 2.086, 2.086]);
 * // two events along x through the centre (mm), in TOF bins 8 (centre) and 10.5 (continuous)
 * const lors = lorSet([-330, 0, 0, -330, 0, 0], [330, 0, 0, 330, 0, 0]);
 * const P = new TofListModeProjector(ctx, { lors, tofBins: [8, 10.5] }, grid, {
 *   bins: 17,
 *   binWidthMm: 24,
 *   fwhmPs: 400,
 * });
 * P.outShape; // [2]: one value per event
 * ```
 */
export class TofListModeProjector extends TofJosephBase {
  readonly outShape: readonly number[];

  constructor(
    ctx: GpuContext,
    events: { lors: LorSet; tofBins: ArrayLike<number> },
    grid: ImageGrid,
    tof: TofInput | TofParameters,
    options: TofProjectorOptions = {},
  ) {
    const n = events.lors.count;
    if (events.tofBins.length !== n) {
      throw new RangeError(
        `TofListModeProjector: ${events.tofBins.length} TOF bins for ${n} events; expected one per event`,
      );
    }
    const t = tofParameters(tof, "TofListModeProjector: TOF parameters");
    super(ctx, {
      name: "TofListModeProjector",
      lors: events.lors,
      grid,
      tof: t,
      info: offsetsInfo(
        n,
        t.centreOffsetMm,
        options.centreOffsetsMm,
        events.tofBins,
        "TofListModeProjector",
      ),
      binsPerLor: 1,
      listMode: true,
      maxLorsPerChunk: options.maxLorsPerChunk,
    });
    this.outShape = [n];
  }
}
