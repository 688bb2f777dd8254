/**
 * MINC1 volumes (NetCDF classic, CDF-1 and CDF-2 with 64-bit offsets), as BrainWeb distributes its
 * models (`subjectNN_crisp_v.mnc.gz`): the `image` variable over (zspace, yspace, xspace), with
 * `step` / `start` attributes on the dimension variables. Big-endian throughout.
 *
 * @module
 */

import { maybeGunzip } from "../io/files.ts";
import { type ImageGrid, imageGrid } from "../geometry/grid.ts";

/** A NetCDF attribute value: text or numbers. */
export type NcValue = string | number[];

/** A NetCDF variable of a classic file. */
export interface NcVariable {
  name: string;
  /** Dimension names, slowest first (NetCDF order). */
  dims: string[];
  /** Dimension lengths, slowest first. */
  shape: number[];
  /** NetCDF type code: 1 byte, 2 char, 3 short, 4 int, 5 float, 6 double. */
  type: number;
  attributes: Record<string, NcValue>;
  /** Byte offset of the data in the file. */
  begin: number;
}

/** A parsed NetCDF classic header. */
export interface NcFile {
  version: 1 | 2;
  dims: { name: string; length: number }[];
  attributes: Record<string, NcValue>;
  variables: Record<string, NcVariable>;
  bytes: Uint8Array;
}

const TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8 };

class Reader {
  pos = 0;
  readonly dv: DataView;
  constructor(readonly bytes: Uint8Array, readonly what: string) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  need(n: number): void {
    if (this.pos + n > this.bytes.length) {
      throw new RangeError(`${this.what}: truncated NetCDF header at byte ${this.pos}`);
    }
  }
  u32(): number {
    this.need(4);
    const v = this.dv.getUint32(this.pos);
    this.pos += 4;
    return v;
  }
  i64(): number {
    this.need(8);
    const v = Number(this.dv.getBigInt64(this.pos));
    this.pos += 8;
    return v;
  }
  name(): string {
    const n = this.u32();
    this.need(n);
    const s = new TextDecoder("latin1").decode(this.bytes.subarray(this.pos, this.pos + n));
    this.pos += (n + 3) & ~3;
    return s;
  }
  values(type: number, n: number): NcValue {
    const size = TYPE_SIZE[type];
    if (!size) throw new RangeError(`${this.what}: unknown NetCDF type ${type}`);
    this.need(n * size);
    let out: NcValue;
    if (type === 2) {
      out = new TextDecoder("latin1").decode(this.bytes.subarray(this.pos, this.pos + n))
        .replace(/\0+$/, "");
    } else {
      const v: number[] = [];
      for (let i = 0; i < n; i++) v.push(readValue(this.dv, this.pos + i * size, type));
      out = v;
    }
    this.pos += (n * size + 3) & ~3;
    return out;
  }
  attributes(): Record<string, NcValue> {
    const tag = this.u32();
    const n = this.u32();
    const out: Record<string, NcValue> = {};
    if (tag === 0 && n === 0) return out;
    if (tag !== 0x0c) throw new RangeError(`${this.what}: bad NetCDF attribute list tag ${tag}`);
    for (let i = 0; i < n; i++) {
      const name = this.name();
      const type = this.u32();
      const count = this.u32();
      out[name] = this.values(type, count);
    }
    return out;
  }
}

function readValue(dv: DataView, at: number, type: number): number {
  switch (type) {
    case 1:
      return dv.getInt8(at);
    case 2:
      return dv.getUint8(at);
    case 3:
      return dv.getInt16(at);
    case 4:
      return dv.getInt32(at);
    case 5:
      return dv.getFloat32(at);
    default:
      return dv.getFloat64(at);
  }
}

/**
 * Parses a NetCDF classic file (gunzipped).
 *
 * @example
 * ```ts
 * import { parseNetcdf } from "@petrel/petrel";
 * import { gunzipSync } from "node:zlib";
 * const nc = parseNetcdf(gunzipSync(await Deno.readFile("data/brainweb/subject04_crisp_v.mnc.gz")));
 * console.log(nc.dims.map((d) => `${d.name}=${d.length}`)); // ["zspace=362", "yspace=434", "xspace=362"]
 * ```
 */
