/**
 * Joseph projector specialised to the span-1 sinograms of a circular ring scanner with oblique
 * planes (`shaders/joseph_ring_oblique.wgsl`): every LOR of a (radial bin, view) lies above the
 * same in-plane chord, with z linear along it, so the kernels work per chord and factorise
 * Joseph's bilinear sample into its in-plane and axial halves. Same line integrals as
 * {@linkcode JosephProjector} on the scanner's LORs, up to float rounding.
 *
 * @module
 */

import type { GpuArray, GpuContext, KernelRecorder } from "../gpu/context.ts";
import { type ImageGrid, imageGrid } from "../geometry/grid.ts";
import type { RingScanner } from "../geometry/scanner.ts";
import { checkShape, type LinearOperator } from "./operator.ts";
import { RingPlanarProjector, ringPlanarUnsupported } from "./ring.ts";
import { ringDistances, ringFamilies, ringViews } from "./ring_tables.ts";

const MAX_PLANES = 256; // sinogram planes per pass (joseph_ring_oblique.wgsl; see there why not more)
const MAX_SLICES = 64; // image slices
const MAX_LINE = 256; // nx, ny
const UNIFORM_VEC4 = 4096; // 64 KiB uniform tables
/** Bytes of the per-chord axial intermediate Z a back projection works through at a time. */
const Z_CHUNK_BYTES = 64 * 1024 * 1024;

/** Options of {@linkcode RingObliqueProjector}. */
export interface RingObliqueOptions {
  /** Views (of the scanner's) this operator covers, in order (default all: a subset's views). */
  views?: readonly number[];
  /**
   * Bytes of the back projection's intermediate (one row of nz values per chord and plane step),
   * processed in chunks of views of at most this size (default 64 MiB; tests force chunking).
   */
  zChunkBytes?: number;
}

/**
 * Why `scanner` and `grid` do not fit {@linkcode RingObliqueProjector} (null when they do): it
 * needs a circular scanner (no `sides`), at most 64 image slices, 256 × 256 transaxial voxels,
 * 4096 sinogram planes and radial bins, 2048 views, and LORs whose dominant axis is x or y (never
 * z). Any z grid inside the scanner will do; slices need not sit on the rings.
 *
 * @example
 * ```ts
 * import { MMR_VOXEL_MM, mmrLike3d, ringObliqueUnsupported } from "@petrel/petrel";
 * const scanner = mmrLike3d({ rings: 8, maxRingDifference: 3 });
 * ringObliqueUnsupported(scanner, scanner.imageGrid(128, MMR_VOXEL_MM)); // null: it fits
 * ```
 */
export function ringObliqueUnsupported(
  scanner: RingScanner,
  grid: ImageGrid,
  views?: readonly number[],
): string | null {
  const s = scanner.spec;
  if (s.sides) return "the scanner is a polygon (sides), not a circle";
  const g = imageGrid(grid);
  const [nx, ny, nz] = g.shape;
  if (nz > MAX_SLICES) return `the image has ${nz} slices (at most ${MAX_SLICES})`;
  if (nx > MAX_LINE || ny > MAX_LINE) {
    return `the image has ${nx}×${ny} transaxial voxels (at most ${MAX_LINE}×${MAX_LINE})`;
  }
  if (s.radialBins > 4096) return "more than 4096 radial bins";
  if (2 * (views?.length ?? scanner.views) > 4096) return "more than 2048 views";
  if (scanner.planes.length > UNIFORM_VEC4) return `more than ${UNIFORM_VEC4} sinogram planes`;
  // Joseph steps along z when |Δz| exceeds both in-plane components: not covered. The shortest
  // in-plane extent along x or y of a kept chord is that of the outermost radial bin.
  const half = (s.radialBins - 1) / 2;
  const dMax = s.radiusMm * Math.sin((half * Math.PI) / s.crystalsPerRing);
  const chordMin = 2 * Math.sqrt(s.radiusMm ** 2 - dMax ** 2) / Math.SQRT2;
  const dzMax = s.maxRingDifference * s.ringSpacingMm;
  if (dzMax >= chordMin * (1 - 1e-6)) {
    return `LORs up to ${dzMax} mm apart in z are steeper than 45° to the transaxial plane`;
  }
  return null;
}

