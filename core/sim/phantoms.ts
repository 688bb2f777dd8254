/**
 * Analytic test phantoms rasterised with supersampling (partial volume included): the NEMA IEC
 * body phantom (image-quality phantom of NEMA NU 2 / IEC 61675-1) and a Derenzo hot-rod phantom.
 *
 * @module
 */

import { type ImageGrid, imageGrid, voxelCount } from "../geometry/grid.ts";

/** Activity, μ-map (1/mm) and material fractions of an analytic phantom on a grid. */
export interface AnalyticPhantom {
  readonly grid: ImageGrid;
  /** Activity concentration (arbitrary units). */
  readonly activity: Float32Array;
  /** μ at 511 keV in 1/mm. */
  readonly mu: Float32Array;
  /** Material names (index = material code). */
  readonly materials: readonly string[];
  /** Fraction of each voxel covered by each material. */
  readonly fractions: Float32Array[];
}

/**
 * Rasterises `materialAt(x, y, z)` (material code, mm) on `grid` with `supersample`³ sub-samples
 * per voxel (`supersample`² in-plane for single-slice grids) and returns per-material fractions.
 *
 * @example
 * ```ts
 * import { centredGrid, rasterizeMaterials } from "@petrel/petrel";
 * // a 20 mm rod (material 1) in air (material 0), 4 × 4 sub-samples per voxel
 * const [air, rod] = rasterizeMaterials(
 *   centredGrid([64, 64, 1], [1, 1, 1]),
 *   (x, y) => (x * x + y * y <= 10 * 10 ? 1 : 0),
 *   { materials: 2 },
 * ); // rod[i]: covered fraction of voxel i (partial volume at the edge)
 * ```
 */
export function rasterizeMaterials(
  grid: ImageGrid,
  materialAt: (x: number, y: number, z: number) => number,
  options: { materials: number; supersample?: number },
): Float32Array[] {
  const g = imageGrid(grid);
  const s = options.supersample ?? 4;
  if (!Number.isInteger(s) || s < 1 || s > 16) {
    throw new RangeError(`supersample must be an integer in 1 … 16, got ${s}`);
  }
  const [nx, ny, nz] = g.shape;
  const sz = nz === 1 ? 1 : s;
  const out = Array.from({ length: options.materials }, () => new Float32Array(voxelCount(g)));
  const w = 1 / (s * s * sz);
  const off = (n: number, t: number) => ((t + 0.5) / n - 0.5);
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const idx = i + nx * (j + ny * k);
        for (let c = 0; c < sz; c++) {
          const z = g.originMm[2] + (k + (nz === 1 ? 0 : off(sz, c))) * g.voxelSizeMm[2];
          for (let b = 0; b < s; b++) {
            const y = g.originMm[1] + (j + off(s, b)) * g.voxelSizeMm[1];
            for (let a = 0; a < s; a++) {
              const x = g.originMm[0] + (i + off(s, a)) * g.voxelSizeMm[0];
              const m = materialAt(x, y, z);
              if (m < 0 || m >= options.materials || !Number.isInteger(m)) {
                throw new RangeError(
                  `materialAt returned ${m}; expected 0 … ${options.materials - 1}`,
                );
              }
              out[m][idx] += w;
            }
          }
        }
      }
    }
  }
  return out;
}

function combine(fractions: Float32Array[], values: readonly number[]): Float32Array {
  const out = new Float32Array(fractions[0].length);
  fractions.forEach((f, m) => {
    const v = values[m];
    if (v !== 0) { for (let i = 0; i < out.length; i++) out[i] += v * f[i]; }
  });
  return out;
}

/**
 * NEMA IEC body phantom sphere inner diameters (mm), smallest first.
 *
 * @example
 * ```ts
 * import { NEMA_SPHERE_DIAMETERS_MM, nemaIecPhantom, centredGrid } from "@petrel/petrel";
 * // the two smallest spheres (10 and 13 mm) cold
 * const nema = nemaIecPhantom(centredGrid([128, 128, 1], [2, 2, 2]), { coldSpheres: [0, 1] });
 * NEMA_SPHERE_DIAMETERS_MM.slice(0, 2); // [10, 13]
 * ```
 */
