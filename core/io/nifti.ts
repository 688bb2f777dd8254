/**
 * NIfTI-1 images (`.nii` and `.nii.gz`, single file), read and written without dependencies.
 *
 * Reading accepts uint8, int8, int16, uint16, int32, uint32, float32 and float64 voxels in either
 * byte order, applies `scl_slope`/`scl_inter`, and returns the voxels as a `Float32Array` x-fastest
 * (NIfTI's own order, which is petrel's), the 4×4 voxel → mm affine (sform if set, else qform,
 * else the voxel sizes) and an {@linkcode ImageGrid}. Writing stores float32 voxels by default
 * (optionally an integer type for label volumes) with both sform and qform set from the grid
 * (origin = centre of voxel 0, voxel sizes on the diagonal, code 1 = scanner coordinates).
 * Gzip is detected from the content on read and chosen from a `.gz` suffix on write.
 *
 * @module
 */

import { type ImageGrid, imageGrid } from "../geometry/grid.ts";
import {
  checkFinite,
  checkShape,
  type FiniteOptions,
  FormatError,
  gunzipPrefix,
  gzip,
  isGzip,
  maxInflatedSize,
  maybeGunzip,
  readBytes,
  shapeSize,
  writeFileAtomic,
} from "./files.ts";

import type { Affine } from "../geometry/affine.ts";
/** A 4×4 affine, row-major (defined in `core/geometry/affine.ts`). */
export type { Affine };

/** Voxel types petrel can write to NIfTI. */
export type NiftiWriteDtype = "float32" | "float64" | "uint8" | "int16" | "int32";

/** The header fields petrel uses (a subset of NIfTI-1's 348 bytes). */
export interface NiftiHeader {
  /** `dim[1..dim[0]]`: sizes, fastest first. */
  dims: number[];
  /** `pixdim[1..dim[0]]` (mm for the spatial axes). */
  pixdim: number[];
  /** qfac (`pixdim[0]`), ±1. */
  qfac: number;
  /** NIfTI datatype code (2 uint8, 4 int16, 8 int32, 16 float32, 64 float64, …). */
  datatype: number;
  /** Name of the stored voxel type, e.g. "uint8". */
  dtype: string;
  /** Bits per voxel. */
  bitpix: number;
  /** Byte offset of the voxels in the (uncompressed) file. */
  voxOffset: number;
  /** Value scaling slope (0 or NaN = none). */
  sclSlope: number;
  /** Value scaling intercept. */
  sclInter: number;
  /** qform code (0 = unset, 1 = scanner, 2 = aligned, …). */
  qformCode: number;
  /** sform code (0 = unset, 1 = scanner, 2 = aligned, …). */
  sformCode: number;
  /** qform quaternion (b, c, d). */
  quatern: [number, number, number];
  /** qform offsets (mm). */
  qoffset: [number, number, number];
  /** sform rows x, y, z (4 numbers each). */
  srow: [number[], number[], number[]];
  /** Units code (2 = mm, 8 = s). */
  xyztUnits: number;
  /** Free-text description (`descrip`). */
  descrip: string;
  /** `intent_name`. */
  intentName: string;
  /** "little" or "big". */
  byteOrder: "little" | "big";
}

/** What {@linkcode readNifti} returns. */
export interface NiftiImage {
  /** Voxels (scaled by scl_slope/inter), x fastest. */
  data: Float32Array;
  /** Full shape, fastest first (3 entries for a volume; more for 4-D+ files). */
  shape: number[];
  /**
   * Grid of the first three axes. Exact when the affine is diagonal with positive voxel sizes
   * (`axisAligned`); otherwise the voxel sizes are the affine's column norms and the origin is the
   * mm position of voxel 0, and `affine` is the authority.
   */
  grid: ImageGrid;
  /** Voxel → mm affine (sform, else qform, else scaling only). */
  affine: Affine;
  /** Which transform the affine came from. */
  affineSource: "sform" | "qform" | "pixdim";
  /** True when the affine is diagonal with positive entries (no rotation or flip). */
  axisAligned: boolean;
  /** The parsed header. */
  header: NiftiHeader;
}