/**
 * Joseph projector `P` of a circular ring scanner's span-1 sinogram `[radial, views, planes]`
 * (direct and oblique planes, STIR order) on `grid` (see {@linkcode ringObliqueUnsupported}).
 *
 * It works per in-plane chord (radial bin, view) rather than per LOR: forward, one invocation
 * per chord interpolates the image column of every slice once per plane step and adds each
 * sinogram plane's z-interpolated sample in private memory; back, the chord's sinogram values
 * are spread over slices per plane step (an intermediate the size of the image's column per
 * chord and step, in chunks of views), then gathered per image row and column like
 * {@linkcode RingPlanarProjector}'s: deterministic and without atomics. Built for CPU (fallback)
 * adapters, where it replaces Joseph's 4 storage loads or atomics per (LOR, plane step) by private
 * arithmetic; on GPUs its per-invocation private arrays (256 planes) are a poor fit.
 *
 * @example
 * ```ts
 * import { defaultContext, mmrLike3d, RingObliqueProjector } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike3d({ rings: 4, maxRingDifference: 3 });
 * const P = new RingObliqueProjector(ctx, scanner, scanner.imageGrid(64, 4));
 * const x = ctx.array(P.inShape, new Float32Array(64 * 64 * 4).fill(1));
 * const y = ctx.array(P.outShape); // [129, 224, 16]
 * const b = ctx.array(P.inShape);
 * ctx.run((rec) => {
 *   P.apply(rec, x, y); // y = P x
 *   P.adjoint(rec, y, b); // b = Pᵀ y
 * });
 * ```
 */
export class RingObliqueProjector implements LinearOperator {
  readonly inShape: readonly number[];
  readonly outShape: readonly number[];
  readonly grid: ImageGrid;
  readonly #families: GPUBuffer;
  readonly #dtab: GPUBuffer;
  readonly #planes: GPUBuffer;
  readonly #lines: GpuArray;
  readonly #nr: number;
  readonly #nv: number;
  readonly #np: number;
  readonly #chunkViews: number;
  readonly #geom: number[];
  #zbuf: GpuArray | null = null;

