/**
 * STIR Interfile headers, so that STIR (and SIRF) users can bring their images and projection
 * data to petrel and take petrel's back.
 *
 * Images: `.hv` header + `.v` raw data (x fastest, then y, then z, float32 little-endian on
 * write; float / signed / unsigned integers of either byte order on read). The voxel sizes are
 * the "scaling factor (mm/pixel)" keys and the grid origin (centre of voxel 0) is "first pixel
 * offset (mm)"; STIR counts z from the centre of the first ring, so when a scanner is given the
 * z offset is written relative to ring 0 (`originMm[2] − scanner.ringZ(0)`) and read back the same
 * way. x and y are copied as they are.
 *
 * Projection data: `.hs` header + `.s` raw float32 data, span 1, "SegmentBySinogram" storage
 * (axes, slowest first: segment, axial coordinate, view, tangential coordinate) with segments in
 * the order 0, −1, +1, −2, +2, …, each by axial position. By default every petrel bin is moved
 * to the STIR bin of the same detector pair (`remap`, see {@linkcode stirBinIndex}): petrel
 * crystal k (at angle 2πk/N from +x) is STIR detector (k + N/4) mod N (STIR puts detector d at
 * x = R sin(2πd/N), y = −R cos(2πd/N)), so that images exchanged index for index (as above) and
 * sinograms describe the same object. This matters beyond labels: STIR interleaves the odd
 * tangential positions of a view half a detector the other way round, so odd radial bins change
 * view, and detector swaps flip the segment sign. The mapping follows STIR's
 * `ProjDataInfoCylindricalNoArcCorr` conventions (detector pair ↔ view/tangential position,
 * segment = ring2 − ring1, axial position = lower ring) as read from its source; it was not run
 * against a STIR build here (none is installed). `remap: false` stores petrel's array unchanged.
 * The reader also accepts "SegmentByView" storage and any segment order.
 *
 * @module
 */

import { type ImageGrid, imageGrid } from "../geometry/grid.ts";
import { RingScanner, type RingScannerSpec } from "../geometry/scanner.ts";
import {
  checkFinite,
  dataFileInside,
  type FiniteOptions,
  FormatError,
  readBytes,
  readText,
  writeFilesAtomic,
} from "./files.ts";

/** A parsed Interfile header: normalised keys (lower case, no `!`, single spaces) → values. */
export type InterfileHeader = Map<string, string>;

/**
 * Normalises an Interfile key: lower case, no leading `!`, single spaces, no space before `[`.
 *
 * @example
 * ```ts
 * import { normaliseKey } from "@petrel/petrel";
 * normaliseKey("!Matrix Size [1]"); // "matrix size[1]"
 * ```
 */
