/**
 * Anatomical label volumes (BrainWeb convention: one uint8 label per voxel, labels 0–11) and
 * their validation.
 *
 * @module
 */

import { type ImageGrid, imageGrid } from "../geometry/grid.ts";

/**
 * BrainWeb tissue labels (as in `../shared/data/brainweb/README.md`).
 *
 * @example
 * ```ts
 * import { brainPhantomLabels, Label } from "@petrel/petrel";
 * const { volume } = brainPhantomLabels({ dims: 2 });
 * const greyMatter = volume.labels.map((l) => (l === Label.GREY_MATTER ? 1 : 0));
 * ```
 */
export const Label = {
  BACKGROUND: 0,
  CSF: 1,
  GREY_MATTER: 2,
  WHITE_MATTER: 3,
  FAT: 4,
  MUSCLE: 5,
  MUSCLE_SKIN: 6,
  SKULL: 7,
  VESSELS: 8,
  AROUND_FAT: 9,
  DURA: 10,
  MARROW: 11,
} as const;

/**
 * Number of tissue labels (0 … 11).
 *
 * @example
 * ```ts
 * import { brainPhantomLabels, LABEL_COUNT, LABEL_NAMES } from "@petrel/petrel";
 * const { volume } = brainPhantomLabels({ dims: 2 });
 * const histogram = new Array<number>(LABEL_COUNT).fill(0);
 * for (const l of volume.labels) histogram[l]++;
 * histogram.forEach((n, l) => console.log(LABEL_NAMES[l], n));
 * ```
 */
export const LABEL_COUNT = 12;

/**
 * Names of the labels, indexed by label value.
 *
 * @example
 * ```ts
 * import { LABEL_NAMES, Label } from "@petrel/petrel";
 * LABEL_NAMES[Label.WHITE_MATTER]; // "white_matter"
 * ```
 */
export const LABEL_NAMES: readonly string[] = [
  "background",
  "csf",
  "grey_matter",
  "white_matter",
  "fat",
  "muscle",
  "muscle_skin",
  "skull",
  "vessels",
  "around_fat",
  "dura",
  "marrow",
];

/**
 * Shape of the BrainWeb crisp models (0.5 mm voxels).
 *
 * @example
 * ```ts
 * import { BRAINWEB_SHAPE, readLabelVolume } from "@petrel/petrel";
 * const vol = await readLabelVolume("data/brainweb/subject04_crisp.nii.gz", { expectShape: BRAINWEB_SHAPE });
 * ```
 */
export const BRAINWEB_SHAPE: readonly [number, number, number] = [362, 434, 362];

/** A label volume: one uint8 label per voxel on an image grid (x fastest). */
export interface LabelVolume {
  /** Labels, index `i + nx·(j + ny·k)`. */
  readonly labels: Uint8Array;
  /** The grid of the labels (world mm). */
  readonly grid: ImageGrid;
}

/** Options of {@linkcode labelVolume}. */
export interface LabelVolumeOptions {
  /** Required shape (e.g. {@linkcode BRAINWEB_SHAPE}); any shape when omitted. */
  expectShape?: readonly [number, number, number];
  /** Largest allowed label (default 11). */
  maxLabel?: number;
}

/**
 * Validates a label volume: the data must be a `Uint8Array` holding exactly one label per voxel of
 * `grid`, every label must be in 0 … `maxLabel`, and the shape must match `expectShape` when given.
 * Throws an error naming what was wrong and what was expected.
 *
 * @example
 * ```ts
 * import { centredGrid, Label, labelVolume } from "@petrel/petrel";
 * // a 2-D toy head: a white-matter disc of 60 mm in grey matter, 0.5 mm voxels
 * const grid = centredGrid([400, 400, 1], [0.5, 0.5, 2]);
 * const labels = Uint8Array.from({ length: 400 * 400 }, (_, i) => {
 *   const r = Math.hypot((i % 400) - 199.5, Math.floor(i / 400) - 199.5) * 0.5;
 *   return r < 60 ? Label.WHITE_MATTER : r < 70 ? Label.GREY_MATTER : Label.BACKGROUND;
 * });
 * const vol = labelVolume(labels, grid);
 * ```
 */
export function labelVolume(
  data: ArrayBufferView | ArrayLike<number>,
  grid: ImageGrid,
  options: LabelVolumeOptions = {},
): LabelVolume {
  const g = imageGrid(grid);
  if (!(data instanceof Uint8Array)) {
    const kind = (data as { constructor?: { name?: string } })?.constructor?.name ?? typeof data;
    throw new TypeError(
      `label volume has dtype ${kind}; expected uint8 labels (Uint8Array, one label per voxel)`,
    );
  }
  const [nx, ny, nz] = g.shape;
  if (options.expectShape) {
    const e = options.expectShape;
    if (nx !== e[0] || ny !== e[1] || nz !== e[2]) {
      throw new RangeError(
        `label volume has shape [${nx}, ${ny}, ${nz}]; expected [${e.join(", ")}]`,
      );
    }
  }
  const n = nx * ny * nz;
  if (data.length !== n) {
    throw new RangeError(
      `label volume holds ${data.length} voxels; expected ${n} for shape [${nx}, ${ny}, ${nz}]`,
    );
  }
  const maxLabel = options.maxLabel ?? LABEL_COUNT - 1;
  let max = 0;
  for (let i = 0; i < n; i++) if (data[i] > max) max = data[i];
  if (max > maxLabel) {
    let at = 0;
    while (data[at] <= maxLabel) at++;
    throw new RangeError(
      `label volume holds label ${
        data[at]
      } at voxel ${at} (max ${max}); expected labels 0 … ${maxLabel}`,
    );
  }
  return { labels: data, grid: g };
}

