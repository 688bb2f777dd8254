/**
 * NumPy `.npy` files (format versions 1, 2 and 3), read and written without dependencies.
 *
 * petrel lists shapes fastest axis first; NumPy lists them slowest first for C order and fastest
 * first for Fortran order. No data are ever reordered: a C-order file of NumPy shape (a, b, c)
 * is read as petrel shape `[c, b, a]`, a Fortran-order file of shape (a, b, c) as `[a, b, c]`.
 *
 * **Written files use C order with the reversed shape** by default (`order: "C"`): an image
 * `[nx, ny, nz]` becomes a contiguous NumPy array of shape `(nz, ny, nx)`, indexed `img[z, y, x]`,
 * which PyTorch (`torch.from_numpy`) takes without a copy. Pass `order: "F"` to write
 * `fortran_order: True` with shape `(nx, ny, nz)` instead (indexed `img[x, y, z]`, as nibabel
 * returns NIfTI data).
 *
 * Supported dtypes: float16, float32, float64, uint8, int8, int16, uint16, int32, uint32, bool,
 * either byte order on read; little-endian on write.
 *
 * @module
 */

import {
  checkFinite,
  checkShape,
  type FiniteOptions,
  FormatError,
  readBytes,
  writeFileAtomic,
} from "./files.ts";

/** Options of {@linkcode readNpy} / {@linkcode decodeNpy}. */
export type NpyReadOptions = FiniteOptions;

/** Element types of `.npy` files petrel reads and writes. */
export type NpyDtype =
  | "float16"
  | "float32"
  | "float64"
  | "uint8"
  | "int8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "bool";

/** What {@linkcode readNpy} returns. */
export interface NpyArray {
  /** Values converted to float32 (what petrel computes with). */
  data: Float32Array;
  /** The values in their stored type (native byte order; float16 decoded to Float32Array). */
  raw:
    | Float32Array
    | Float64Array
    | Uint8Array
    | Int8Array
    | Int16Array
    | Uint16Array
    | Int32Array
    | Uint32Array;
  /** Shape, fastest axis first (petrel order). */
  shape: number[];
  /** Shape as NumPy lists it. */
  numpyShape: number[];
  /** Stored element type. */
  dtype: NpyDtype;
  /** True for `fortran_order` files. */
  fortranOrder: boolean;
}

/** Options of {@linkcode writeNpy} / {@linkcode encodeNpy}. */
export interface NpyWriteOptions {
  /** Stored dtype (default float32). Integer types check that values fit. */
  dtype?: NpyDtype;
  /** "C" (default): NumPy shape is the reversed petrel shape. "F": fortran_order with the petrel shape. */
  order?: "C" | "F";
}

const DESCR: Record<NpyDtype, { code: string; bytes: number }> = {
  float16: { code: "f2", bytes: 2 },
  float32: { code: "f4", bytes: 4 },
  float64: { code: "f8", bytes: 8 },
  uint8: { code: "u1", bytes: 1 },
  int8: { code: "i1", bytes: 1 },
  int16: { code: "i2", bytes: 2 },
  uint16: { code: "u2", bytes: 2 },
  int32: { code: "i4", bytes: 4 },
  uint32: { code: "u4", bytes: 4 },
  bool: { code: "b1", bytes: 1 },
};

const INT_RANGE: Partial<Record<NpyDtype, [number, number]>> = {
  uint8: [0, 255],
  int8: [-128, 127],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  bool: [0, 1],
};

/**
 * Decodes an IEEE half-precision value.
 *
 * @example
 * ```ts
 * import { halfToFloat } from "@petrel/petrel";
 * halfToFloat(0x3c00); // 1
 * halfToFloat(0x7bff); // 65504, the largest float16
 * ```
 */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/**
 * Encodes a number as IEEE half precision (round to nearest even; overflow → ±Inf).
 *
 * @example
 * ```ts
 * import { floatToHalf, halfToFloat } from "@petrel/petrel";
 * floatToHalf(1); // 0x3c00
 * halfToFloat(floatToHalf(0.1)); // 0.0999755859375: float16 keeps 11 significant bits
 * ```
 */
export function floatToHalf(v: number): number {
  f32buf[0] = v;
  const x = u32buf[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let hm = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (hm & 1))) hm++;
    return sign | hm;
  }
  let hm = mant >>> 13;
  const rem = mant & 0x1fff;
  let he = e;
  if (rem > 0x1000 || (rem === 0x1000 && (hm & 1))) {
    hm++;
    if (hm === 0x400) {
      hm = 0;
      he++;
      if (he >= 31) return sign | 0x7c00;
    }
  }
  return sign | (he << 10) | hm;
}