/** An image to write: voxels x-fastest and their grid (a {@linkcode NiftiImage} also fits). */
export interface NiftiImageInput {
  /** Voxels, x fastest. */
  data: ArrayLike<number>;
  /** Grid of the first three axes (gives the affine unless `affine` is set). */
  grid: ImageGrid;
  /** Full shape when the data are not one 3-D volume (e.g. 4-D); must start with grid.shape. */
  shape?: readonly number[];
  /** Affine written to sform/qform instead of the grid's (e.g. an oblique one read before). */
  affine?: Affine;
}

/** Options of {@linkcode writeNifti} / {@linkcode encodeNifti}. */
export interface NiftiWriteOptions {
  /** Stored voxel type (default float32). Integer types check that values fit. */
  dtype?: NiftiWriteDtype;
  /** Up to 79 ASCII characters stored in `descrip`. */
  description?: string;
  /** gzip the output (default: when the path ends in `.gz`). */
  gzip?: boolean;
}

const DTYPES: Record<number, { name: string; bytes: number }> = {
  2: { name: "uint8", bytes: 1 },
  4: { name: "int16", bytes: 2 },
  8: { name: "int32", bytes: 4 },
  16: { name: "float32", bytes: 4 },
  64: { name: "float64", bytes: 8 },
  256: { name: "int8", bytes: 1 },
  512: { name: "uint16", bytes: 2 },
  768: { name: "uint32", bytes: 4 },
};

const WRITE_CODES: Record<NiftiWriteDtype, number> = {
  uint8: 2,
  int16: 4,
  int32: 8,
  float32: 16,
  float64: 64,
};

function readString(bytes: Uint8Array, offset: number, length: number): string {
  let end = offset;
  while (end < offset + length && bytes[end] !== 0) end++;
  return new TextDecoder("latin1").decode(bytes.subarray(offset, end));
}

/**
 * Parses the 348-byte NIfTI-1 header at the start of `bytes` (already gunzipped).
 * Throws a {@linkcode FormatError} for anything that is not a single-file NIfTI-1 image.
 *
 * @example
 * ```ts
 * import { parseNiftiHeader, readBytes } from "@petrel/petrel";
 * const h = parseNiftiHeader(await readBytes("in/mu.nii"), "in/mu.nii"); // uncompressed .nii
 * console.log(h.dims, h.pixdim, h.dtype); // e.g. [128, 128, 64] [2.086, 2.086, 2.031] "float32"
 * ```
 */