export const NEMA_SPHERE_DIAMETERS_MM: readonly number[] = [10, 13, 17, 22, 28, 37];

/** Options of {@linkcode nemaIecPhantom}. */
export interface NemaOptions {
  /** Hot-sphere to background activity ratio (default 4); spheres listed in `coldSpheres` are 0. */
  sphereToBackground?: number;
  /** Background activity concentration (default 1). */
  background?: number;
  /** Indices (0 = 10 mm … 5 = 37 mm) of spheres filled with cold water (default none). */
  coldSpheres?: readonly number[];
  /** Sub-samples per voxel and axis (default 4). */
  supersample?: number;
}

/**
 * Material codes of the NEMA phantom.
 *
 * @example
 * ```ts
 * import { centredGrid, NemaMaterial, nemaIecPhantom } from "@petrel/petrel";
 * const nema = nemaIecPhantom(centredGrid([128, 128, 1], [2, 2, 2]));
 * const lung = nema.fractions[NemaMaterial.LUNG]; // partial-volume fraction of the lung insert
 * const sphere37 = nema.fractions[NemaMaterial.SPHERE0 + 5]; // the 37 mm sphere
 * ```
 */
export const NemaMaterial = {
  AIR: 0,
  BACKGROUND: 1,
  WALL: 2,
  LUNG: 3,
  SPHERE0: 4,
} as const;

/**
 * Geometry of the NEMA IEC body phantom in phantom mm: the sphere plane is z = 0 and the lung
 * insert axis is x = y = 0, the curved top of the body towards +y. Interior cross-section: a
 * half-disc of radius 147 mm (centre y = −35) over a 140 × 77 mm box flanked by two quarter discs
 * of radius 77 mm (centres x = ±70, y = −35); 3 mm PMMA walls; interior length 180 mm
 * (z ∈ [−110, 70], the sphere centres 70 mm below the lid). Spheres (1 mm walls) on a 57.2 mm
 * ring at 30° + 60°·n, n = 0 … 5, with diameters 10, 13, 17, 22, 28, 37 mm; lung insert: a 50 mm
 * (inner) cylinder of low-density foam through the whole length.
 *
 * @example
 * ```ts
 * import { NEMA_GEOMETRY } from "@petrel/petrel";
 * const lengthMm = NEMA_GEOMETRY.zMaxMm - NEMA_GEOMETRY.zMinMm; // 180 mm interior
 * ```
 */
export const NEMA_GEOMETRY = {
  halfDiscRadiusMm: 147,
  bodyCentreYMm: -35,
  boxHalfWidthMm: 70,
  lowerDepthMm: 77,
  wallMm: 3,
  zMinMm: -110,
  zMaxMm: 70,
  sphereRingRadiusMm: 57.2,
  sphereWallMm: 1,
  lungRadiusMm: 25,
  lungWallMm: 2,
} as const;

/**
 * Centre (mm) of NEMA sphere `n` (0 = 10 mm … 5 = 37 mm).
 *
 * @example
 * ```ts
 * import { nemaSphereCentre } from "@petrel/petrel";
 * const [x, y, z] = nemaSphereCentre(5); // the 37 mm sphere, on the 57.2 mm ring at 330°
 * ```
 */
export function nemaSphereCentre(n: number): [number, number, number] {
  const a = ((30 + 60 * n) * Math.PI) / 180;
  const r = NEMA_GEOMETRY.sphereRingRadiusMm;
  return [r * Math.cos(a), r * Math.sin(a), 0];
}

/** Is (x, y) inside the body outline grown by `grow` mm? */
function insideBody(x: number, y: number, grow: number): boolean {
  const G = NEMA_GEOMETRY;
  const yr = y - G.bodyCentreYMm;
  if (yr >= 0) return x * x + yr * yr <= (G.halfDiscRadiusMm + grow) ** 2;
  if (yr < -(G.lowerDepthMm + grow)) return false;
  const ax = Math.abs(x);
  if (ax <= G.boxHalfWidthMm) return true;
  const dx = ax - G.boxHalfWidthMm;
  return dx * dx + yr * yr <= (G.lowerDepthMm + grow) ** 2;
}