  constructor(
    readonly ctx: GpuContext,
    scanner: RingScanner,
    grid: ImageGrid,
    options: RingObliqueOptions = {},
  ) {
    this.grid = imageGrid(grid);
    const why = ringObliqueUnsupported(scanner, this.grid, options.views);
    if (why) throw new RangeError(`RingObliqueProjector: ${why}`);
    scanner.checkGridFits(this.grid);
    const views = ringViews("RingObliqueProjector", scanner, options.views);
    const [nx, ny, nz] = this.grid.shape;
    const nr = scanner.radialBins;
    const nv = views.length;
    const np = scanner.planes.length;
    this.#nr = nr;
    this.#nv = nv;
    this.#np = np;
    this.inShape = [...this.grid.shape];
    this.outShape = [nr, nv, np];
    const N = scanner.spec.crystalsPerRing;
    const R = scanner.spec.radiusMm;
    const [ox, oy, oz] = this.grid.originMm;
    const [vx, vy, vz] = this.grid.voxelSizeMm;
    const xy = scanner.crystalXY;
    // The families as RingPlanarProjector's (ring_tables.ts). Per chord: its fraction
    // t(i) = t0 + i·t1 from crystal a to crystal b at plane i, and 1 / its length.
    const { fam, xDominant } = ringFamilies(scanner, this.grid, views);
    const lineTab = new Float32Array(4 * nr * nv);
    views.forEach((v, j) => {
      for (let r = 0; r < nr; r++) {
        const rs = r - (nr - 1) / 2;
        const [a, b] = scanner.crystalPair(r, v);
        const dx = xy[2 * b] - xy[2 * a];
        const dy = xy[2 * b + 1] - xy[2 * a + 1];
        const q = ((rs % 2) + 2) % 2;
        // a = x: t(i) = (ox + i·vx − xa) / (xb − xa); a = y likewise in y
        const [o, vox, pa, da] = xDominant[2 * j + q]
          ? [ox, vx, xy[2 * a], dx]
          : [oy, vy, xy[2 * a + 1], dy];
        lineTab.set([(o - pa) / da, vox / da, 1 / Math.hypot(dx, dy), 0], 4 * (j * nr + r));
      }
    });
    // Per plane: slice coordinate of crystal a's ring, its change to crystal b's, and Δz in mm.
    const planeTab = new Float32Array(4 * UNIFORM_VEC4);
    scanner.planes.forEach((p, k) => {
      const z1 = scanner.ringZ(p.ring1);
      const z2 = scanner.ringZ(p.ring2);
      planeTab.set([(z1 - oz) / vz, (z2 - z1) / vz, z2 - z1, 0], 4 * k);
    });
    const dtab = ringDistances(scanner);
    this.#families = this.#uniformBuffer(fam);
    this.#dtab = this.#uniformBuffer(dtab);
    this.#planes = this.#uniformBuffer(planeTab);
    this.#lines = ctx.array([nr * nv, 4], lineTab);
    const perView = nr * Math.max(nx, ny) * nz * 4;
    const budget = Math.min(
      options.zChunkBytes ?? Z_CHUNK_BYTES,
      ctx.adapter.limits.maxStorageBufferBindingSize,
    );
    this.#chunkViews = Math.max(1, Math.min(nv, Math.floor(budget / perView)));
    this.#geom = [N / Math.PI, R];
  }