export function parseNiftiHeader(bytes: Uint8Array, what = "NIfTI"): NiftiHeader {
  if (bytes.length < 348) {
    throw new FormatError(
      `${what}: file holds ${bytes.length} bytes, fewer than the 348-byte NIfTI-1 header (truncated?)`,
    );
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let le = true;
  if (dv.getInt32(0, true) !== 348) {
    if (dv.getInt32(0, false) === 348) le = false;
    else if (dv.getInt32(0, true) === 540) {
      throw new FormatError(`${what}: this is a NIfTI-2 file; only NIfTI-1 is supported`);
    } else {
      throw new FormatError(
        `${what}: not a NIfTI-1 file (sizeof_hdr is ${dv.getInt32(0, true)}, expected 348)`,
      );
    }
  }
  const magic = readString(bytes, 344, 4);
  if (magic === "ni1") {
    throw new FormatError(
      `${what}: this is the header of a NIfTI pair (.hdr/.img); convert it to a single .nii file`,
    );
  }
  if (magic !== "n+1") {
    throw new FormatError(`${what}: bad NIfTI-1 magic "${magic}", expected "n+1" (corrupt file?)`);
  }
  const i16 = (o: number) => dv.getInt16(o, le);
  const f32 = (o: number) => dv.getFloat32(o, le);
  const ndim = i16(40);
  if (ndim < 1 || ndim > 7) {
    throw new FormatError(`${what}: dim[0] = ${ndim}, expected 1 … 7 (corrupt header?)`);
  }
  const dims: number[] = [];
  const pixdim: number[] = [];
  for (let d = 1; d <= ndim; d++) {
    const n = i16(40 + 2 * d);
    if (n < 1) throw new FormatError(`${what}: dim[${d}] = ${n}, expected a positive size`);
    dims.push(n);
    pixdim.push(f32(76 + 4 * d));
  }
  const datatype = i16(70);
  const dt = DTYPES[datatype];
  if (!dt) {
    throw new FormatError(
      `${what}: NIfTI datatype ${datatype} is not supported; expected one of ` +
        Object.entries(DTYPES).map(([c, t]) => `${t.name} (${c})`).join(", "),
    );
  }
  const q0 = f32(76);
  return {
    dims,
    pixdim,
    qfac: q0 < 0 ? -1 : 1,
    datatype,
    dtype: dt.name,
    bitpix: i16(72),
    voxOffset: f32(108),
    sclSlope: f32(112),
    sclInter: f32(116),
    qformCode: i16(252),
    sformCode: i16(254),
    quatern: [f32(256), f32(260), f32(264)],
    qoffset: [f32(268), f32(272), f32(276)],
    srow: [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => f32(280 + 16 * r + 4 * c))) as [
      number[],
      number[],
      number[],
    ],
    xyztUnits: bytes[123],
    descrip: readString(bytes, 148, 80),
    intentName: readString(bytes, 328, 16),
    byteOrder: le ? "little" : "big",
  };
}

function spatialPixdim(h: NiftiHeader): [number, number, number] {
  return [0, 1, 2].map((a) => {
    const p = h.pixdim[a];
    return a < h.dims.length && Number.isFinite(p) && p > 0 ? p : 1;
  }) as [number, number, number];
}

/**
 * The voxel → mm affine of a header: sform if `sform_code > 0`, else qform, else pixdim.
 *
 * @example
 * ```ts
 * import { niftiAffine, parseNiftiHeader, readBytes } from "@petrel/petrel";
 * const { affine, source } = niftiAffine(parseNiftiHeader(await readBytes("in/mr.nii")));
 * console.log(source); // "sform", "qform" or "pixdim"
 * ```
 */