export function parseNetcdf(bytes: Uint8Array, what = "MINC1"): NcFile {
  if (bytes.length < 4 || bytes[0] !== 0x43 || bytes[1] !== 0x44 || bytes[2] !== 0x46) {
    throw new RangeError(
      `${what}: not a NetCDF classic file (no "CDF" magic); expected a MINC1 volume (.mnc or .mnc.gz)`,
    );
  }
  const version = bytes[3];
  if (version !== 1 && version !== 2) {
    throw new RangeError(
      `${what}: NetCDF version byte ${version}; expected 1 or 2 (MINC2/HDF5 is not supported)`,
    );
  }
  const r = new Reader(bytes, what);
  r.pos = 4;
  r.u32(); // numrecs
  const dims: { name: string; length: number }[] = [];
  {
    const tag = r.u32();
    const n = r.u32();
    if (!(tag === 0 && n === 0)) {
      if (tag !== 0x0a) throw new RangeError(`${what}: bad NetCDF dimension list tag ${tag}`);
      for (let i = 0; i < n; i++) dims.push({ name: r.name(), length: r.u32() });
    }
  }
  const attributes = r.attributes();
  const variables: Record<string, NcVariable> = {};
  const tag = r.u32();
  const n = r.u32();
  if (!(tag === 0 && n === 0)) {
    if (tag !== 0x0b) throw new RangeError(`${what}: bad NetCDF variable list tag ${tag}`);
    for (let i = 0; i < n; i++) {
      const name = r.name();
      const nd = r.u32();
      const ids: number[] = [];
      for (let d = 0; d < nd; d++) ids.push(r.u32());
      const vatts = r.attributes();
      const type = r.u32();
      r.u32(); // vsize
      const begin = version === 1 ? r.u32() : r.i64();
      for (const id of ids) {
        if (id >= dims.length) {
          throw new RangeError(`${what}: variable ${name} uses dimension ${id}`);
        }
      }
      variables[name] = {
        name,
        dims: ids.map((d) => dims[d].name),
        shape: ids.map((d) => dims[d].length),
        type,
        attributes: vatts,
        begin,
      };
    }
  }
  return { version: version as 1 | 2, dims, attributes, variables, bytes };
}

/** A decoded MINC1 volume (x fastest, axes flipped so that every step is positive). */
export interface Minc1Volume {
  /** Stored voxel values (no MINC intensity scaling), x fastest. */
  data: Float32Array;
  /** `[nx, ny, nz]`. */
  shape: [number, number, number];
  grid: ImageGrid;
  /** NetCDF type of the image variable ("byte", "short", …) and whether it is unsigned. */
  dtype: string;
}

const TYPE_NAMES: Record<number, string> = {
  1: "byte",
  2: "char",
  3: "short",
  4: "int",
  5: "float",
  6: "double",
};

/**
 * The most a gzipped MINC1 file may inflate to (1 GiB): BrainWeb's 0.5 mm label volumes are
 * about 57 MB, so anything far larger is a corrupt file or a decompression bomb.
 *
 * @example
 * ```ts
 * import { decodeMinc1, MINC1_MAX_INFLATED_BYTES } from "@petrel/petrel";
 * const file = await Deno.readFile("data/big_volume.mnc.gz");
 * const vol = decodeMinc1(file, "data/big_volume.mnc.gz", 2 * MINC1_MAX_INFLATED_BYTES); // allow 2 GiB
 * ```
 */
export const MINC1_MAX_INFLATED_BYTES = 1 << 30;

/**
 * Decodes a MINC1 volume (gzipped or not). The `image` variable must be 3-D over xspace, yspace
 * and zspace (any order); direction cosines must be the identity (no oblique volumes). Values are
 * the stored ones (unsigned when `signtype` is "unsigned"), without image-min/max scaling, which is
 * what label volumes need.
 *
 * @example
 * ```ts
 * import { decodeMinc1 } from "@petrel/petrel";
 * const path = "data/brainweb/subject04_crisp_v.mnc.gz";
 * const minc = decodeMinc1(await Deno.readFile(path), path);
 * ```
 */