function parseHeader(
  text: string,
  what: string,
): { descr: string; fortran: boolean; shape: number[] } {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !fortran || !shape) {
    throw new FormatError(
      `${what}: the .npy header "${text.trim()}" lacks 'descr', 'fortran_order' or 'shape' ` +
        `(corrupt file?)`,
    );
  }
  const dims = shape[1].split(",").map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  if (dims.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new FormatError(`${what}: bad shape (${shape[1]}) in the .npy header`);
  }
  return { descr: descr[1], fortran: fortran[1] === "True", shape: dims };
}

/**
 * Decodes a `.npy` file held in memory. Float values that are NaN or ±Inf (also float64 values
 * beyond float32's range) are refused unless `options.allowNonFinite`.
 *
 * @example
 * ```ts
 * import { decodeNpy } from "@petrel/petrel";
 * const bytes = await Deno.readFile("in/activity.npy");
 * const { data, shape, numpyShape } = decodeNpy(bytes, "in/activity.npy"); // shape fastest first
 * ```
 */
export function decodeNpy(bytes: Uint8Array, what = "npy", options: NpyReadOptions = {}): NpyArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((m, i) => bytes[i] !== m)) {
    throw new FormatError(`${what}: not a .npy file (missing the \\x93NUMPY magic)`);
  }
  const major = bytes[6];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let hlen: number;
  let hstart: number;
  if (major === 1) {
    hlen = dv.getUint16(8, true);
    hstart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new FormatError(`${what}: truncated .npy header`);
    hlen = dv.getUint32(8, true);
    hstart = 12;
  } else {
    throw new FormatError(`${what}: .npy format version ${major} is not supported (1, 2 or 3)`);
  }
  if (bytes.length < hstart + hlen) {
    throw new FormatError(`${what}: truncated .npy header (${bytes.length} bytes)`);
  }
  const text = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(
    bytes.subarray(hstart, hstart + hlen),
  );
  const { descr, fortran, shape } = parseHeader(text, what);
  const m = /^([<>|=])?([a-zA-Z])(\d+)$/.exec(descr);
  const dtype = m
    ? (Object.keys(DESCR) as NpyDtype[]).find((k) => DESCR[k].code === `${m[2]}${m[3]}`)
    : undefined;
  if (!m || !dtype) {
    throw new FormatError(
      `${what}: .npy dtype '${descr}' is not supported; expected one of ` +
        (Object.keys(DESCR) as NpyDtype[]).join(", "),
    );
  }
  const le = m[1] !== ">";
  const n = shape.reduce((a, b) => a * b, 1);
  const bpv = DESCR[dtype].bytes;
  const start = hstart + hlen;
  const need = start + n * bpv;
  if (bytes.length < need) {
    throw new FormatError(
      `${what}: truncated: shape (${shape.join(", ")}) of ${dtype} needs ${need} bytes, ` +
        `the file holds ${bytes.length}`,
    );
  }
  const src = new DataView(bytes.buffer, bytes.byteOffset + start, n * bpv);
  let raw: NpyArray["raw"];
  switch (dtype) {
    case "float16": {
      raw = new Float32Array(n);
      for (let i = 0; i < n; i++) raw[i] = halfToFloat(src.getUint16(2 * i, le));
      break;
    }
    case "float32":
      raw = new Float32Array(n);
      for (let i = 0; i < n; i++) raw[i] = src.getFloat32(4 * i, le);
      break;
    case "float64":
      raw = new Float64Array(n);
      for (let i = 0; i < n; i++) raw[i] = src.getFloat64(8 * i, le);
      break;
    case "uint8":
    case "bool":
      raw = bytes.slice(start, need);
      break;
    case "int8":
      raw = new Int8Array(bytes.slice(start, need).buffer);
      break;
    case "int16":
      raw = new Int16Array(n);
      for (let i = 0; i < n; i++) raw[i] = src.getInt16(2 * i, le);
      break;
    case "uint16":
      raw = new Uint16Array(n);
      for (let i = 0; i < n; i++) raw[i] = src.getUint16(2 * i, le);
      break;
    case "int32":
      raw = new Int32Array(n);
      for (let i = 0; i < n; i++) raw[i] = src.getInt32(4 * i, le);
      break;
    case "uint32":
      raw = new Uint32Array(n);
      for (let i = 0; i < n; i++) raw[i] = src.getUint32(4 * i, le);
      break;
  }
  const data = raw instanceof Float32Array ? raw : Float32Array.from(raw);
  const petrelShape = fortran ? [...shape] : [...shape].reverse();
  // integers are always finite, also as float32
  if (dtype.startsWith("float")) checkFinite(data, what, petrelShape, options);
  return {
    data,
    raw,
    shape: petrelShape,
    numpyShape: shape,
    dtype,
    fortranOrder: fortran,
  };
}