export function niftiAffine(
  h: NiftiHeader,
): { affine: Affine; source: NiftiImage["affineSource"] } {
  if (h.sformCode > 0) {
    return { affine: [...h.srow.map((r) => [...r]), [0, 0, 0, 1]], source: "sform" };
  }
  const [dx, dy, dz] = spatialPixdim(h);
  if (h.qformCode > 0) {
    const [b, c, d] = h.quatern;
    const a = Math.sqrt(Math.max(0, 1 - (b * b + c * c + d * d)));
    const R = [
      [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
      [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
      [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
    ];
    const s = [dx, dy, h.qfac * dz];
    const affine = R.map((row, r) => [...row.map((v, c) => v * s[c]), h.qoffset[r]]);
    affine.push([0, 0, 0, 1]);
    return { affine, source: "qform" };
  }
  return {
    affine: [[dx, 0, 0, 0], [0, dy, 0, 0], [0, 0, dz, 0], [0, 0, 0, 1]],
    source: "pixdim",
  };
}

/**
 * The affine of an {@linkcode ImageGrid}: diagonal voxel sizes, translation = centre of voxel 0.
 *
 * @example
 * ```ts
 * import { centredGrid, gridAffine } from "@petrel/petrel";
 * gridAffine(centredGrid([4, 4, 1], [2, 2, 2]))[0]; // [2, 0, 0, -3]
 * ```
 */
export function gridAffine(grid: ImageGrid): Affine {
  const v = grid.voxelSizeMm;
  const o = grid.originMm;
  return [[v[0], 0, 0, o[0]], [0, v[1], 0, o[1]], [0, 0, v[2], o[2]], [0, 0, 0, 1]];
}

/**
 * The {@linkcode ImageGrid} of `shape` (first 3 axes, missing ones = 1) under `affine`, and
 * whether the affine is axis-aligned (diagonal, positive), in which case the grid is exact.
 *
 * @example
 * ```ts
 * import { gridFromAffine } from "@petrel/petrel";
 * const { grid, axisAligned } = gridFromAffine([128, 128, 64], [
 *   [2.086, 0, 0, -132.5],
 *   [0, 2.086, 0, -132.5],
 *   [0, 0, 2.031, -64],
 *   [0, 0, 0, 1],
 * ]); // axisAligned: true, grid.voxelSizeMm [2.086, 2.086, 2.031]
 * ```
 */
export function gridFromAffine(
  shape: readonly number[],
  affine: Affine,
): { grid: ImageGrid; axisAligned: boolean } {
  const vox = [0, 1, 2].map((c) => Math.hypot(affine[0][c], affine[1][c], affine[2][c]));
  let axisAligned = true;
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 3; c++) {
      const v = affine[r][c];
      if (r === c ? !(v > 0) : Math.abs(v) > 1e-6 * vox[c]) axisAligned = false;
    }
  }
  const grid = imageGrid({
    shape: [shape[0] ?? 1, shape[1] ?? 1, shape[2] ?? 1],
    voxelSizeMm: vox.map((v) => (v > 0 && Number.isFinite(v) ? v : 1)) as [
      number,
      number,
      number,
    ],
    originMm: [affine[0][3], affine[1][3], affine[2][3]],
  });
  return { grid, axisAligned };
}

/** Options of {@linkcode readNifti} / {@linkcode decodeNifti}. */
export type NiftiReadOptions = FiniteOptions;

/** Where the voxels lie: their count, bytes per voxel, offset and the bytes a file needs. */
function voxelLayout(
  h: NiftiHeader,
  what: string,
): { n: number; bpv: number; offset: number; need: number } {
  const v = h.voxOffset;
  if (!Number.isFinite(v) || v < 0) {
    throw new FormatError(
      `${what}: vox_offset is ${v}; expected a byte offset ≥ 352 (corrupt header?)`,
    );
  }
  // Offsets below 352 (0 in some writers) would overlap the header: the data start after it.
  const offset = Math.max(352, Math.floor(v));
  const n = shapeSize(h.dims);
  const bpv = DTYPES[h.datatype].bytes;
  return { n, bpv, offset, need: offset + n * bpv };
}

/**
 * Decodes a NIfTI-1 file held in memory (gzipped or not). A gzipped file is inflated only up to
 * the size its header declares. NaN/Inf voxels are refused unless `options.allowNonFinite`.
 *
 * @example
 * ```ts
 * import { decodeNifti } from "@petrel/petrel";
 * const res = await fetch("https://example.org/subject04_mu.nii.gz");
 * const mu = decodeNifti(new Uint8Array(await res.arrayBuffer()), "subject04_mu.nii.gz");
 * console.log(mu.grid.shape, mu.affineSource);
 * ```
 */
export function decodeNifti(
  file: Uint8Array,
  what = "NIfTI",
  options: NiftiReadOptions = {},
): NiftiImage {
  let bytes = file;
  if (isGzip(file)) {
    const hz = parseNiftiHeader(gunzipPrefix(file, 348), what);
    const { need, offset } = voxelLayout(hz, what);
    if (need > maxInflatedSize(file.length)) {
      throw new FormatError(
        `${what}: truncated: the header declares ${need} bytes (${JSON.stringify(hz.dims)} ` +
          `${hz.dtype} voxels from offset ${offset}) but ${file.length} gzip bytes cannot ` +
          `inflate to that many`,
      );
    }
    bytes = maybeGunzip(file, what, need);
  }
  const h = parseNiftiHeader(bytes, what);
  const { n, offset, need } = voxelLayout(h, what);
  if (offset > bytes.length) {
    throw new FormatError(
      `${what}: vox_offset ${h.voxOffset} lies beyond the end of the (uncompressed) file ` +
        `(${bytes.length} bytes)`,
    );
  }
  if (bytes.length < need) {
    throw new FormatError(
      `${what}: truncated: ${JSON.stringify(h.dims)} ${h.dtype} voxels need ${need} bytes ` +
        `but the (uncompressed) file holds ${bytes.length}`,
    );
  }
  const data = new Float32Array(n);
  const le = h.byteOrder === "little";
  const slope = Number.isFinite(h.sclSlope) && h.sclSlope !== 0 ? h.sclSlope : 1;
  const inter = Number.isFinite(h.sclInter) && h.sclSlope !== 0 ? h.sclInter : 0;
  const nativeLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  const src = bytes.subarray(offset, need);
  if (h.dtype === "uint8") {
    for (let i = 0; i < n; i++) data[i] = src[i];
  } else if (h.dtype === "int8") {
    const a = new Int8Array(src.buffer, src.byteOffset, n);
    for (let i = 0; i < n; i++) data[i] = a[i];
  } else if (le === nativeLE) {
    // Copy to an aligned buffer, then view it with the native typed array.
    const buf = src.slice().buffer;
    const view = {
      int16: () => new Int16Array(buf),
      uint16: () => new Uint16Array(buf),
      int32: () => new Int32Array(buf),
      uint32: () => new Uint32Array(buf),
      float32: () => new Float32Array(buf),
      float64: () => new Float64Array(buf),
    }[h.dtype as "int16"]();
    if (view instanceof Float32Array) data.set(view);
    else for (let i = 0; i < n; i++) data[i] = view[i];
  } else {
    const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
    const get = {
      int16: (i: number) => dv.getInt16(2 * i, le),
      uint16: (i: number) => dv.getUint16(2 * i, le),
      int32: (i: number) => dv.getInt32(4 * i, le),
      uint32: (i: number) => dv.getUint32(4 * i, le),
      float32: (i: number) => dv.getFloat32(4 * i, le),
      float64: (i: number) => dv.getFloat64(8 * i, le),
    }[h.dtype as "int16"];
    for (let i = 0; i < n; i++) data[i] = get(i);
  }
  if (slope !== 1 || inter !== 0) {
    for (let i = 0; i < n; i++) data[i] = data[i] * slope + inter;
  }
  // integer voxels are finite unless scaling overflows float32
  const isFloat = h.dtype.startsWith("float");
  if (isFloat || slope !== 1 || inter !== 0) checkFinite(data, what, h.dims, options);
  const { affine, source } = niftiAffine(h);
  const { grid, axisAligned } = gridFromAffine(h.dims, affine);
  return { data, shape: [...h.dims], grid, affine, affineSource: source, axisAligned, header: h };
}

/**
 * Reads a NIfTI-1 image (`.nii` or `.nii.gz`; gzip is detected from the content). Voxels that
 * are NaN or ±Inf (after scaling) are refused with a `FormatError` naming the file, the count and
 * the first one, unless `options.allowNonFinite`.
 *
 * @example
 * ```ts
 * const { data, grid } = await readNifti("subject05_crisp.nii.gz");
 * ```
 */
export async function readNifti(
  path: string,
  options: NiftiReadOptions = {},
): Promise<NiftiImage> {
  return decodeNifti(await readBytes(path), path, options);
}

/** Converts a rotation matrix (columns normalised) to NIfTI quaternion (b, c, d) and qfac. */
function quaternionOf(affine: Affine): { bcd: [number, number, number]; qfac: number } {
  const cols = [0, 1, 2].map((c) => {
    const v = [affine[0][c], affine[1][c], affine[2][c]];
    const n = Math.hypot(v[0], v[1], v[2]) || 1;
    return v.map((x) => x / n);
  });
  let R = [0, 1, 2].map((r) => cols.map((col) => col[r]));
  const det = R[0][0] * (R[1][1] * R[2][2] - R[1][2] * R[2][1]) -
    R[0][1] * (R[1][0] * R[2][2] - R[1][2] * R[2][0]) +
    R[0][2] * (R[1][0] * R[2][1] - R[1][1] * R[2][0]);
  const qfac = det < 0 ? -1 : 1;
  if (qfac < 0) R = R.map((row) => [row[0], row[1], -row[2]]);
  let a = 1 + R[0][0] + R[1][1] + R[2][2];
  let b: number, c: number, d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = 0.25 * (R[2][1] - R[1][2]) / a;
    c = 0.25 * (R[0][2] - R[2][0]) / a;
    d = 0.25 * (R[1][0] - R[0][1]) / a;
  } else {
    const xd = 1 + R[0][0] - (R[1][1] + R[2][2]);
    const yd = 1 + R[1][1] - (R[0][0] + R[2][2]);
    const zd = 1 + R[2][2] - (R[0][0] + R[1][1]);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = 0.25 * (R[0][1] + R[1][0]) / b;
      d = 0.25 * (R[0][2] + R[2][0]) / b;
      a = 0.25 * (R[2][1] - R[1][2]) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = 0.25 * (R[0][1] + R[1][0]) / c;
      d = 0.25 * (R[1][2] + R[2][1]) / c;
      a = 0.25 * (R[0][2] - R[2][0]) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = 0.25 * (R[0][2] + R[2][0]) / d;
      c = 0.25 * (R[1][2] + R[2][1]) / d;
      a = 0.25 * (R[1][0] - R[0][1]) / d;
    }
    if (a < 0) [b, c, d] = [-b, -c, -d];
  }
  return { bcd: [b, c, d], qfac };
}

