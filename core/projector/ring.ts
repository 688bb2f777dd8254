/**
 * Joseph projector specialised to the direct-plane sinograms of a circular ring scanner
 * (`shaders/joseph_ring.wgsl`): LOR geometry from two small tables instead of stored end points,
 * and a voxel-driven (gather) back projection without atomics. Same line integrals as
 * {@linkcode JosephProjector} on the scanner's LORs, up to float rounding.
 *
 * @module
 */

import type { GpuArray, GpuContext, KernelRecorder } from "../gpu/context.ts";
import { type ImageGrid, imageGrid } from "../geometry/grid.ts";
import type { RingScanner } from "../geometry/scanner.ts";
import { checkShape, type LinearOperator } from "./operator.ts";
import { ringDistances, ringFamilies, ringViews } from "./ring_tables.ts";

/** Options of {@linkcode RingPlanarProjector}. */
export interface RingPlanarOptions {
  /** Views (of the scanner's) this operator covers, in order (default all: a subset's views). */
  views?: readonly number[];
  /**
   * Read the image slice (forward) and the sinogram plane (back) from uniform-buffer mirrors
   * (default: on fallback/CPU adapters, where uniform loads are ~10× cheaper than storage loads).
   */
  uniformMirrors?: boolean;
  /**
   * How the back projection gathers: `"lines"`, one invocation per image row and column
   * accumulating in private memory (fast on CPU adapters: 2× the atomic scatter of
   * {@linkcode JosephProjector} on llvmpipe; needs nx, ny ≤ 256), or `"voxels"`, one invocation
   * per voxel (the massively parallel form for GPUs). Default: lines on fallback adapters.
   */
  back?: "lines" | "voxels";
}

const MAX_LINE = 256; // private accumulator length of ring_back_rows / ring_back_cols

const UNIFORM_FLOATS = 16384; // 64 KiB per uniform binding
const SINO_SLOTS = 4;

/**
 * Why `scanner` and `grid` do not fit {@linkcode RingPlanarProjector} (null when they do): it
 * needs a circular scanner (no `sides`), direct planes only (max ring difference 0) and one image
 * slice centred on each ring.
 *
 * @example
 * ```ts
 * import { MMR_VOXEL_MM, mmrLike2d, mmrLike3d, ringPlanarUnsupported } from "@petrel/petrel";
 * const scanner = mmrLike2d();
 * ringPlanarUnsupported(scanner, scanner.imageGrid(128, MMR_VOXEL_MM)); // null: it fits
 * const oblique = mmrLike3d({ rings: 8, maxRingDifference: 3 });
 * ringPlanarUnsupported(oblique, oblique.imageGrid(128, MMR_VOXEL_MM));
 * // "the sinogram has oblique planes (maxRingDifference > 0)"
 * ```
 */
export function ringPlanarUnsupported(
  scanner: RingScanner,
  grid: ImageGrid,
  views?: readonly number[],
): string | null {
  const s = scanner.spec;
  if (s.sides) return "the scanner is a polygon (sides), not a circle";
  if (s.maxRingDifference !== 0) return "the sinogram has oblique planes (maxRingDifference > 0)";
  const g = imageGrid(grid);
  if (g.shape[2] !== s.rings) {
    return `the image has ${g.shape[2]} slices but the scanner ${s.rings} rings`;
  }
  for (let k = 0; k < s.rings; k++) {
    const z = g.originMm[2] + k * g.voxelSizeMm[2];
    if (Math.abs(z - scanner.ringZ(k)) > 1e-4 * g.voxelSizeMm[2]) {
      return `slice ${k} (z = ${z} mm) is not centred on ring ${k} (z = ${scanner.ringZ(k)} mm)`;
    }
  }
  if (s.radialBins > 4096) return "more than 4096 radial bins";
  if (2 * (views?.length ?? scanner.views) > 4096) return "more than 2048 views";
  return null;
}

/**
 * Joseph projector `P` of a circular ring scanner's direct-plane sinogram `[radial, views,
 * planes]` on `grid` (one slice per ring; see {@linkcode ringPlanarUnsupported}).
 *
 * Forward: one invocation per bin, the chord derived from a per-view table. Back: one invocation
 * per voxel gathering the few bins of each view whose bilinear footprint covers it, weighted
 * exactly like the forward: deterministic and without atomics.
 *
 * @example
 * ```ts
 * import { defaultContext, MMR_VOXEL_MM, mmrLike2d, RingPlanarProjector } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const P = new RingPlanarProjector(ctx, scanner, scanner.imageGrid(128, MMR_VOXEL_MM));
 * const x = ctx.array(P.inShape, new Float32Array(128 * 128).fill(1)); // [128, 128, 1]
 * const y = ctx.array(P.outShape); // [129, 224, 1]
 * const b = ctx.array(P.inShape);
 * ctx.run((rec) => {
 *   P.apply(rec, x, y); // y = P x
 *   P.adjoint(rec, y, b); // b = Pᵀ y, same submit
 * });
 * ```
 */
export class RingPlanarProjector implements LinearOperator {
  readonly inShape: readonly number[];
  readonly outShape: readonly number[];
  readonly grid: ImageGrid;
  readonly #families: GPUBuffer;
  readonly #dtab: GPUBuffer;
  readonly #params: GPUBuffer[] = [];
  readonly #mirrors: boolean;
  #slice: GPUBuffer | null = null;
  #sino: GPUBuffer[] = [];
  readonly #viewsPerSlot: number;
  readonly #nr: number;
  readonly #nv: number;
  readonly #lines: boolean;