/**
 * Reads a `.npy` file; `shape` comes back fastest axis first. NaN/Inf values are refused (with
 * the file, count and first index) unless `options.allowNonFinite`.
 *
 * @example
 * ```ts
 * const { data, shape } = await readNpy("prompts.npy");
 * ```
 */
export async function readNpy(path: string, options: NpyReadOptions = {}): Promise<NpyArray> {
  return decodeNpy(await readBytes(path), path, options);
}

/**
 * Encodes an array (shape fastest first) as `.npy` bytes (format version 1).
 *
 * @example
 * ```ts
 * const bytes = encodeNpy({ data: new Float32Array(6), shape: [3, 2] });
 * await Deno.writeFile("out/a.npy", bytes);
 * ```
 */
export function encodeNpy(
  array: { data: ArrayLike<number>; shape: readonly number[] },
  options: NpyWriteOptions = {},
): Uint8Array {
  const { data, shape } = array;
  checkShape(shape, data.length, "writeNpy");
  const dtype = options.dtype ?? "float32";
  const d = DESCR[dtype];
  if (!d) {
    throw new TypeError(
      `writeNpy: dtype "${dtype}" is not supported; expected ${Object.keys(DESCR)}`,
    );
  }
  const range = INT_RANGE[dtype];
  if (range) {
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (!Number.isInteger(v) || v < range[0] || v > range[1]) {
        throw new RangeError(
          `writeNpy: value ${i} = ${v} cannot be stored as ${dtype}; expected integers in ` +
            `${range[0]} … ${range[1]}`,
        );
      }
    }
  }
  const order = options.order ?? "C";
  const npShape = order === "F" ? [...shape] : [...shape].reverse();
  const shapeText = npShape.length === 1 ? `(${npShape[0]},)` : `(${npShape.join(", ")})`;
  const prefix = d.bytes === 1 ? "|" : "<";
  let header = `{'descr': '${prefix}${d.code}', 'fortran_order': ${
    order === "F" ? "True" : "False"
  }, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  if (header.length > 65535) throw new RangeError("writeNpy: header too long for .npy version 1");
  const n = data.length;
  const out = new Uint8Array(10 + header.length + n * d.bytes);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  const dv = new DataView(out.buffer);
  dv.setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  const o = 10 + header.length;
  switch (dtype) {
    case "float16":
      for (let i = 0; i < n; i++) dv.setUint16(o + 2 * i, floatToHalf(data[i]), true);
      break;
    case "float32":
      for (let i = 0; i < n; i++) dv.setFloat32(o + 4 * i, data[i], true);
      break;
    case "float64":
      for (let i = 0; i < n; i++) dv.setFloat64(o + 8 * i, data[i], true);
      break;
    case "uint8":
    case "bool":
      for (let i = 0; i < n; i++) out[o + i] = data[i];
      break;
    case "int8":
      for (let i = 0; i < n; i++) dv.setInt8(o + i, data[i]);
      break;
    case "int16":
      for (let i = 0; i < n; i++) dv.setInt16(o + 2 * i, data[i], true);
      break;
    case "uint16":
      for (let i = 0; i < n; i++) dv.setUint16(o + 2 * i, data[i], true);
      break;
    case "int32":
      for (let i = 0; i < n; i++) dv.setInt32(o + 4 * i, data[i], true);
      break;
    case "uint32":
      for (let i = 0; i < n; i++) dv.setUint32(o + 4 * i, data[i], true);
      break;
  }
  return out;
}

/**
 * Writes an array (shape fastest first) as `.npy`, atomically. By default C order with the
 * reversed shape, so an image `[nx, ny, nz]` loads in NumPy as `(nz, ny, nx)`.
 *
 * @example
 * ```ts
 * import { writeNpy } from "@petrel/petrel";
 * const image = new Float32Array(128 * 128 * 3);
 * await writeNpy("x.npy", { data: image, shape: [128, 128, 3] }); // np.load → (3, 128, 128)
 * ```
 */
export async function writeNpy(
  path: string,
  array: { data: ArrayLike<number>; shape: readonly number[] },
  options: NpyWriteOptions = {},
): Promise<void> {
  await writeFileAtomic(path, encodeNpy(array, options));
}