  #uniformBuffer(data: Float32Array): GPUBuffer {
    const b = this.ctx.device.createBuffer({
      size: data.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.ctx.device.queue.writeBuffer(b, 0, data as Float32Array<ArrayBuffer>);
    return b;
  }

  #params(flags: number, p0: number, np: number, j0: number, nvc: number): GPUBuffer {
    const [nx, ny, nz] = this.grid.shape;
    const buf = new ArrayBuffer(64);
    new Uint32Array(buf, 0, 12).set([
      nx,
      ny,
      nz,
      flags,
      this.#nr,
      this.#nv,
      p0,
      np,
      j0,
      nvc,
      this.#np,
      0,
    ]);
    new Float32Array(buf, 48, 4).set([...this.#geom, 0, 0]);
    return this.ctx.uniform(new Uint32Array(buf));
  }

  /** Views per chunk of the back projection's intermediate. */
  get chunkViews(): number {
    return this.#chunkViews;
  }

  /** Records `out = P x`. */
  apply(rec: KernelRecorder, x: GpuArray, out: GpuArray): void {
    checkShape("RingObliqueProjector.apply input", x, this.inShape);
    checkShape("RingObliqueProjector.apply output", out, this.outShape);
    for (let p0 = 0; p0 < this.#np; p0 += MAX_PLANES) {
      const np = Math.min(MAX_PLANES, this.#np - p0);
      rec.dispatch1d("joseph_ring_oblique", "fwd_lines", [
        this.#params(0, p0, np, 0, this.#nv),
        this.#families,
        this.#dtab,
        this.#planes,
        this.#lines,
        x,
        out,
      ], this.#nr * this.#nv);
    }
  }

  /** Records `out = Pᵀ y`. */
  adjoint(rec: KernelRecorder, y: GpuArray, out: GpuArray): void {
    checkShape("RingObliqueProjector.adjoint input", y, this.outShape);
    checkShape("RingObliqueProjector.adjoint output", out, this.inShape);
    const [nx, ny, nz] = this.grid.shape;
    const nvc = this.#chunkViews;
    this.#zbuf ??= this.ctx.array([nvc * this.#nr * Math.max(nx, ny) * nz]);
    for (let j0 = 0; j0 < this.#nv; j0 += nvc) {
      const n = Math.min(nvc, this.#nv - j0);
      for (let p0 = 0; p0 < this.#np; p0 += MAX_PLANES) {
        const np = Math.min(MAX_PLANES, this.#np - p0);
        rec.dispatch1d("joseph_ring_oblique", "back_lines_z", [
          this.#params(p0 > 0 ? 1 : 0, p0, np, j0, n),
          this.#families,
          this.#dtab,
          this.#planes,
          this.#lines,
          null,
          null,
          y,
          this.#zbuf,
        ], this.#nr * n);
      }
      const b = [
        this.#params(j0 > 0 ? 1 : 0, 0, 0, j0, n),
        this.#families,
        this.#dtab,
        null,
        null,
        null,
        null,
        null,
        this.#zbuf,
        out,
      ];
      rec.dispatch1d("joseph_ring_oblique", "back_rows_z", b, ny * nz);
      rec.dispatch1d("joseph_ring_oblique", "back_cols_z", b, nx * nz);
    }
  }

  /** Frees the device buffers. */
  destroy(): void {
    this.#families.destroy();
    this.#dtab.destroy();
    this.#planes.destroy();
    this.#lines.destroy();
    this.#zbuf?.destroy();
  }
}

/**
 * The ring-sinogram projector of `scanner` on `grid`: {@linkcode RingPlanarProjector} where it
 * applies (direct planes, one slice per ring), else {@linkcode RingObliqueProjector}. Throws,
 * saying why, when neither applies ({@linkcode ringProjectorUnsupported}).
 *
 * @example
 * ```ts
 * import { defaultContext, MMR_VOXEL_MM, mmrLike2d, mmrLike3d, ringProjector } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const planar = ringProjector(ctx, mmrLike2d(), mmrLike2d().imageGrid(128, MMR_VOXEL_MM));
 * const s3 = mmrLike3d({ rings: 4, maxRingDifference: 3 });
 * const oblique = ringProjector(ctx, s3, s3.imageGrid(128, MMR_VOXEL_MM)); // a RingObliqueProjector
 * ```
 */
export function ringProjector(
  ctx: GpuContext,
  scanner: RingScanner,
  grid: ImageGrid,
  views?: readonly number[],
): RingPlanarProjector | RingObliqueProjector {
  if (!ringPlanarUnsupported(scanner, grid, views)) {
    return new RingPlanarProjector(ctx, scanner, grid, { views });
  }
  const why = ringObliqueUnsupported(scanner, grid, views);
  if (why) throw new RangeError(`ringProjector: ${ringProjectorUnsupported(scanner, grid, views)}`);
  return new RingObliqueProjector(ctx, scanner, grid, { views });
}

/**
 * Why neither ring-sinogram projector covers `scanner` on `grid` (null when one does).
 *
 * @example
 * ```ts
 * import { MMR_VOXEL_MM, mmrLike3d, ringProjectorUnsupported } from "@petrel/petrel";
 * const s = mmrLike3d({ rings: 32, maxRingDifference: 7 });
 * ringProjectorUnsupported(s, s.imageGrid(128, MMR_VOXEL_MM)); // null: the oblique one does
 * ```
 */
export function ringProjectorUnsupported(
  scanner: RingScanner,
  grid: ImageGrid,
  views?: readonly number[],
): string | null {
  const planar = ringPlanarUnsupported(scanner, grid, views);
  const oblique = ringObliqueUnsupported(scanner, grid, views);
  return planar && oblique ? `planar: ${planar}; oblique: ${oblique}` : null;
}
