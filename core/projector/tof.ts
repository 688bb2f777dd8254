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

import { z } from "zod";
import type { GpuArray, GpuContext, KernelRecorder } from "../gpu/context.ts";
import { recordMaxAbs } from "../gpu/ops.ts";
import { type ImageGrid, imageGrid } from "../geometry/grid.ts";
import type { LorSet } from "../geometry/lors.ts";
import { checkShape, type LinearOperator } from "./operator.ts";

/** Speed of light in mm/ps. */
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

/** TOF parameters as given (ps or mm). */
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
 */
export function tofBinEdges(tof: TofParameters, t: number, offsetMm = 0): [number, number] {
  const c = tof.centreOffsetMm + offsetMm;
  const w = tof.binWidthMm;
  return [(t - tof.bins / 2) * w + c, (t + 1 - tof.bins / 2) * w + c];
}

/**
 * TOF kernel weight (float64 reference) of a point at TOF position `s` (mm) for the bin
 * `[lo, hi]`: the truncated, renormalised Gaussian integrated over the bin.
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
 */
export function tofBinOfPosition(tof: TofParameters, posMm: number): number {
  return (posMm - tof.centreOffsetMm) / tof.binWidthMm + (tof.bins - 1) / 2;
}

/** Options of the TOF projectors. */
export interface TofProjectorOptions {
  /** Extra TOF centre offset per LOR (or event), mm, added to `tof.centreOffsetMm`. */
  centreOffsetsMm?: ArrayLike<number>;
  /** Maximum LORs per dispatch (tests force chunking with it). */
  maxLorsPerChunk?: number;
}

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
  #accum: GPUBuffer;
  #maxBits: GpuArray;
  #resolveParams: GPUBuffer;
  #binsPerLor: number;
  #name: string;

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
      const lorBuf = ctx.device.createBuffer({
        size: Math.max(16, count * 24),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
      });
      ctx.device.queue.writeBuffer(
        lorBuf,
        0,
        lors.endpoints as Float32Array<ArrayBuffer>,
        first * 6,
        count * 6,
      );
      const info = ctx.device.createBuffer({
        size: Math.max(16, count * 8),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
      });
      ctx.device.queue.writeBuffer(
        info,
        0,
        init.info as Float32Array<ArrayBuffer>,
        first * 2,
        count * 2,
      );
      this.#chunks.push({
        first,
        count,
        lors: lorBuf,
        info,
        params: this.#params(count, log2Step, tofWords, [
          init.binsPerLor,
          lors.count,
          first,
          init.listMode ? 1 : 0,
        ]),
      });
    }
    const nvox = this.grid.shape[0] * this.grid.shape[1] * this.grid.shape[2];
    this.#accum = ctx.device.createBuffer({
      size: Math.max(16, nvox * 8),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    this.#maxBits = ctx.array([1], undefined, "u32");
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
      rec.dispatch1d("joseph_tof", "forward", [
        c.params,
        c.lors,
        c.info,
        out,
        null,
        null,
        null,
        x,
      ], c.count * this.#binsPerLor);
    }
  }

  /** Records `out = P_tofᵀ y` (deterministic: fixed-point integer accumulation). */
  adjoint(rec: KernelRecorder, y: GpuArray, out: GpuArray): void {
    checkShape(`${this.#name}.adjoint input`, y, this.outShape);
    checkShape(`${this.#name}.adjoint output`, out, this.inShape);
    rec.clear(this.#accum);
    rec.clear(this.#maxBits);
    recordMaxAbs(rec, this.#maxBits, y);
    for (const c of this.#chunks) {
      rec.dispatch1d("joseph_tof", "back", [
        c.params,
        c.lors,
        c.info,
        null,
        y,
        this.#accum,
        this.#maxBits,
      ], c.count * this.#binsPerLor);
    }
    rec.dispatch1d("joseph_tof", "resolve", [
      this.#resolveParams,
      null,
      null,
      null,
      null,
      null,
      this.#maxBits,
      null,
      null,
      this.#accum,
      out,
    ], out.length);
  }

  /** Frees the device buffers. */
  destroy(): void {
    for (const c of this.#chunks) {
      c.lors.destroy();
      c.info.destroy();
    }
    this.#accum.destroy();
    this.#maxBits.destroy();
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
 * const P = new TofSinogramProjector(ctx, scanner.lors(), grid, {
 *   bins: 17, binWidthMm: 24, fwhmPs: 400,
 * });
 * P.outShape; // [radial, views, planes, 17]
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
 * const P = new TofListModeProjector(ctx, { lors: eventLors, tofBins }, grid, tof);
 * P.outShape; // [events]
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