  constructor(
    readonly ctx: GpuContext,
    scanner: RingScanner,
    grid: ImageGrid,
    options: RingPlanarOptions = {},
  ) {
    this.grid = imageGrid(grid);
    const why = ringPlanarUnsupported(scanner, this.grid, options.views);
    if (why) throw new RangeError(`RingPlanarProjector: ${why}`);
    scanner.checkGridFits(this.grid);
    const views = ringViews("RingPlanarProjector", scanner, options.views);
    const [nx, ny, nz] = this.grid.shape;
    const nr = scanner.radialBins;
    const nv = views.length;
    this.#nr = nr;
    this.#nv = nv;
    this.inShape = [...this.grid.shape];
    this.outShape = [nr, nv, nz];
    const N = scanner.spec.crystalsPerRing;
    const R = scanner.spec.radiusMm;
    const [ox, oy] = this.grid.originMm;
    const [vx, vy] = this.grid.voxelSizeMm;
    const { fam } = ringFamilies(scanner, this.grid, views);
    const dtab = ringDistances(scanner);
    this.#families = this.#uniformBuffer(fam);
    this.#dtab = this.#uniformBuffer(dtab);
    this.#viewsPerSlot = Math.floor(UNIFORM_FLOATS / nr);
    this.#mirrors = (options.uniformMirrors ?? ctx.adapter.isFallback) &&
      nx * ny <= UNIFORM_FLOATS && nv <= SINO_SLOTS * this.#viewsPerSlot;
    if (this.#mirrors) {
      this.#slice = this.#uniformBuffer(null);
      const slots = Math.ceil(nv / this.#viewsPerSlot);
      for (let k = 0; k < SINO_SLOTS; k++) {
        this.#sino.push(k < slots || k === 0 ? this.#uniformBuffer(null) : this.#sino[0]);
      }
    }
    this.#lines = (options.back ?? (ctx.adapter.isFallback ? "lines" : "voxels")) === "lines";
    if (this.#lines && (nx > MAX_LINE || ny > MAX_LINE)) {
      throw new RangeError(
        `RingPlanarProjector: back "lines" needs nx, ny ≤ ${MAX_LINE}, got ${nx}×${ny}; use back "voxels"`,
      );
    }
    for (let k = 0; k < nz; k++) {
      const buf = new ArrayBuffer(64);
      new Float32Array(buf, 0, 8).set([ox, oy, 0, 0, vx, vy, N / Math.PI, R]);
      new Uint32Array(buf, 32, 8).set([
        nx,
        ny,
        k,
        this.#mirrors ? 1 : 0,
        nr,
        nv,
        2 * nv,
        this.#viewsPerSlot,
      ]);
      this.#params.push(ctx.uniform(new Uint32Array(buf)));
    }
  }

  #uniformBuffer(data: Float32Array | null): GPUBuffer {
    const b = this.ctx.device.createBuffer({
      size: UNIFORM_FLOATS * 4,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    if (data) this.ctx.device.queue.writeBuffer(b, 0, data as Float32Array<ArrayBuffer>);
    return b;
  }

  /** The back projection's form (see {@linkcode RingPlanarOptions.back}). */
  get backForm(): "lines" | "voxels" {
    return this.#lines ? "lines" : "voxels";
  }

  /** True when the image slice and sinogram plane are read from uniform-buffer mirrors. */
  get usesUniformMirrors(): boolean {
    return this.#mirrors;
  }

  /** Records `out = P x`. */
  apply(rec: KernelRecorder, x: GpuArray, out: GpuArray): void {
    checkShape("RingPlanarProjector.apply input", x, this.inShape);
    checkShape("RingPlanarProjector.apply output", out, this.outShape);
    const [nx, ny, nz] = this.grid.shape;
    const bytes = nx * ny * 4;
    for (let k = 0; k < nz; k++) {
      if (this.#slice) rec.copyRange(x.buffer, k * bytes, this.#slice, 0, bytes);
      rec.dispatch1d("joseph_ring", "ring_forward", [
        this.#params[k],
        this.#families,
        this.#dtab,
        x,
        this.#slice ?? this.#families,
        out,
      ], this.#nr * this.#nv);
    }
  }

  /** Records `out = Pᵀ y`. */
  adjoint(rec: KernelRecorder, y: GpuArray, out: GpuArray): void {
    checkShape("RingPlanarProjector.adjoint input", y, this.outShape);
    checkShape("RingPlanarProjector.adjoint output", out, this.inShape);
    const [nx, ny, nz] = this.grid.shape;
    const plane = this.#nr * this.#nv;
    const perSlot = this.#viewsPerSlot * this.#nr;
    for (let k = 0; k < nz; k++) {
      if (this.#mirrors) {
        for (let s = 0; s * perSlot < plane; s++) {
          const n = Math.min(perSlot, plane - s * perSlot);
          rec.copyRange(y.buffer, (k * plane + s * perSlot) * 4, this.#sino[s], 0, n * 4);
        }
      }
      const slots = this.#mirrors
        ? this.#sino
        : [this.#families, this.#families, this.#families, this.#families];
      const b = [this.#params[k], this.#families, this.#dtab, null, null, null, y, ...slots, out];
      if (this.#lines) {
        rec.dispatch1d("joseph_ring", "ring_back_rows", b, ny);
        rec.dispatch1d("joseph_ring", "ring_back_cols", b, nx);
      } else rec.dispatch1d("joseph_ring", "ring_back", b, nx * ny);
    }
  }

  /** Frees the device buffers. */
  destroy(): void {
    this.#families.destroy();
    this.#dtab.destroy();
    this.#slice?.destroy();
    for (const b of new Set(this.#sino)) b.destroy();
  }
}
