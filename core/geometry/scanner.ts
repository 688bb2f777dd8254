/**
 * Cylindrical multi-ring PET scanners and their span-1 sinograms.
 *
 * Crystal k of a ring sits at angle 2πk/N on a circle of `radiusMm` (or, with `sides`, on a
 * regular polygon of that inner radius); ring r sits at z = (r − (R−1)/2)·ringSpacing.
 * Sinogram bin (radial r, view v, plane p) joins crystals
 *   a = v − N/4 − ⌊r/2⌋ and b = a + N/2 + r   (mod N)
 * on the plane's two rings, so views cover [0, π) and neighbouring radial bins interleave the
 * two chord families, as in the usual "interleaved" PET sinogram. Projection data are stored
 * `[radial, views, planes]`, radial fastest. Planes are ordered as in STIR: segment 0, −1, +1,
 * −2, +2, … (segment = ring difference, ring of crystal b − ring of crystal a), and inside a
 * segment by axial position (lower ring first).
 *
 * @module
 */

import { z } from "zod";
import { centredGrid, type ImageGrid } from "./grid.ts";
import type { LorSet } from "./lors.ts";

/**
 * zod schema of a {@linkcode RingScannerSpec}.
 *
 * @example
 * ```ts
 * import { RingScanner, RingScannerSchema } from "@petrel/petrel";
 * const spec = RingScannerSchema.parse({
 *   radiusMm: 330, crystalsPerRing: 448, rings: 1, ringSpacingMm: 4.0625,
 *   radialBins: 129, maxRingDifference: 0,
 * });
 * const scanner = new RingScanner(spec); // spec.name defaulted to "ring scanner"
 * ```
 */
export const RingScannerSchema = z.object({
  /** Human-readable name. */
  name: z.string().default("ring scanner"),
  /** Crystal-centre radius in mm. */
  radiusMm: z.number().positive().finite(),
  /** Crystals per ring (even, divisible by 4). */
  crystalsPerRing: z.number().int().positive().refine((n) => n % 4 === 0, {
    message: "crystalsPerRing must be divisible by 4",
  }),
  /** Number of rings (1 for a 2-D scanner). */
  rings: z.number().int().positive(),
  /** Axial distance between ring centres in mm. */
  ringSpacingMm: z.number().positive().finite(),
  /** Radial bins kept (odd, centred; at most crystalsPerRing / 2 + 1): radial trimming. */
  radialBins: z.number().int().positive().refine((n) => n % 2 === 1, {
    message: "radialBins must be odd (centred on the scanner axis)",
  }),
  /** Largest ring difference stored (span 1). */
  maxRingDifference: z.number().int().nonnegative(),
  /** Number of flat sides (regular polygon); omit for a circle. */
  sides: z.number().int().min(3).optional(),
});

/**
 * A cylindrical (or regular-polygon) multi-ring scanner, input form.
 *
 * @example
 * ```ts
 * import { RingScanner, type RingScannerSpec } from "@petrel/petrel";
 * // a small-animal-like ring: 16 rings of 1.6 mm, 20-sided
 * const spec: RingScannerSpec = {
 *   name: "small animal",
 *   radiusMm: 80,
 *   crystalsPerRing: 240,
 *   rings: 16,
 *   ringSpacingMm: 1.6,
 *   radialBins: 101,
 *   maxRingDifference: 7,
 *   sides: 20,
 * };
 * const scanner = new RingScanner(spec);
 * ```
 */
export type RingScannerSpec = z.input<typeof RingScannerSchema>;

/** One sinogram plane: a pair of rings. */
export interface SinogramPlane {
  ring1: number;
  ring2: number;
  segment: number;
}

/**
 * A validated ring scanner with its sinogram layout.
 *
 * @example
 * ```ts
 * const s = new RingScanner({ ...mmrLike2d().spec, name: "small", crystalsPerRing: 128, radialBins: 65 });
 * const lors = s.lors();
 * ```
 */
export class RingScanner {
  readonly spec: z.output<typeof RingScannerSchema>;
  /** Planes in STIR order. */
  readonly planes: readonly SinogramPlane[];
  /** Crystal centres in the transaxial plane, `[x0, y0, x1, y1, …]` in mm. */
  readonly crystalXY: Float64Array;