/**
 * Material code of the NEMA phantom at a point (mm).
 *
 * @example
 * ```ts
 * import { NemaMaterial, nemaMaterialAt } from "@petrel/petrel";
 * nemaMaterialAt(0, 0, 0) === NemaMaterial.LUNG; // true: the lung insert is on the axis
 * ```
 */
export function nemaMaterialAt(x: number, y: number, z: number): number {
  const G = NEMA_GEOMETRY;
  const w = G.wallMm;
  if (z < G.zMinMm - w || z > G.zMaxMm + w || !insideBody(x, y, w)) return NemaMaterial.AIR;
  if (z < G.zMinMm || z > G.zMaxMm || !insideBody(x, y, 0)) return NemaMaterial.WALL;
  const r2 = x * x + y * y;
  if (r2 <= G.lungRadiusMm ** 2) return NemaMaterial.LUNG;
  if (r2 <= (G.lungRadiusMm + G.lungWallMm) ** 2) return NemaMaterial.WALL;
  for (let n = 0; n < 6; n++) {
    const c = nemaSphereCentre(n);
    const r = NEMA_SPHERE_DIAMETERS_MM[n] / 2;
    const d2 = (x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2;
    if (d2 <= r * r) return NemaMaterial.SPHERE0 + n;
    if (d2 <= (r + G.sphereWallMm) ** 2) return NemaMaterial.WALL;
  }
  return NemaMaterial.BACKGROUND;
}

/**
 * μ at 511 keV (1/mm): water 0.0096, PMMA 0.0112, lung foam 0.0029.
 *
 * @example
 * ```ts
 * import { NEMA_MU_PER_MM } from "@petrel/petrel";
 * const attenuation = Math.exp(-NEMA_MU_PER_MM.water * 200); // ≈ 0.15 through 200 mm of water
 * ```
 */
export const NEMA_MU_PER_MM = { water: 0.0096, pmma: 0.0112, lung: 0.0029 } as const;

/**
 * The NEMA IEC body phantom on `grid` (phantom coordinates = grid world coordinates; a single
 * slice at z = 0 cuts all six spheres through their centres).
 *
 * @example
 * ```ts
 * import { centredGrid, nemaIecPhantom } from "@petrel/petrel";
 * const grid = centredGrid([128, 128, 40], [2, 2, 2]);
 * const nema = nemaIecPhantom(grid, { sphereToBackground: 4 });
 * const activity = nema.activity;
 * ```
 */
export function nemaIecPhantom(grid: ImageGrid, options: NemaOptions = {}): AnalyticPhantom {
  const bg = options.background ?? 1;
  const ratio = options.sphereToBackground ?? 4;
  const cold = new Set(options.coldSpheres ?? []);
  const materials = [
    "air",
    "background",
    "wall",
    "lung",
    ...NEMA_SPHERE_DIAMETERS_MM.map((d) => `sphere_${d}mm`),
  ];
  const fractions = rasterizeMaterials(grid, nemaMaterialAt, {
    materials: materials.length,
    supersample: options.supersample,
  });
  const act = [
    0,
    bg,
    0,
    0,
    ...NEMA_SPHERE_DIAMETERS_MM.map((_, n) => cold.has(n) ? 0 : ratio * bg),
  ];
  const M = NEMA_MU_PER_MM;
  const mu = [0, M.water, M.pmma, M.lung, ...NEMA_SPHERE_DIAMETERS_MM.map(() => M.water)];
  return {
    grid: imageGrid(grid),
    activity: combine(fractions, act),
    mu: combine(fractions, mu),
    materials,
    fractions,
  };
}

/** Options of {@linkcode derenzoPhantom}. */
export interface DerenzoOptions {
  /** Rod diameters of the six sectors in mm (default 4.8, 6.4, 7.9, 9.5, 11.1, 12.7). */
  rodDiametersMm?: readonly number[];
  /** Radius of the cylinder in mm (default 100). */
  radiusMm?: number;
  /** Half length along z in mm (default 50). */
  halfLengthMm?: number;
  /** Rod activity (default 1); the rest of the cylinder is cold water. */
  rodActivity?: number;
  /** Background activity in the water (default 0). */
  background?: number;
  /** Sub-samples per voxel and axis (default 4). */
  supersample?: number;
}

/**
 * Rod centres of a Derenzo phantom (2D, mm): six 60° sectors, each a triangular lattice of rods
 * of one diameter with centre spacing 2 × diameter, filling the sector inside the cylinder.
 *
 * @example
 * ```ts
 * import { derenzoRods } from "@petrel/petrel";
 * const rods = derenzoRods({ rodDiametersMm: [2, 2.5, 3, 3.5, 4, 5], radiusMm: 40 }); // small-animal
 * console.log(rods.length, rods[0]); // { x, y, r } in mm
 * ```
 */
export function derenzoRods(options: DerenzoOptions = {}): { x: number; y: number; r: number }[] {
  const ds = options.rodDiametersMm ?? [4.8, 6.4, 7.9, 9.5, 11.1, 12.7];
  if (ds.length !== 6) throw new RangeError(`Derenzo needs 6 rod diameters, got ${ds.length}`);
  const R = options.radiusMm ?? 100;
  const rods: { x: number; y: number; r: number }[] = [];
  for (let s = 0; s < 6; s++) {
    const d = ds[s];
    const pitch = 2 * d;
    const a = (s * Math.PI) / 3 + Math.PI / 6; // sector axis
    const ux = Math.cos(a), uy = Math.sin(a);
    const vx = -uy, vy = ux;
    // Rows perpendicular to the sector axis (row n holds n + 1 rods), apex one pitch out.
    for (let row = 0; pitch + row * pitch * Math.sqrt(3) / 2 < R; row++) {
      const dist = pitch + row * pitch * Math.sqrt(3) / 2;
      for (let c = 0; c <= row; c++) {
        const t = (c - row / 2) * pitch;
        const x = ux * dist + vx * t, y = uy * dist + vy * t;
        // Inside the sector (with a margin) and the cylinder.
        const ang = Math.abs(Math.atan2(t, dist));
        const margin = Math.asin(Math.min(1, (d / 2 + 1) / Math.hypot(x, y)));
        if (ang + margin > Math.PI / 6) continue;
        if (Math.hypot(x, y) + d / 2 > R - 5) continue;
        rods.push({ x, y, r: d / 2 });
      }
    }
  }
  return rods;
}

/**
 * A Derenzo hot-rod phantom on `grid` (cylinder axis = z).
 *
 * @example
 * ```ts
 * import { centredGrid, derenzoPhantom } from "@petrel/petrel";
 * const rods = derenzoPhantom(centredGrid([128, 128, 1], [1, 1, 2]));
 * ```
 */
export function derenzoPhantom(grid: ImageGrid, options: DerenzoOptions = {}): AnalyticPhantom {
  const R = options.radiusMm ?? 100;
  const hl = options.halfLengthMm ?? 50;
  const rods = derenzoRods(options);
  const at = (x: number, y: number, z: number): number => {
    if (Math.abs(z) > hl + 3 || x * x + y * y > (R + 3) ** 2) return 0;
    if (Math.abs(z) > hl || x * x + y * y > R * R) return 2;
    for (const rod of rods) {
      const dx = x - rod.x, dy = y - rod.y;
      if (dx * dx + dy * dy <= rod.r * rod.r) return 3;
    }
    return 1;
  };
  const materials = ["air", "water", "wall", "rod"];
  const fractions = rasterizeMaterials(grid, at, {
    materials: 4,
    supersample: options.supersample,
  });
  const act = [0, options.background ?? 0, 0, options.rodActivity ?? 1];
  const M = NEMA_MU_PER_MM;
  return {
    grid: imageGrid(grid),
    activity: combine(fractions, act),
    mu: combine(fractions, [0, M.water, M.pmma, M.water]),
    materials,
    fractions,
  };
}
