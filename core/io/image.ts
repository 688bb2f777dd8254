/**
 * Format-agnostic image reading and writing, chosen by file name: `.nii`/`.nii.gz` (NIfTI-1),
 * `.hv` (STIR Interfile) or `.npy` (NumPy; no geometry inside, so a grid must be given on read
 * or a 1 mm centred grid is assumed). For the CLI and scripts that take "an image file".
 *
 * @module
 */

import { centredGrid, type ImageGrid, imageGrid } from "../geometry/grid.ts";
import type { RingScanner } from "../geometry/scanner.ts";
import { type FiniteOptions, FormatError } from "./files.ts";
import { readInterfileImage, writeInterfileImage } from "./interfile.ts";
import { readNifti, writeNifti } from "./nifti.ts";
import { readNpy, writeNpy } from "./npy.ts";

/** A 3-D image on a grid. */
export interface GridImage {
  /** Voxels, x fastest. */
  data: Float32Array;
  /** Its grid. */
  grid: ImageGrid;
}

/** Options of {@linkcode readImage} / {@linkcode writeImage}. */
export interface ImageFileOptions extends FiniteOptions {
  /** Grid for `.npy` files (their shape must match); default: 1 mm voxels, centred. */
  grid?: ImageGrid;
  /** Scanner for Interfile z offsets (see `interfile.ts`). */
  scanner?: RingScanner;
}

/**
 * The image formats {@linkcode readImage} knows, by file name.
 *
 * @example
 * ```ts
 * import { imageFormatOf } from "@petrel/petrel";
 * imageFormatOf("out/recon.nii.gz"); // "nifti"
 * imageFormatOf("stir/recon.hv"); // "interfile"
 * ```
 */
export function imageFormatOf(path: string): "nifti" | "interfile" | "npy" {
  if (/\.nii(\.gz)?$/.test(path)) return "nifti";
  if (path.endsWith(".hv")) return "interfile";
  if (path.endsWith(".npy")) return "npy";
  throw new RangeError(
    `${path}: unknown image format; expected a name ending in .nii, .nii.gz, .hv or .npy`,
  );
}

/**
 * Reads a 3-D image from NIfTI, Interfile or `.npy` (chosen by the file name). NaN/Inf voxels
 * are refused unless `options.allowNonFinite`.
 *
 * @example
 * ```ts
 * const mu = await readImage("in/mu.nii.gz");
 * ```
 */
export async function readImage(path: string, options: ImageFileOptions = {}): Promise<GridImage> {
  const format = imageFormatOf(path);
  if (format === "nifti") {
    const im = await readNifti(path, options);
    if (im.shape.length > 3 && im.shape.slice(3).some((n) => n > 1)) {
      throw new FormatError(
        `${path}: shape ${JSON.stringify(im.shape)} is not a single 3-D volume`,
      );
    }
    return { data: im.data, grid: im.grid };
  }
  if (format === "interfile") {
    const im = await readInterfileImage(path, options);
    return { data: im.data, grid: im.grid };
  }
  const a = await readNpy(path, options);
  const shape = [...a.shape];
  while (shape.length < 3) shape.push(1);
  if (shape.length > 3) {
    throw new FormatError(`${path}: shape ${JSON.stringify(a.shape)} is not a 3-D image`);
  }
  const grid = options.grid
    ? imageGrid(options.grid)
    : centredGrid(shape as [number, number, number], [1, 1, 1]);
  if (grid.shape.some((n, i) => n !== shape[i])) {
    throw new FormatError(
      `${path}: array shape ${JSON.stringify(shape)} (fastest first) does not match the grid ` +
        `${JSON.stringify(grid.shape)}`,
    );
  }
  return { data: a.data, grid };
}

/**
 * Writes a 3-D image as NIfTI, Interfile or `.npy` (chosen by the file name), atomically.
 *
 * @example
 * ```ts
 * import { centredGrid, writeImage } from "@petrel/petrel";
 * const grid = centredGrid([128, 128, 64], [2.086, 2.086, 2.031]);
 * const image = new Float32Array(128 * 128 * 64);
 * await writeImage("out/x.nii", { data: image, grid }); // atomic: a temporary file, then a rename
 * ```
 */
export async function writeImage(
  path: string,
  image: { data: ArrayLike<number>; grid: ImageGrid },
  options: ImageFileOptions = {},
): Promise<void> {
  const format = imageFormatOf(path);
  if (format === "nifti") return await writeNifti(path, image);
  if (format === "interfile") {
    return await writeInterfileImage(path, image, { scanner: options.scanner });
  }
  const g = imageGrid(image.grid);
  await writeNpy(path, { data: image.data, shape: g.shape });
}