export function normaliseKey(key: string): string {
  return key.replace(/^\s*!/, "").trim().toLowerCase().replace(/\s+/g, " ").replace(/ \[/g, "[");
}

/**
 * Parses Interfile `key := value` lines (`;` starts a comment line).
 *
 * @example
 * ```ts
 * import { parseInterfile } from "@petrel/petrel";
 * const h = parseInterfile("!INTERFILE :=\n!matrix size [1] := 128\nscaling factor (mm/pixel) [1] := 2.086\n");
 * h.get("matrix size[1]"); // "128"
 * ```
 */
export function parseInterfile(text: string, what = "Interfile header"): InterfileHeader {
  const h: InterfileHeader = new Map();
  const lines = text.split(/\r?\n/);
  let first = true;
  for (const line of lines) {
    const l = line.trim();
    if (l === "" || l.startsWith(";")) continue;
    const i = l.indexOf(":=");
    if (i < 0) continue;
    const key = normaliseKey(l.slice(0, i));
    if (first) {
      if (key !== "interfile") {
        throw new FormatError(
          `${what}: does not start with "!INTERFILE :="; not an Interfile header`,
        );
      }
      first = false;
    }
    h.set(key, l.slice(i + 2).trim());
  }
  if (first) throw new FormatError(`${what}: empty; not an Interfile header`);
  return h;
}

function need(h: InterfileHeader, key: string, what: string): string {
  const v = h.get(key);
  if (v === undefined || v === "") {
    throw new FormatError(`${what}: the key "${key}" is missing`);
  }
  return v;
}

function num(h: InterfileHeader, key: string, what: string, fallback?: number): number {
  const v = h.get(key);
  if (v === undefined || v === "") {
    if (fallback !== undefined) return fallback;
    throw new FormatError(`${what}: the key "${key}" is missing`);
  }
  const n = Number(v);
  if (!Number.isFinite(n)) throw new FormatError(`${what}: "${key}" = "${v}" is not a number`);
  return n;
}

function list(v: string, what: string, key: string): number[] {
  const out = v.replace(/[{}]/g, "").split(",").map((s) => Number(s.trim()));
  if (out.some((n) => !Number.isFinite(n))) {
    throw new FormatError(`${what}: "${key}" = "${v}" is not a list of numbers`);
  }
  return out;
}

function dirName(p: string): string {
  const i = p.lastIndexOf("/");
  return i < 0 ? "." : p.slice(0, i) || "/";
}

function baseName(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

/** The header's data file, which must lie in the header's folder (see `dataFileInside`). */
async function resolveData(headerPath: string, name: string): Promise<string> {
  await dataFileInside(headerPath, name);
  return name.startsWith("/") ? name : `${dirName(headerPath)}/${name}`;
}

/** Byte orders Interfile defines; anything else is refused rather than guessed. */
const BYTE_ORDERS = ["LITTLEENDIAN", "BIGENDIAN"];

/**
 * Decodes raw Interfile data according to the header's number format and byte order, refusing
 * NaN/Inf values unless `options.allowNonFinite` (`shape` locates the first one in the message).
 */
function decodeRaw(
  h: InterfileHeader,
  bytes: Uint8Array,
  n: number,
  what: string,
  shape: readonly number[],
  options: FiniteOptions,
): Float32Array {
  const fmt = (h.get("number format") ?? "float").toLowerCase();
  const bpp = num(h, "number of bytes per pixel", what, 4);
  const order = (h.get("imagedata byte order") ?? "BIGENDIAN").toUpperCase();
  if (!BYTE_ORDERS.includes(order)) {
    throw new FormatError(
      `${what}: "imagedata byte order" is "${order}"; expected LITTLEENDIAN or BIGENDIAN`,
    );
  }
  const le = order === "LITTLEENDIAN";
  const offset = num(h, "data offset in bytes[1]", what, num(h, "data offset in bytes", what, 0));
  if (!Number.isInteger(offset) || offset < 0) {
    throw new FormatError(
      `${what}: "data offset in bytes" is ${offset}; expected a non-negative whole number`,
    );
  }
  const needBytes = offset + n * bpp;
  if (bytes.length < needBytes) {
    throw new FormatError(
      `${what}: truncated data file: ${n} values of ${bpp} bytes from offset ${offset} need ` +
        `${needBytes} bytes, the file holds ${bytes.length}`,
    );
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset + offset, n * bpp);
  const out = new Float32Array(n);
  let get: (i: number) => number;
  if (/float/.test(fmt) && bpp === 4) get = (i) => dv.getFloat32(4 * i, le);
  else if (/float/.test(fmt) && bpp === 8) get = (i) => dv.getFloat64(8 * i, le);
  else if (/^signed/.test(fmt) && bpp === 1) get = (i) => dv.getInt8(i);
  else if (/^signed/.test(fmt) && bpp === 2) get = (i) => dv.getInt16(2 * i, le);
  else if (/^signed/.test(fmt) && bpp === 4) get = (i) => dv.getInt32(4 * i, le);
  else if (/^unsigned/.test(fmt) && bpp === 1) get = (i) => dv.getUint8(i);
  else if (/^unsigned/.test(fmt) && bpp === 2) get = (i) => dv.getUint16(2 * i, le);
  else if (/^unsigned/.test(fmt) && bpp === 4) get = (i) => dv.getUint32(4 * i, le);
  else {
    throw new FormatError(
      `${what}: number format "${fmt}" with ${bpp} bytes per pixel is not supported; expected ` +
        `float (4 or 8 bytes) or signed/unsigned integer (1, 2 or 4 bytes)`,
    );
  }
  for (let i = 0; i < n; i++) out[i] = get(i);
  const scale = num(h, "image scaling factor[1]", what, 1);
  if (scale !== 1) { for (let i = 0; i < n; i++) out[i] *= scale; }
  checkFinite(out, what, shape, options);
  return out;
}

function float32Bytes(data: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(4 * data.length);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) dv.setFloat32(4 * i, data[i], true);
  return out;
}

const fmtNum = (v: number) => String(Number(v.toPrecision(10)));

/** What differs between the STIR headers of petrel's images and projection data. */
interface Float32InterfileHeader {
  /** Extension of the raw data file, replacing the header's 3-character one (".v", ".s"). */
  dataExtension: string;
  /** "originating system" key, written after the data file name when given. */
  originatingSystem?: string;
  /** "!PET data type" value ("Image", "Emission", …). */
  petDataType: string;
  /** The whole key line after the data type ("process status", "applied corrections"). */
  status: string;
  /** "number of dimensions" value. */
  dimensions: number;
  /** The type's own key lines, between "number of dimensions" and "!END OF INTERFILE". */
  keys: readonly string[];
}

/**
 * Writes `data` as raw float32 little-endian beside a STIR Interfile header at `path`, both
 * together or not at all. One place writes the bytes and the keys that declare them (byte
 * order, number format, bytes per pixel), so images and projection data cannot disagree on them.
 */
async function writeFloat32Interfile(
  path: string,
  data: ArrayLike<number>,
  header: Float32InterfileHeader,
): Promise<void> {
  const dataPath = path.slice(0, -3) + header.dataExtension;
  const lines = [
    "!INTERFILE  :=",
    "!imaging modality := PT",
    `name of data file := ${baseName(dataPath)}`,
    ...(header.originatingSystem === undefined
      ? []
      : [`originating system := ${header.originatingSystem}`]),
    "!version of keys := STIR4.0",
    "!GENERAL DATA :=",
    "!GENERAL IMAGE DATA :=",
    "!type of data := PET",
    "imagedata byte order := LITTLEENDIAN",
    "!PET STUDY (General) :=",
    `!PET data type := ${header.petDataType}`,
    header.status,
    "!number format := float",
    "!number of bytes per pixel := 4",
    `number of dimensions := ${header.dimensions}`,
    ...header.keys,
    "!END OF INTERFILE :=",
    "",
  ];
  await writeFilesAtomic([
    { path: dataPath, data: float32Bytes(data) },
    { path, data: lines.join("\n") },
  ]);
}

/** Options of {@linkcode writeInterfileImage} / {@linkcode readInterfileImage}. */
export interface InterfileImageOptions extends FiniteOptions {
  /** Scanner the image belongs to: z offsets are then relative to ring 0, as STIR counts them. */
  scanner?: RingScanner;
}

/** An Interfile image read back. */
export interface InterfileImage {
  /** Voxels x fastest. */
  data: Float32Array;
  /** Voxel grid (z relative to the scanner's centre when a scanner is given). */
  grid: ImageGrid;
  /** The parsed header. */
  header: InterfileHeader;
}

/**
 * Writes an image as a STIR Interfile `.hv` header and a float32 `.v` data file beside it
 * (same name). Both appear together or not at all.
 *
 * @example
 * ```ts
 * import { centredGrid, mmrLike3d, writeInterfileImage } from "@petrel/petrel";
 * const scanner = mmrLike3d({ rings: 64 });
 * const grid = centredGrid([128, 128, 64], [2.086, 2.086, 4.0625]);
 * const x = new Float32Array(128 * 128 * 64);
 * // out/recon.hv + out/recon.v, z offset relative to ring 0 as STIR counts it
 * await writeInterfileImage("out/recon.hv", { data: x, grid }, { scanner });
 * ```
 */
export async function writeInterfileImage(
  path: string,
  image: { data: ArrayLike<number>; grid: ImageGrid },
  options: InterfileImageOptions = {},
): Promise<void> {
  if (!path.endsWith(".hv")) throw new RangeError(`writeInterfileImage: ${path} must end in .hv`);
  const g = imageGrid(image.grid);
  const n = g.shape[0] * g.shape[1] * g.shape[2];
  if (image.data.length !== n) {
    throw new RangeError(
      `writeInterfileImage: the grid ${JSON.stringify(g.shape)} holds ${n} voxels but the data ` +
        `have ${image.data.length}`,
    );
  }
  const z0 = options.scanner ? options.scanner.ringZ(0) : 0;
  const axes = ["x", "y", "z"];
  const keys = [
    ...[0, 1, 2].flatMap((a) => [
      `matrix axis label [${a + 1}] := ${axes[a]}`,
      `!matrix size [${a + 1}] := ${g.shape[a]}`,
      `scaling factor (mm/pixel) [${a + 1}] := ${fmtNum(g.voxelSizeMm[a])}`,
    ]),
    `first pixel offset (mm) [1] := ${fmtNum(g.originMm[0])}`,
    `first pixel offset (mm) [2] := ${fmtNum(g.originMm[1])}`,
    `first pixel offset (mm) [3] := ${fmtNum(g.originMm[2] - z0)}`,
    "number of time frames := 1",
    "image scaling factor[1] := 1",
    "data offset in bytes[1] := 0",
    "quantification units := 1",
    "; written by petrel: voxels x fastest, then y, then z",
  ];
  await writeFloat32Interfile(path, image.data, {
    dataExtension: ".v",
    petDataType: "Image",
    status: "process status := Reconstructed",
    dimensions: 3,
    keys,
  });
}

/**
 * Reads a STIR Interfile image (`.hv` header; the data file is found from the header and must
 * lie in the header's folder). NaN/Inf voxels are refused unless `options.allowNonFinite`.
 *
 * @example
 * ```ts
 * import { mmrLike3d, readInterfileImage } from "@petrel/petrel";
 * const scanner = mmrLike3d({ rings: 64 }); // STIR's z offsets count from ring 0
 * const { data, grid } = await readInterfileImage("in/mu.hv", { scanner });
 * ```
 */
export async function readInterfileImage(
  path: string,
  options: InterfileImageOptions = {},
): Promise<InterfileImage> {
  const h = parseInterfile(await readText(path), path);
  const dims = num(h, "number of dimensions", path, 3);
  if (dims !== 3) {
    throw new FormatError(`${path}: "number of dimensions" is ${dims}; expected a 3-D image`);
  }
  const shape = [1, 2, 3].map((a) => num(h, `matrix size[${a}]`, path)) as [number, number, number];
  if (shape.some((s) => !Number.isInteger(s) || s < 1)) {
    throw new FormatError(
      `${path}: matrix sizes ${JSON.stringify(shape)} must be positive integers`,
    );
  }
  const vox = [1, 2, 3].map((a) => num(h, `scaling factor (mm/pixel)[${a}]`, path, 1)) as [
    number,
    number,
    number,
  ];
  const z0 = options.scanner ? options.scanner.ringZ(0) : 0;
  const origin = [1, 2, 3].map((a) => {
    const v = h.get(`first pixel offset (mm)[${a}]`);
    // STIR's default: x, y centred on the axis, z from the first ring
    return v !== undefined ? Number(v) : a < 3 ? -((shape[a - 1] - 1) / 2) * vox[a - 1] : 0;
  }) as [number, number, number];
  origin[2] += z0;
  const grid = imageGrid({ shape, voxelSizeMm: vox, originMm: origin });
  const dataPath = await resolveData(path, need(h, "name of data file", path));
  const bytes = await readBytes(dataPath);
  const data = decodeRaw(h, bytes, shape[0] * shape[1] * shape[2], dataPath, shape, options);
  return { data, grid, header: h };
}

/** Options of {@linkcode writeInterfileSinogram} / {@linkcode readInterfileSinogram}. */
export interface InterfileSinogramOptions extends FiniteOptions {
  /**
   * Move each bin to the STIR bin of the same detector pair (default true); false keeps
   * petrel's array as it is (petrel's own view/segment conventions, plane order as STIR's).
   */
  remap?: boolean;
  /** "!PET data type" (default "Emission"). */
  petDataType?: string;
}

/** Projection data read from Interfile. */
export interface InterfileSinogram {
  /** `[radial, views, planes]` in petrel's plane order. */
  data: Float32Array;
  /** `[radial, views, planes]`. */
  shape: [number, number, number];
  /** The scanner described by the header. */
  scanner: RingScanner;
  /** The parsed header. */
  header: InterfileHeader;
}

function segmentOrder(maxRd: number): number[] {
  const out = [0];
  for (let d = 1; d <= maxRd; d++) out.push(-d, d);
  return out;
}

/**
 * Writes span-1 projection data of a petrel ring scanner as a STIR Interfile `.hs` header and
 * float32 `.s` data (SegmentBySinogram, segments 0, −1, +1, …). Both files appear together.
 *
 * @example
 * ```ts
 * import { mmrLike3d, writeInterfileSinogram } from "@petrel/petrel";
 * const scanner = mmrLike3d({ rings: 8, maxRingDifference: 3 });
 * const prompts = new Float32Array(scanner.bins);
 * // out/prompts.hs + out/prompts.s in STIR's SegmentBySinogram order, for STIR's lm_to_projdata users
 * await writeInterfileSinogram("out/prompts.hs", { data: prompts, scanner });
 * ```
 */
export async function writeInterfileSinogram(
  path: string,
  sinogram: { data: ArrayLike<number>; scanner: RingScanner | RingScannerSpec },
  options: InterfileSinogramOptions = {},
): Promise<void> {
  if (!path.endsWith(".hs")) {
    throw new RangeError(`writeInterfileSinogram: ${path} must end in .hs`);
  }
  const sc = sinogram.scanner instanceof RingScanner
    ? sinogram.scanner
    : new RingScanner(sinogram.scanner);
  const s = sc.spec;
  if (sinogram.data.length !== sc.bins) {
    throw new RangeError(
      `writeInterfileSinogram: the data have ${sinogram.data.length} values but the scanner's ` +
        `sinogram ${JSON.stringify(sc.sinogramShape)} has ${sc.bins}`,
    );
  }
  const segs = segmentOrder(s.maxRingDifference);
  const rd = segs;
  let out: ArrayLike<number> = sinogram.data;
  if (options.remap ?? true) {
    const map = stirBinIndex(sc);
    const c = new Float32Array(sc.bins);
    for (let i = 0; i < map.length; i++) c[map[i]] = sinogram.data[i];
    out = c;
  }
  const binCm = (s.radiusMm * Math.sin(Math.PI / s.crystalsPerRing)) / 10;
  const keys = [
    "matrix axis label [4] := segment",
    `!matrix size [4] := ${segs.length}`,
    "matrix axis label [3] := axial coordinate",
    `!matrix size [3] := { ${segs.map((d) => s.rings - Math.abs(d)).join(",")} }`,
    "matrix axis label [2] := view",
    `!matrix size [2] := ${sc.views}`,
    "matrix axis label [1] := tangential coordinate",
    `!matrix size [1] := ${s.radialBins}`,
    `minimum ring difference per segment := { ${rd.join(",")} }`,
    `maximum ring difference per segment := { ${rd.join(",")} }`,
    "Scanner parameters:=",
    "Scanner type := unknown",
    `; petrel scanner name: ${s.name}${
      s.sides ? ` (${s.sides} flat sides, not expressible here)` : ""
    }`,
    `Number of rings := ${s.rings}`,
    `Number of detectors per ring := ${s.crystalsPerRing}`,
    `Inner ring diameter (cm) := ${fmtNum((2 * s.radiusMm) / 10)}`,
    "Average depth of interaction (cm) := 0",
    `Distance between rings (cm) := ${fmtNum(s.ringSpacingMm / 10)}`,
    `Default bin size (cm) := ${fmtNum(binCm)}`,
    "View offset (degrees) := 0",
    `Maximum number of non-arc-corrected bins := ${s.radialBins}`,
    `Default number of arc-corrected bins := ${s.radialBins}`,
    "Number of blocks per bucket in transaxial direction := 1",
    "Number of blocks per bucket in axial direction := 1",
    "Number of crystals per block in axial direction := 1",
    "Number of crystals per block in transaxial direction := 1",
    "Number of detector layers := 1",
    "Number of crystals per singles unit in axial direction := 1",
    "Number of crystals per singles unit in transaxial direction := 1",
    "end scanner parameters:=",
    `effective central bin size (cm) := ${fmtNum(binCm)}`,
    "number of time frames := 1",
  ];
  await writeFloat32Interfile(path, out, {
    dataExtension: ".s",
    originatingSystem: "userdefined",
    petDataType: options.petDataType ?? "Emission",
    status: "applied corrections := {None}",
    dimensions: 4,
    keys,
  });
}

/**
 * Reads span-1 STIR Interfile projection data (`.hs`) of a cylindrical scanner, in
 * SegmentBySinogram or SegmentByView storage and any segment order, into petrel's
 * `[radial, views, planes]` layout and plane order, with the matching {@linkcode RingScanner}.
 * The data file must lie in the header's folder; NaN/Inf values are refused (the message gives
 * the first one's index in the data file) unless `options.allowNonFinite`.
 *
 * @example
 * ```ts
 * const { data, scanner } = await readInterfileSinogram("in/prompts.hs");
 * ```
 */
export async function readInterfileSinogram(
  path: string,
  options: InterfileSinogramOptions = {},
): Promise<InterfileSinogram> {
  const h = parseInterfile(await readText(path), path);
  const dims = num(h, "number of dimensions", path);
  if (dims !== 4) {
    throw new FormatError(
      `${path}: "number of dimensions" is ${dims}; expected 4 (projection data)`,
    );
  }
  const label = (a: number) => (h.get(`matrix axis label[${a}]`) ?? "").toLowerCase();
  if (label(4) !== "segment" || label(1) !== "tangential coordinate") {
    throw new FormatError(
      `${path}: axis labels [4] "${label(4)}", [1] "${label(1)}"; expected "segment" and ` +
        `"tangential coordinate"`,
    );
  }
  const byView = label(3) === "view";
  if (!byView && label(2) !== "view") {
    throw new FormatError(`${path}: no "view" axis at [2] or [3]`);
  }
  const viewAxis = byView ? 3 : 2;
  const axialAxis = byView ? 2 : 3;
  const nSeg = num(h, "matrix size[4]", path);
  const axial = list(need(h, `matrix size[${axialAxis}]`, path), path, "axial sizes");
  const views = num(h, `matrix size[${viewAxis}]`, path);
  const tang = num(h, "matrix size[1]", path);
  const minRd = list(need(h, "minimum ring difference per segment", path), path, "min rd");
  const maxRd = list(need(h, "maximum ring difference per segment", path), path, "max rd");
  if (axial.length !== nSeg || minRd.length !== nSeg || maxRd.length !== nSeg) {
    throw new FormatError(
      `${path}: ${nSeg} segments but ${axial.length} axial sizes and ${minRd.length}/` +
        `${maxRd.length} ring differences`,
    );
  }
  if (minRd.some((v, i) => v !== maxRd[i])) {
    throw new FormatError(
      `${path}: span > 1 (a segment holds several ring differences); petrel reads span-1 data only`,
    );
  }
  const segs = minRd;
  const rings = num(h, "number of rings", path);
  const n = num(h, "number of detectors per ring", path);
  const radiusMm = (num(h, "inner ring diameter (cm)", path) / 2 +
    num(h, "average depth of interaction (cm)", path, 0)) * 10;
  const maxD = Math.max(...segs.map(Math.abs));
  const spec: RingScannerSpec = {
    name: h.get("scanner type") && h.get("scanner type") !== "unknown"
      ? h.get("scanner type")!
      : "Interfile scanner",
    radiusMm,
    crystalsPerRing: n,
    rings,
    ringSpacingMm: num(h, "distance between rings (cm)", path) * 10,
    radialBins: tang,
    maxRingDifference: maxD,
  };
  let scanner: RingScanner;
  try {
    scanner = new RingScanner(spec);
  } catch (e) {
    throw new FormatError(
      `${path}: the header's scanner does not fit petrel's ring scanners: ${(e as Error).message}`,
      { cause: e },
    );
  }
  if (views !== scanner.views) {
    throw new FormatError(
      `${path}: ${views} views but ${n} detectors per ring give ${scanner.views}; view mashing ` +
        `is not supported`,
    );
  }
  const expected = segmentOrder(maxD);
  const seen = [...segs].sort((a, b) => a - b).join(",");
  if (seen !== [...expected].sort((a, b) => a - b).join(",")) {
    throw new FormatError(
      `${path}: segments {${segs.join(",")}} are not the complete span-1 set 0, ±1, …, ±${maxD}`,
    );
  }
  segs.forEach((d, i) => {
    if (axial[i] !== rings - Math.abs(d)) {
      throw new FormatError(
        `${path}: segment ${d} has ${axial[i]} axial positions; expected ${rings - Math.abs(d)}`,
      );
    }
  });
  const total = axial.reduce((a, b) => a + b, 0) * views * tang;
  const dataPath = await resolveData(path, need(h, "name of data file", path));
  // file order, fastest first: tangential, then view/axial as stored, all segments concatenated
  const raw = decodeRaw(h, await readBytes(dataPath), total, dataPath, [total], options);
  // file offset of each segment
  const segStart: number[] = [];
  let o = 0;
  for (let i = 0; i < nSeg; i++) {
    segStart.push(o);
    o += axial[i] * views * tang;
  }
  const out = new Float32Array(scanner.bins);
  let p = 0;
  for (const d of expected) {
    const i = segs.indexOf(d);
    const na = axial[i];
    for (let a = 0; a < na; a++) {
      for (let v = 0; v < views; v++) {
        const src = segStart[i] + (byView ? (v * na + a) * tang : (a * views + v) * tang);
        out.set(raw.subarray(src, src + tang), ((p + a) * views + v) * tang);
      }
    }
    p += na;
  }
  if (options.remap ?? true) {
    const map = stirBinIndex(scanner);
    const c = out.slice();
    for (let i = 0; i < map.length; i++) out[i] = c[map[i]];
  }
  return { data: out, shape: scanner.sinogramShape, scanner, header: h };
}

/**
 * For each bin of petrel's sinogram (flat index, `[radial, views, planes]`), the flat index of
 * the STIR bin with the same detector pair in STIR's SegmentBySinogram layout (segments 0, −1,
 * +1, …; inside a segment by axial position, then view, then tangential position from the most
 * negative). petrel crystal k is STIR detector (k + N/4) mod N. STIR's view v, tangential
 * position t join detectors `d1 = v + ⌊t/2⌋` and `d2 = v − ⌊(t+1)/2⌋ + N/2` (mod N); a pair
 * found as (d2, d1) has its rings swapped; segment = ring(d2) − ring(d1), axial position = the
 * lower ring. A permutation of `0 … bins − 1`.
 *
 * @example
 * ```ts
 * import { mmrLike2d, stirBinIndex } from "@petrel/petrel";
 * const scanner = mmrLike2d();
 * const map = stirBinIndex(scanner);
 * const petrel = new Float32Array(scanner.bins);
 * const stir = new Float32Array(petrel.length);
 * for (let i = 0; i < map.length; i++) stir[map[i]] = petrel[i]; // petrel bin i → STIR bin map[i]
 * ```
 */
export function stirBinIndex(scanner: RingScanner): Uint32Array {
  const s = scanner.spec;
  const n = s.crystalsPerRing;
  const nr = s.radialBins;
  const half = (nr - 1) / 2;
  const views = scanner.views;
  // STIR (view, tangential) of each ordered detector pair d1 * n + d2, swapped pairs marked
  const viewOf = new Int32Array(n * n).fill(-1);
  const tangOf = new Int32Array(n * n);
  const swapped = new Uint8Array(n * n);
  for (let v = 0; v < views; v++) {
    for (let t = -half; t <= half; t++) {
      const d1 = (((v + (t >> 1)) % n) + n) % n;
      const d2 = (((v - ((t + 1) >> 1) + n / 2) % n) + n) % n;
      viewOf[d1 * n + d2] = v;
      tangOf[d1 * n + d2] = t;
      viewOf[d2 * n + d1] = v;
      tangOf[d2 * n + d1] = t;
      swapped[d2 * n + d1] = 1;
    }
  }
  const segs = segmentOrder(s.maxRingDifference);
  const segStart = new Map<number, number>();
  let o = 0;
  for (const d of segs) {
    segStart.set(d, o);
    o += (s.rings - Math.abs(d)) * views * nr;
  }
  const map = new Uint32Array(scanner.bins);
  let i = 0;
  for (const plane of scanner.planes) {
    for (let v = 0; v < views; v++) {
      for (let r = 0; r < nr; r++, i++) {
        const [a, b] = scanner.crystalPair(r, v);
        const key = ((a + n / 4) % n) * n + ((b + n / 4) % n);
        const sv = viewOf[key];
        if (sv < 0) {
          throw new RangeError(`stirBinIndex: no STIR bin for crystals ${a}, ${b} (radial ${r})`);
        }
        // rings of STIR's detector 1 and 2
        const [r1, r2] = swapped[key] ? [plane.ring2, plane.ring1] : [plane.ring1, plane.ring2];
        const seg = r2 - r1;
        const axial = Math.min(r1, r2);
        map[i] = segStart.get(seg)! + (axial * views + sv) * nr + tangOf[key] + half;
      }
    }
  }
  return map;
}