function checkFits(data: ArrayLike<number>, dtype: NiftiWriteDtype): void {
  const ranges: Partial<Record<NiftiWriteDtype, [number, number]>> = {
    uint8: [0, 255],
    int16: [-32768, 32767],
    int32: [-2147483648, 2147483647],
  };
  const r = ranges[dtype];
  if (!r) return;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isInteger(v) || v < r[0] || v > r[1]) {
      throw new RangeError(
        `writeNifti: voxel ${i} = ${v} cannot be stored as ${dtype}; expected integers in ` +
          `${r[0]} … ${r[1]} (or write float32)`,
      );
    }
  }
}

/**
 * Encodes an image as NIfTI-1 bytes (uncompressed unless `options.gzip`).
 *
 * @example
 * ```ts
 * import { centredGrid, decodeNifti, encodeNifti } from "@petrel/petrel";
 * const grid = centredGrid([128, 128, 1], [2.086, 2.086, 2.086]);
 * const image = new Float32Array(128 * 128).fill(1);
 * const bytes = encodeNifti({ data: image, grid }); // float32, affine from the grid
 * const back = decodeNifti(bytes);
 * ```
 */
export function encodeNifti(image: NiftiImageInput, options: NiftiWriteOptions = {}): Uint8Array {
  const { data, grid } = image;
  const g = imageGrid(grid);
  const shape = [...(image.shape ?? g.shape)];
  checkShape(shape, data.length, "writeNifti");
  if (shape.length > 7 || shape.some((n) => n > 32767)) {
    throw new RangeError(
      `writeNifti: shape ${JSON.stringify(shape)} does not fit NIfTI-1 (at most 7 axes of 32767)`,
    );
  }
  for (let a = 0; a < 3; a++) {
    if ((shape[a] ?? 1) !== g.shape[a]) {
      throw new RangeError(
        `writeNifti: shape ${JSON.stringify(shape)} disagrees with the grid's ` +
          `${JSON.stringify(g.shape)} on axis ${a}`,
      );
    }
  }
  const dtype = options.dtype ?? "float32";
  const code = WRITE_CODES[dtype];
  if (code === undefined) {
    throw new TypeError(
      `writeNifti: dtype "${dtype}" is not writable; expected ${Object.keys(WRITE_CODES)}`,
    );
  }
  checkFits(data, dtype);
  const bpv = DTYPES[code].bytes;
  const n = data.length;
  const out = new Uint8Array(352 + n * bpv);
  const dv = new DataView(out.buffer);
  const le = true;
  dv.setInt32(0, 348, le);
  // trim trailing unit axes beyond 3 but keep at least 3 spatial axes
  let ndim = shape.length;
  while (ndim > 3 && shape[ndim - 1] === 1) ndim--;
  ndim = Math.max(ndim, 3);
  dv.setInt16(40, ndim, le);
  for (let d = 1; d <= 7; d++) dv.setInt16(40 + 2 * d, d <= ndim ? (shape[d - 1] ?? 1) : 1, le);
  dv.setInt16(70, code, le);
  dv.setInt16(72, 8 * bpv, le);
  const affine = image.affine ?? gridAffine(g);
  const { bcd, qfac } = quaternionOf(affine);
  dv.setFloat32(76, qfac, le);
  const vox = [0, 1, 2].map((c) => Math.hypot(affine[0][c], affine[1][c], affine[2][c]));
  for (let d = 1; d <= 7; d++) dv.setFloat32(76 + 4 * d, d <= 3 ? vox[d - 1] : 1, le);
  dv.setFloat32(108, 352, le);
  dv.setFloat32(112, 1, le); // scl_slope
  dv.setFloat32(116, 0, le); // scl_inter
  out[123] = 2 | 8; // mm, seconds
  const descrip = new TextEncoder().encode((options.description ?? "petrel").slice(0, 79));
  out.set(descrip.subarray(0, 79), 148);
  dv.setInt16(252, 1, le); // qform_code: scanner
  dv.setInt16(254, 1, le); // sform_code: scanner
  bcd.forEach((v, i) => dv.setFloat32(256 + 4 * i, v, le));
  for (let r = 0; r < 3; r++) dv.setFloat32(268 + 4 * r, affine[r][3], le);
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 4; c++) dv.setFloat32(280 + 16 * r + 4 * c, affine[r][c], le);
  }
  out.set([0x6e, 0x2b, 0x31, 0], 344); // "n+1\0"
  // bytes 348..351: extension flag = 0
  const body = out.subarray(352);
  const bv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  switch (dtype) {
    case "uint8":
      for (let i = 0; i < n; i++) body[i] = data[i];
      break;
    case "int16":
      for (let i = 0; i < n; i++) bv.setInt16(2 * i, data[i], le);
      break;
    case "int32":
      for (let i = 0; i < n; i++) bv.setInt32(4 * i, data[i], le);
      break;
    case "float32":
      for (let i = 0; i < n; i++) bv.setFloat32(4 * i, data[i], le);
      break;
    case "float64":
      for (let i = 0; i < n; i++) bv.setFloat64(8 * i, data[i], le);
      break;
  }
  return options.gzip ? gzip(out) : out;
}

/**
 * Writes an image as NIfTI-1 (float32 unless `options.dtype`), gzipped when `path` ends in
 * `.gz`. The file is written to a temporary name and renamed, so it is never half-written.
 *
 * @example
 * ```ts
 * import { centredGrid, writeNifti } from "@petrel/petrel";
 * const grid = centredGrid([128, 128, 64], [2.086, 2.086, 2.031]);
 * const image = new Float32Array(128 * 128 * 64);
 * await writeNifti("out/recon.nii.gz", { data: image, grid });
 * ```
 */
export async function writeNifti(
  path: string,
  image: NiftiImageInput,
  options: NiftiWriteOptions = {},
): Promise<void> {
  const bytes = encodeNifti(image, { ...options, gzip: options.gzip ?? path.endsWith(".gz") });
  await writeFileAtomic(path, bytes);
}