/** Bounding box of the voxels whose label is in `labels`, in voxel indices (inclusive). */
export interface VoxelBox {
  min: [number, number, number];
  max: [number, number, number];
  /** Number of voxels inside the label set. */
  count: number;
}

/**
 * Bounding box (voxel indices, inclusive) of the voxels carrying one of `labels`. Throws when no
 * voxel does.
 *
 * @example
 * ```ts
 * import { brainPhantomLabels, Label, labelBoundingBox } from "@petrel/petrel";
 * const { volume } = brainPhantomLabels({ dims: 2 });
 * const { min, max, count } = labelBoundingBox(volume, [Label.GREY_MATTER, Label.WHITE_MATTER]);
 * ```
 */
export function labelBoundingBox(vol: LabelVolume, labels: readonly number[]): VoxelBox {
  const [nx, ny, nz] = vol.grid.shape;
  const want = new Uint8Array(256);
  for (const l of labels) want[l] = 1;
  const min: [number, number, number] = [nx, ny, nz];
  const max: [number, number, number] = [-1, -1, -1];
  let count = 0;
  const d = vol.labels;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      const row = (k * ny + j) * nx;
      let lo = -1;
      let hi = -1;
      for (let i = 0; i < nx; i++) {
        if (want[d[row + i]]) {
          if (lo < 0) lo = i;
          hi = i;
          count++;
        }
      }
      if (lo >= 0) {
        if (lo < min[0]) min[0] = lo;
        if (hi > max[0]) max[0] = hi;
        if (j < min[1]) min[1] = j;
        if (j > max[1]) max[1] = j;
        if (k < min[2]) min[2] = k;
        if (k > max[2]) max[2] = k;
      }
    }
  }
  if (count === 0) {
    throw new RangeError(
      `label volume holds none of the labels [${labels.join(", ")}]; expected a head with brain`,
    );
  }
  return { min, max, count };
}

/** The parts of a decoded NIfTI image (e.g. core/io's `NiftiImage`) a label volume needs. */
export interface LabelImageLike {
  /** Voxel values, x fastest. */
  data: ArrayLike<number>;
  /** Full shape, fastest first. */
  shape: readonly number[];
  /** Grid of the first three axes. */
  grid: ImageGrid;
  /** True when the affine has no rotation or flip (the grid is exact). */
  axisAligned?: boolean;
  /** Stored voxel type, e.g. "uint8". */
  header?: { dtype?: string };
}

/**
 * A label volume from a decoded image (NIfTI): the stored type must be uint8, the image 3-D and
 * axis-aligned, every value an integer label in 0 … `maxLabel`, and the shape `expectShape` when
 * given. `what` names the source in errors (e.g. the file path).
 *
 * @example
 * ```ts
 * import { labelVolumeFromImage, readNifti } from "@petrel/petrel";
 * const img = await readNifti("data/labels.nii.gz");
 * const vol = labelVolumeFromImage(img, { what: "data/labels.nii.gz" }); // uint8, 3-D, axis-aligned
 * ```
 */
export function labelVolumeFromImage(
  image: LabelImageLike,
  options: LabelVolumeOptions & { what?: string } = {},
): LabelVolume {
  const what = options.what ?? "label volume";
  const dtype = image.header?.dtype;
  if (dtype !== undefined && dtype !== "uint8") {
    throw new TypeError(`${what}: voxels are stored as ${dtype}; expected uint8 labels`);
  }
  const extra = image.shape.slice(3).filter((n) => n !== 1);
  if (image.shape.length < 3 || extra.length > 0) {
    throw new RangeError(
      `${what}: shape [${image.shape.join(", ")}]; expected a 3-D volume [nx, ny, nz]`,
    );
  }
  if (image.axisAligned === false) {
    throw new RangeError(
      `${what}: the voxel → mm affine is rotated or flipped; expected an axis-aligned label volume`,
    );
  }
  const n = image.data.length;
  const labels = new Uint8Array(n);
  const maxLabel = options.maxLabel ?? LABEL_COUNT - 1;
  for (let i = 0; i < n; i++) {
    const v = image.data[i];
    if (!(v >= 0 && v <= maxLabel) || v !== Math.floor(v)) {
      throw new RangeError(
        `${what}: voxel ${i} holds ${v}; expected integer labels 0 … ${maxLabel}`,
      );
    }
    labels[i] = v;
  }
  try {
    return labelVolume(labels, image.grid, options);
  } catch (e) {
    if (e instanceof RangeError) throw new RangeError(`${what}: ${e.message}`);
    throw e;
  }
}