  constructor(spec: RingScannerSpec) {
    const r = RingScannerSchema.safeParse(spec);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new TypeError(`invalid scanner: ${issue.path.join(".")}: ${issue.message}`);
    }
    const s = r.data;
    if (s.radialBins > s.crystalsPerRing / 2 + 1) {
      throw new RangeError(
        `invalid scanner: radialBins ${s.radialBins} exceeds crystalsPerRing/2 + 1 = ${
          s.crystalsPerRing / 2 + 1
        }`,
      );
    }
    if (s.maxRingDifference > s.rings - 1) {
      throw new RangeError(
        `invalid scanner: maxRingDifference ${s.maxRingDifference} exceeds rings − 1 = ${
          s.rings - 1
        }`,
      );
    }
    this.spec = s;
    const planes: SinogramPlane[] = [];
    for (let seg = 0; seg <= s.maxRingDifference; seg++) {
      for (const sign of seg === 0 ? [1] : [-1, 1]) {
        const d = sign * seg;
        for (let lo = 0; lo + seg < s.rings; lo++) {
          const ring1 = d >= 0 ? lo : lo + seg;
          planes.push({ ring1, ring2: ring1 + d, segment: d });
        }
      }
    }
    this.planes = planes;
    this.crystalXY = crystalPositions(s.crystalsPerRing, s.radiusMm, s.sides);
  }

  /** Number of views (crystalsPerRing / 2). */
  get views(): number {
    return this.spec.crystalsPerRing / 2;
  }

  /** Number of radial bins. */
  get radialBins(): number {
    return this.spec.radialBins;
  }

  /** Shape of a full sinogram, `[radial, views, planes]`. */
  get sinogramShape(): [number, number, number] {
    return [this.spec.radialBins, this.views, this.planes.length];
  }

  /** Number of sinogram bins. */
  get bins(): number {
    return this.spec.radialBins * this.views * this.planes.length;
  }

  /** z of ring `r` in mm (rings centred on z = 0). */
  ringZ(r: number): number {
    return (r - (this.spec.rings - 1) / 2) * this.spec.ringSpacingMm;
  }

  /** Crystal indices (a, b) of radial bin `r` (0-based) and view `v`. */
  crystalPair(radial: number, view: number): [number, number] {
    const n = this.spec.crystalsPerRing;
    const rs = radial - (this.spec.radialBins - 1) / 2;
    const a = ((view - n / 4 - Math.floor(rs / 2)) % n + n) % n;
    const b = (a + n / 2 + rs + n) % n;
    return [a, b];
  }

  /**
   * LORs of the given views (all views by default) for every plane and radial bin, stored
   * `[radial, views-subset, planes]`.
   */
  lors(views?: readonly number[]): LorSet {
    const vs = views ?? Array.from({ length: this.views }, (_, v) => v);
    for (const v of vs) {
      if (!Number.isInteger(v) || v < 0 || v >= this.views) {
        throw new RangeError(`view ${v} is outside 0 … ${this.views - 1}`);
      }
    }
    const nr = this.spec.radialBins;
    const count = nr * vs.length * this.planes.length;
    const e = new Float32Array(6 * count);
    const xy = this.crystalXY;
    let n = 0;
    for (const plane of this.planes) {
      const z1 = this.ringZ(plane.ring1);
      const z2 = this.ringZ(plane.ring2);
      for (const v of vs) {
        for (let r = 0; r < nr; r++) {
          const [a, b] = this.crystalPair(r, v);
          e[6 * n] = xy[2 * a];
          e[6 * n + 1] = xy[2 * a + 1];
          e[6 * n + 2] = z1;
          e[6 * n + 3] = xy[2 * b];
          e[6 * n + 4] = xy[2 * b + 1];
          e[6 * n + 5] = z2;
          n++;
        }
      }
    }
    return { count, endpoints: e, shape: [nr, vs.length, this.planes.length] };
  }

  /**
   * Views of OSEM subset `k` of `subsets`: every `subsets`-th view starting at `k`, so each subset
   * samples all angles evenly.
   */
  subsetViews(k: number, subsets: number): number[] {
    if (!Number.isInteger(subsets) || subsets < 1 || subsets > this.views) {
      throw new RangeError(`subsets must be an integer in 1 … ${this.views}, got ${subsets}`);
    }
    if (!Number.isInteger(k) || k < 0 || k >= subsets) {
      throw new RangeError(`subset index ${k} is outside 0 … ${subsets - 1}`);
    }
    const out: number[] = [];
    for (let v = k; v < this.views; v += subsets) out.push(v);
    return out;
  }

  /**
   * Flat sinogram indices of the bins of `views`, in the order of {@linkcode RingScanner.lors}
   * for the same views (to split full sinograms into subsets and merge them back).
   */
  binIndices(views: readonly number[]): Uint32Array {
    const nr = this.spec.radialBins;
    const nv = this.views;
    const out = new Uint32Array(nr * views.length * this.planes.length);
    let n = 0;
    for (let p = 0; p < this.planes.length; p++) {
      for (const v of views) {
        const base = (p * nv + v) * nr;
        for (let r = 0; r < nr; r++) out[n++] = base + r;
      }
    }
    return out;
  }

  /**
   * Throws when `grid` does not fit inside the scanner: transaxially every voxel must lie inside
   * the crystal ring (inner radius for polygons), axially the grid must not extend more than one
   * ring spacing beyond the outer rings. The message says by how much and what would fit.
   */
  checkGridFits(grid: ImageGrid): void {
    const s = this.spec;
    const inner = s.radiusMm; // for polygons radiusMm is the inner (side-centre) radius
    let rMax = 0;
    for (const ix of [0, grid.shape[0] - 1]) {
      for (const iy of [0, grid.shape[1] - 1]) {
        const x = grid.originMm[0] + ix * grid.voxelSizeMm[0];
        const y = grid.originMm[1] + iy * grid.voxelSizeMm[1];
        // outer corner of the corner voxel
        const cx = Math.abs(x) + grid.voxelSizeMm[0] / 2;
        const cy = Math.abs(y) + grid.voxelSizeMm[1] / 2;
        rMax = Math.max(rMax, Math.hypot(cx, cy));
      }
    }
    if (rMax >= inner) {
      throw new RangeError(
        `image grid does not fit the scanner "${s.name}": its corners reach ${
          rMax.toFixed(1)
        } mm from the axis but the crystals sit at ${inner} mm; use fewer or smaller voxels (a centred square of side ≤ ${
          (inner * Math.SQRT2).toFixed(1)
        } mm fits)`,
      );
    }
    const zLo = grid.originMm[2] - grid.voxelSizeMm[2] / 2;
    const zHi = grid.originMm[2] + (grid.shape[2] - 0.5) * grid.voxelSizeMm[2];
    const ringLo = this.ringZ(0) - s.ringSpacingMm;
    const ringHi = this.ringZ(s.rings - 1) + s.ringSpacingMm;
    if (zLo < ringLo - 1e-6 || zHi > ringHi + 1e-6) {
      throw new RangeError(
        `image grid does not fit the scanner "${s.name}" axially: it spans z ${zLo.toFixed(1)} … ${
          zHi.toFixed(1)
        } mm but the rings cover ${this.ringZ(0).toFixed(1)} … ${
          this.ringZ(s.rings - 1).toFixed(1)
        } mm; use fewer slices or a smaller z voxel`,
      );
    }
  }

  /**
   * The natural reconstruction grid: `shape` transaxial voxels of `voxelMm`, and one slice per
   * ring (or `nz` slices of `voxelZMm`), centred on the scanner.
   */
  imageGrid(
    transaxial: number,
    voxelMm: number,
    axial?: { nz: number; voxelZMm: number },
  ): ImageGrid {
    const nz = axial?.nz ?? this.spec.rings;
    const vz = axial?.voxelZMm ?? this.spec.ringSpacingMm;
    const grid = centredGrid([transaxial, transaxial, nz], [voxelMm, voxelMm, vz]);
    this.checkGridFits(grid);
    return grid;
  }
}

