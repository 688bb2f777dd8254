/**
 * Voxel ↔ mm affines and resampling between grids: what puts an MR acquired on its own grid onto
 * the PET grid. An affine is a 4×4 row-major matrix mapping voxel indices (i, j, k, 1) to mm
 * (x, y, z, 1), as in NIfTI; an {@linkcode ImageGrid} is the axis-aligned special case.
 *
 * @module
 */

import type { ImageGrid } from "./grid.ts";

/**
 * A 4×4 affine, row-major: `affine[r][c]`, mapping voxel (i, j, k, 1) to mm (x, y, z, 1).
 *
 * @example
 * ```ts
 * import { applyAffine, type Affine } from "@petrel/petrel";
 * // 1 mm MR voxels, x flipped (radiological order), voxel 0 at (90, −126, −72) mm
 * const mr: Affine = [
 *   [-1, 0, 0, 90],
 *   [0, 1, 0, -126],
 *   [0, 0, 1, -72],
 *   [0, 0, 0, 1],
 * ];
 * applyAffine(mr, [90, 126, 72]); // [0, 0, 0] mm
 * ```
 */
export type Affine = number[][];

/**
 * The affine of an {@linkcode ImageGrid}: voxel sizes on the diagonal, translation = centre of
 * voxel 0.
 *
 * @example
 * ```ts
 * import { affineOfGrid, centredGrid } from "@petrel/petrel";
 * const a = affineOfGrid(centredGrid([4, 4, 1], [2, 2, 2])); // a[0] = [2, 0, 0, -3]
 * ```
 */
export function affineOfGrid(grid: ImageGrid): Affine {
  const v = grid.voxelSizeMm;
  const o = grid.originMm;
  return [[v[0], 0, 0, o[0]], [0, v[1], 0, o[1]], [0, 0, v[2], o[2]], [0, 0, 0, 1]];
}

/**
 * Inverse of an affine (mm → voxel). Throws when the 3×3 part is singular.
 *
 * @example
 * ```ts
 * import { affineOfGrid, applyAffine, centredGrid, invertAffine } from "@petrel/petrel";
 * const grid = centredGrid([128, 128, 1], [2, 2, 2]);
 * const toVoxel = invertAffine(affineOfGrid(grid));
 * const [i, j, k] = applyAffine(toVoxel, [0, 0, 0]); // [63.5, 63.5, 0]: the scanner axis
 * ```
 */
export function invertAffine(a: Affine): Affine {
  const [r0, r1, r2] = a;
  const m = [[r0[0], r0[1], r0[2]], [r1[0], r1[1], r1[2]], [r2[0], r2[1], r2[2]]];
  const c00 = m[1][1] * m[2][2] - m[1][2] * m[2][1];
  const c01 = m[1][2] * m[2][0] - m[1][0] * m[2][2];
  const c02 = m[1][0] * m[2][1] - m[1][1] * m[2][0];
  const det = m[0][0] * c00 + m[0][1] * c01 + m[0][2] * c02;
  const scale = Math.max(...m.flat().map(Math.abs));
  if (!(Math.abs(det) > 1e-12 * scale * scale * scale)) {
    throw new RangeError(`affine is singular (determinant ${det}); cannot map mm to voxels`);
  }
  const inv = [
    [c00, m[0][2] * m[2][1] - m[0][1] * m[2][2], m[0][1] * m[1][2] - m[0][2] * m[1][1]],
    [c01, m[0][0] * m[2][2] - m[0][2] * m[2][0], m[0][2] * m[1][0] - m[0][0] * m[1][2]],
    [c02, m[0][1] * m[2][0] - m[0][0] * m[2][1], m[0][0] * m[1][1] - m[0][1] * m[1][0]],
  ].map((row) => row.map((v) => v / det));
  const t = [r0[3], r1[3], r2[3]];
  const out = inv.map((row) => [...row, -(row[0] * t[0] + row[1] * t[1] + row[2] * t[2])]);
  out.push([0, 0, 0, 1]);
  return out;
}

/**
 * `A · B` of two affines (apply B first).
 *
 * @example
 * ```ts
 * import { affineOfGrid, centredGrid, composeAffines, invertAffine } from "@petrel/petrel";
 * const pet = affineOfGrid(centredGrid([128, 128, 64], [2.086, 2.086, 2.031]));
 * const mr = affineOfGrid(centredGrid([256, 256, 176], [1, 1, 1]));
 * // PET voxel → mm → MR voxel
 * const petToMrVoxel = composeAffines(invertAffine(mr), pet);
 * ```
 */
export function composeAffines(a: Affine, b: Affine): Affine {
  return a.map((row) =>
    [0, 1, 2, 3].map((c) =>
      row[0] * b[0][c] + row[1] * b[1][c] + row[2] * b[2][c] + row[3] * b[3][c]
    )
  );
}

/**
 * Applies an affine to a point (x, y, z).
 *
 * @example
 * ```ts
 * import { affineOfGrid, applyAffine, centredGrid } from "@petrel/petrel";
 * const a = affineOfGrid(centredGrid([128, 128, 1], [2, 2, 2]));
 * const [x, y, z] = applyAffine(a, [0, 0, 0]); // [-127, -127, 0] mm, the centre of voxel 0
 * ```
 */
