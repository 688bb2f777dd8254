/**
 * Image grids in millimetres. Arrays are stored x-fastest (as NIfTI), and every shape in petrel
 * is listed fastest axis first: an image of `[nx, ny, nz]` has index `i + nx·(j + ny·k)`.
 *
 * @module
 */

import { z } from "zod";

const positiveInt = z.number().int().positive();
const positiveMm = z.number().positive().finite();

/**
 * zod schema of an {@linkcode ImageGrid}.
 *
 * @example
 * ```ts
 * import { ImageGridSchema } from "@petrel/petrel";
 * const grid = ImageGridSchema.parse(JSON.parse('{"shape":[64,64,1],"voxelSizeMm":[4,4,4],"originMm":[-126,-126,0]}'));
 * ```
 */
export const ImageGridSchema = z.object({
  /** Voxels along x, y, z. */
  shape: z.tuple([positiveInt, positiveInt, positiveInt]),
  /** Voxel size along x, y, z in mm. */
  voxelSizeMm: z.tuple([positiveMm, positiveMm, positiveMm]),
  /** Centre of voxel (0, 0, 0) in mm (scanner coordinates). */
  originMm: z.tuple([z.number().finite(), z.number().finite(), z.number().finite()]),
});

/**
 * A regular image grid: shape, voxel size (mm) and the centre of the first voxel (mm).
 *
 * @example
 * ```ts
 * import type { ImageGrid } from "@petrel/petrel";
 * // 128 × 128 × 64 voxels of 2.086 × 2.086 × 2.031 mm, voxel 0 centred at (−132.461, −132.461, −63.977) mm
 * const grid: ImageGrid = {
 *   shape: [128, 128, 64],
 *   voxelSizeMm: [2.086, 2.086, 2.031],
 *   originMm: [-132.461, -132.461, -63.9765],
 * };
 * ```
 */
export type ImageGrid = z.infer<typeof ImageGridSchema>;

/**
 * Validates an image grid, throwing an error that names the offending field.
 *
 * @example
 * ```ts
 * import { imageGrid } from "@petrel/petrel";
 * // 64 × 64 × 1 voxels of 4 mm, voxel 0 centred at (−126, −126, 0) mm
 * const grid = imageGrid({ shape: [64, 64, 1], voxelSizeMm: [4, 4, 4], originMm: [-126, -126, 0] });
 * ```
 */
export function imageGrid(grid: ImageGrid): ImageGrid {
  const r = ImageGridSchema.safeParse(grid);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new TypeError(
      `invalid image grid: ${issue.path.join(".") || "grid"}: ${issue.message} ` +
        `(expected {shape: [nx, ny, nz] positive integers, voxelSizeMm: [mm, mm, mm] > 0, originMm: [mm, mm, mm]})`,
    );
  }
  return r.data;
}

/**
 * A grid of `shape` voxels of `voxelSizeMm`, centred on the scanner's origin (the usual
 * reconstruction grid).
 *
 * @example
 * ```ts
 * const grid = centredGrid([128, 128, 3], [2.086, 2.086, 2.086]); // centred on the scanner axis
 * voxelCount(grid); // 49152
 * ```
 */
export function centredGrid(
  shape: readonly [number, number, number],
  voxelSizeMm: readonly [number, number, number],
): ImageGrid {
  return imageGrid({
    shape: [...shape] as [number, number, number],
    voxelSizeMm: [...voxelSizeMm] as [number, number, number],
    originMm: [0, 1, 2].map((a) => -((shape[a] - 1) / 2) * voxelSizeMm[a]) as [
      number,
      number,
      number,
    ],
  });
}

/**
 * Number of voxels of a grid.
 *
 * @example
 * ```ts
 * import { centredGrid, voxelCount } from "@petrel/petrel";
 * const image = new Float32Array(voxelCount(centredGrid([128, 128, 64], [2.086, 2.086, 2.031])));
 * ```
 */
export function voxelCount(grid: ImageGrid): number {
  return grid.shape[0] * grid.shape[1] * grid.shape[2];
}

/**
 * Extent of the grid along each axis in mm (outer faces to outer faces).
 *
 * @example
 * ```ts
 * import { centredGrid, gridExtentMm } from "@petrel/petrel";
 * gridExtentMm(centredGrid([128, 128, 1], [2, 2, 2])); // [256, 256, 2] mm
 * ```
 */
export function gridExtentMm(grid: ImageGrid): [number, number, number] {
  return [0, 1, 2].map((a) => grid.shape[a] * grid.voxelSizeMm[a]) as [number, number, number];
}

/**
 * Centre of voxel (i, j, k) in mm.
 *
 * @example
 * ```ts
 * import { centredGrid, voxelCentreMm } from "@petrel/petrel";
 * const grid = centredGrid([128, 128, 1], [2, 2, 2]);
 * voxelCentreMm(grid, 64, 64, 0); // [1, 1, 0] mm: the voxel just past the scanner axis
 * ```
 */
export function voxelCentreMm(grid: ImageGrid, i: number, j: number, k: number): [
  number,
  number,
  number,
] {
  return [
    grid.originMm[0] + i * grid.voxelSizeMm[0],
    grid.originMm[1] + j * grid.voxelSizeMm[1],
    grid.originMm[2] + k * grid.voxelSizeMm[2],
  ];
}

/**
 * True when two grids describe the same voxels (within 1e-6 mm).
 *
 * @example
 * ```ts
 * import { centredGrid, readNifti, sameGrid } from "@petrel/petrel";
 * const mu = await readNifti("mu.nii");
 * if (!sameGrid(mu.grid, centredGrid([128, 128, 1], [2.086, 2.086, 2.086]))) {
 *   throw new Error("mu.nii is not on the reconstruction grid");
 * }
 * ```
 */
export function sameGrid(a: ImageGrid, b: ImageGrid): boolean {
  const close = (x: number, y: number) => Math.abs(x - y) <= 1e-6 * Math.max(1, Math.abs(x));
  return [0, 1, 2].every((i) =>
    a.shape[i] === b.shape[i] && close(a.voxelSizeMm[i], b.voxelSizeMm[i]) &&
    close(a.originMm[i], b.originMm[i])
  );
}