export function decodeMinc1(
  file: Uint8Array,
  what = "MINC1",
  maxBytes: number = MINC1_MAX_INFLATED_BYTES,
): Minc1Volume {
  // A MINC1 header is only readable after inflating, so the cap is a fixed bound, not a declared size.
  const bytes = maybeGunzip(file, what, maxBytes);
  const nc = parseNetcdf(bytes, what);
  const img = nc.variables["image"];
  if (!img) throw new RangeError(`${what}: no "image" variable; expected a MINC1 volume`);
  const axes = ["xspace", "yspace", "zspace"];
  if (img.dims.length !== 3 || !axes.every((a) => img.dims.includes(a))) {
    throw new RangeError(
      `${what}: image dimensions [${img.dims.join(", ")}]; expected xspace, yspace and zspace`,
    );
  }
  const unsigned = img.attributes["signtype"] === "unsigned";
  const size = TYPE_SIZE[img.type];
  const count = img.shape[0] * img.shape[1] * img.shape[2];
  if (img.begin + count * size > bytes.length) {
    throw new RangeError(
      `${what}: truncated: the image needs ${
        count * size
      } bytes at ${img.begin}, the file has ${bytes.length}`,
    );
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Axis a (0 = x) ↔ position p in the NetCDF dims (slowest first).
  const pos = axes.map((a) => img.dims.indexOf(a));
  const n = axes.map((_, a) => img.shape[pos[a]]) as [number, number, number];
  const step = [0, 0, 0], start = [0, 0, 0];
  for (let a = 0; a < 3; a++) {
    const v = nc.variables[axes[a]];
    const st = v?.attributes["step"];
    const sa = v?.attributes["start"];
    step[a] = Array.isArray(st) ? st[0] : 1;
    start[a] = Array.isArray(sa) ? sa[0] : 0;
    const dc = v?.attributes["direction_cosines"];
    if (Array.isArray(dc)) {
      const e = [0, 0, 0];
      e[a] = 1;
      if (dc.some((c, i) => Math.abs(c - e[i]) > 1e-6)) {
        throw new RangeError(
          `${what}: ${axes[a]} has direction cosines [${
            dc.join(", ")
          }]; expected an axis-aligned volume`,
        );
      }
    }
    if (!(Math.abs(step[a]) > 0)) throw new RangeError(`${what}: ${axes[a]} step is ${step[a]}`);
  }
  // Strides of each axis in the stored (row-major) order.
  const strides = [0, 0, 0];
  for (let a = 0; a < 3; a++) {
    let s = 1;
    for (let p = pos[a] + 1; p < 3; p++) s *= img.shape[p];
    strides[a] = s;
  }
  const data = new Float32Array(count);
  const flip = step.map((s) => s < 0);
  for (let k = 0; k < n[2]; k++) {
    const kk = flip[2] ? n[2] - 1 - k : k;
    for (let j = 0; j < n[1]; j++) {
      const jj = flip[1] ? n[1] - 1 - j : j;
      const base = kk * strides[2] + jj * strides[1];
      const out = n[0] * (j + n[1] * k);
      for (let i = 0; i < n[0]; i++) {
        const ii = flip[0] ? n[0] - 1 - i : i;
        const at = img.begin + (base + ii * strides[0]) * size;
        let v = readValue(dv, at, img.type);
        if (unsigned) {
          if (img.type === 1 && v < 0) v += 256;
          else if (img.type === 3 && v < 0) v += 65536;
          else if (img.type === 4 && v < 0) v += 4294967296;
        }
        data[out + i] = v;
      }
    }
  }
  const origin = [0, 1, 2].map((a) => flip[a] ? start[a] + (n[a] - 1) * step[a] : start[a]) as [
    number,
    number,
    number,
  ];
  const grid = imageGrid({
    shape: n,
    voxelSizeMm: step.map(Math.abs) as [number, number, number],
    originMm: origin,
  });
  return { data, shape: n, grid, dtype: (unsigned ? "unsigned " : "") + TYPE_NAMES[img.type] };
}