export function applyAffine(a: Affine, p: readonly [number, number, number]): [
  number,
  number,
  number,
] {
  return [0, 1, 2].map((r) => a[r][0] * p[0] + a[r][1] * p[1] + a[r][2] * p[2] + a[r][3]) as [
    number,
    number,
    number,
  ];
}

/** A volume with its voxel → mm affine (e.g. a NIfTI image as read). */
export interface AffineVolume {
  /** Voxels, x fastest. */
  data: ArrayLike<number>;
  /** `[nx, ny, nz]`. */
  shape: readonly [number, number, number];
  /** Voxel → mm. */
  affine: Affine;
}

/** Result of {@linkcode resampleToGrid}. */
export interface Resampled {
  /** Values on the target grid, x fastest (`fill` outside the source). */
  data: Float32Array;
  /** Fraction of target voxel centres that fall inside the source volume (0–1). */
  coverage: number;
}

/**
 * Trilinear resampling of `source` at the voxel centres of `target` (both placed in mm by their
 * affines). A target voxel whose centre lies inside the source's outer voxel centres is
 * interpolated from its 8 neighbours; within half a voxel outside them the nearest edge value
 * is used (the source voxels cover that half voxel); further out the value is `fill` (default
 * 0) and the voxel does not count towards `coverage`.
 *
 * @example
 * ```ts
 * import { MMR_VOXEL_MM, mmrLike3d, readNifti, resampleToGrid } from "@petrel/petrel";
 * const petGrid = mmrLike3d({ rings: 64 }).imageGrid(128, MMR_VOXEL_MM);
 * const mr = await readNifti("mr.nii");
 * const { data, coverage } = resampleToGrid(
 *   { data: mr.data, shape: mr.grid.shape, affine: mr.affine },
 *   petGrid,
 * );
 * ```
 */
export function resampleToGrid(
  source: AffineVolume,
  target: ImageGrid,
  options: { fill?: number } = {},
): Resampled {
  const [sx, sy, sz] = source.shape;
  if (source.data.length !== sx * sy * sz) {
    throw new RangeError(
      `resampleToGrid: source has ${source.data.length} values, shape [${source.shape}] needs ${
        sx * sy * sz
      }`,
    );
  }
  const fill = options.fill ?? 0;
  // target voxel → source voxel
  const m = composeAffines(invertAffine(source.affine), affineOfGrid(target));
  const [nx, ny, nz] = target.shape;
  const out = new Float32Array(nx * ny * nz);
  const src = source.data;
  let inside = 0;
  const clampAxis = (u: number, n: number): number | null => {
    if (u < -0.5 || u > n - 0.5) return null;
    return Math.min(Math.max(u, 0), n - 1);
  };
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const u0 = clampAxis(m[0][0] * i + m[0][1] * j + m[0][2] * k + m[0][3], sx);
        const u1 = clampAxis(m[1][0] * i + m[1][1] * j + m[1][2] * k + m[1][3], sy);
        const u2 = clampAxis(m[2][0] * i + m[2][1] * j + m[2][2] * k + m[2][3], sz);
        const t = i + nx * (j + ny * k);
        if (u0 === null || u1 === null || u2 === null) {
          out[t] = fill;
          continue;
        }
        inside++;
        const i0 = Math.min(Math.floor(u0), sx - 1), i1 = Math.min(i0 + 1, sx - 1);
        const j0 = Math.min(Math.floor(u1), sy - 1), j1 = Math.min(j0 + 1, sy - 1);
        const k0 = Math.min(Math.floor(u2), sz - 1), k1 = Math.min(k0 + 1, sz - 1);
        const fx = u0 - i0, fy = u1 - j0, fz = u2 - k0;
        const at = (a: number, b: number, c: number) => src[a + sx * (b + sy * c)];
        const c00 = at(i0, j0, k0) * (1 - fx) + at(i1, j0, k0) * fx;
        const c10 = at(i0, j1, k0) * (1 - fx) + at(i1, j1, k0) * fx;
        const c01 = at(i0, j0, k1) * (1 - fx) + at(i1, j0, k1) * fx;
        const c11 = at(i0, j1, k1) * (1 - fx) + at(i1, j1, k1) * fx;
        out[t] = (c00 * (1 - fy) + c10 * fy) * (1 - fz) + (c01 * (1 - fy) + c11 * fy) * fz;
      }
    }
  }
  return { data: out, coverage: out.length ? inside / out.length : 0 };
}

/**
 * True when two affines agree to `tolMm` on every entry of the 3×4 part (mm).
 *
 * @example
 * ```ts
 * import { affineOfGrid, centredGrid, readNifti, sameAffine } from "@petrel/petrel";
 * const mu = await readNifti("mu.nii");
 * if (!sameAffine(mu.affine, affineOfGrid(centredGrid([128, 128, 64], [2.086, 2.086, 2.031])))) {
 *   console.warn("mu map is not on the reconstruction grid; resample it first");
 * }
 * ```
 */
export function sameAffine(a: Affine, b: Affine, tolMm = 1e-4): boolean {
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 4; c++) if (Math.abs(a[r][c] - b[r][c]) > tolMm) return false;
  }
  return true;
}