function crystalPositions(n: number, radius: number, sides?: number): Float64Array {
  const xy = new Float64Array(2 * n);
  for (let k = 0; k < n; k++) {
    const phi = (2 * Math.PI * k) / n;
    let rad = radius;
    if (sides) {
      // Crystals on flat sides: distance from the axis grows away from each side's centre.
      const sector = (2 * Math.PI) / sides;
      const local = ((phi + sector / 2) % sector) - sector / 2;
      rad = radius / Math.cos(local);
    }
    xy[2 * k] = rad * Math.cos(phi);
    xy[2 * k + 1] = rad * Math.sin(phi);
  }
  return xy;
}

/**
 * mMR-like single ring as in the DDIP reference demo: 448 crystals, 224 views × 129 bins.
 *
 * @example
 * ```ts
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const lors = scanner.lors(); // one direct plane
 * ```
 */
export function mmrLike2d(): RingScanner {
  return new RingScanner({
    name: "mMR-like 2D",
    radiusMm: 330,
    crystalsPerRing: 448,
    rings: 1,
    ringSpacingMm: 4.0625,
    radialBins: 129,
    maxRingDifference: 0,
  });
}

/**
 * mMR-like multi-ring scanner: `rings` rings 4.0625 mm apart (64 on the real system),
 * span 1 up to `maxRingDifference`.
 *
 * @example
 * ```ts
 * const scanner = mmrLike3d({ rings: 8, maxRingDifference: 3 });
 * console.log(scanner.sinogramShape);
 * ```
 */
export function mmrLike3d(
  options: { rings?: number; maxRingDifference?: number } = {},
): RingScanner {
  const rings = options.rings ?? 64;
  return new RingScanner({
    name: `mMR-like 3D (${rings} rings)`,
    radiusMm: 330,
    crystalsPerRing: 448,
    rings,
    ringSpacingMm: 4.0625,
    radialBins: 129,
    maxRingDifference: options.maxRingDifference ?? Math.min(rings - 1, 60),
  });
}

/**
 * Voxel size of the mMR-like reconstruction grid (mm).
 *
 * @example
 * ```ts
 * import { MMR_VOXEL_MM, mmrLike2d } from "@petrel/petrel";
 * const grid = mmrLike2d().imageGrid(128, MMR_VOXEL_MM); // 128 × 128 voxels of 2.086 mm, one 4.0625 mm slice
 * ```
 */
export const MMR_VOXEL_MM = 2.086;
