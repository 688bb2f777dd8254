/**
 * Sinograms with their geometry: the data in a `.npy` or NIfTI file plus a JSON sidecar (same
 * name, `.json`) that says which scanner they belong to, their shape and layout, what they hold
 * (prompts, randoms, attenuation factors, …) and in which units. The sidecar is validated with
 * zod; the format is documented in `docs/formats.md`.
 *
 * Data are `[radial, views, planes]`, radial fastest, planes in petrel's (= STIR's span-1)
 * order: segment 0, −1, +1, −2, +2, …, each segment by axial position (see
 * `core/geometry/scanner.ts`). In a `.npy` file (C order) that is a NumPy array of shape
 * `(planes, views, radial)`.
 *
 * @module
 */

import { z } from "zod";
import { RingScanner, RingScannerSchema, type RingScannerSpec } from "../geometry/scanner.ts";
import { imageGrid } from "../geometry/grid.ts";
import { type TofInput, type TofParameters, tofParameters, TofSchema } from "../geometry/tof.ts";
import {
  dataFileInside,
  type FiniteOptions,
  FormatError,
  gzip,
  readJsonSidecar,
  writeFilesAtomic,
} from "./files.ts";
import { decodeNifti, encodeNifti } from "./nifti.ts";
import { decodeNpy, encodeNpy } from "./npy.ts";
import { readBytes } from "./files.ts";

/**
 * What a sinogram holds.
 *
 * @example
 * ```ts
 * import { SinogramQuantitySchema } from "@petrel/petrel";
 * const quantity = SinogramQuantitySchema.parse("randoms"); // throws for a misspelt quantity
 * ```
 */
export const SinogramQuantitySchema = z.enum([
  "prompts",
  "trues",
  "randoms",
  "scatter",
  "additive",
  "expected",
  "attenuation-factors",
  "attenuation-line-integrals",
  "normalisation-factors",
  "multiplicative-factors",
  "sensitivity",
  "other",
]);

/** What a sinogram holds: measured counts, additive or multiplicative terms, … */
export type SinogramQuantity = z.infer<typeof SinogramQuantitySchema>;

const positiveInt = z.number().int().positive();

/**
 * zod schema of the JSON sidecar of a sinogram (version 1).
 *
 * @example
 * ```ts
 * import { SinogramSidecarSchema } from "@petrel/petrel";
 * const sidecar = SinogramSidecarSchema.parse(JSON.parse(await Deno.readTextFile("in/prompts.json")));
 * console.log(sidecar.quantity, sidecar.dataFile);
 * ```
 */
export const SinogramSidecarSchema = z.object({
  /** Always "petrel-sinogram". */
  format: z.literal("petrel-sinogram"),
  /** Format version (1). */
  version: z.literal(1),
  /** Data file name, relative to the sidecar's folder. */
  dataFile: z.string().min(1),
  /** "npy" or "nifti". */
  dataFormat: z.enum(["npy", "nifti"]),
  /** The scanner (petrel's ring-scanner spec, mm). */
  scanner: RingScannerSchema,
  /** `[radial, views, planes]`, or `[radial, views, planes, tofBins]` for TOF, fastest first. */
  shape: z.union([
    z.tuple([positiveInt, positiveInt, positiveInt]),
    z.tuple([positiveInt, positiveInt, positiveInt, positiveInt]),
  ]),
  /** TOF parameters of a TOF sinogram (then `shape[3]` = `tof.bins`). */
  tof: TofSchema.optional(),
  /** Axis names, fastest first. */
  axes: z.union([
    z.tuple([z.literal("radial"), z.literal("views"), z.literal("planes")]),
    z.tuple([z.literal("radial"), z.literal("views"), z.literal("planes"), z.literal("tof")]),
  ]).default([
    "radial",
    "views",
    "planes",
  ]),
  /** Plane order: STIR span-1 segment order 0, −1, +1, … */
  planeOrder: z.literal("span1-segments-0,-1,+1").default("span1-segments-0,-1,+1"),
  /** What the values are. */
  quantity: SinogramQuantitySchema,
  /** Units of the values, e.g. "counts", "1" (factors), "1/mm" (line integrals of μ in 1/mm). */
  units: z.string().min(1),
  /** Acquisition time of the frame in seconds, if known. */
  frameDurationS: z.number().positive().optional(),
  /** Free text. */
  description: z.string().optional(),
  /** Anything else worth keeping (provenance, seeds, count levels…). */
  extra: z.record(z.string(), z.unknown()).optional(),
});

/** The JSON sidecar of a sinogram. */
export type SinogramSidecar = z.infer<typeof SinogramSidecarSchema>;

/** A sinogram to write. */
export interface SinogramInput {
  /** Values `[radial, views, planes]` (TOF: `[radial, views, planes, tofBins]`), radial fastest. */
  data: ArrayLike<number>;
  /** The scanner (a {@linkcode RingScanner} or its spec). */
  scanner: RingScanner | RingScannerSpec;
  /** TOF parameters: the data are a TOF sinogram with `tof.bins` bins (slowest axis). */
  tof?: TofInput;
  /** What the values are. */
  quantity: SinogramQuantity;
  /** Units; default "counts" for count-like quantities, "1" for factors, "1/mm" for integrals. */
  units?: string;
  /** Frame duration in seconds. */
  frameDurationS?: number;
  /** Free text. */
  description?: string;
  /** Anything else worth keeping (provenance, seeds, count level…). */
  extra?: Record<string, unknown>;
}

/** A sinogram read back. */
export interface Sinogram {
  /** Values `[radial, views, planes]` (TOF: `[…, tofBins]`), radial fastest. */
  data: Float32Array;
  /** `[radial, views, planes]`, or `[radial, views, planes, tofBins]` for a TOF sinogram. */
  shape: [number, number, number] | [number, number, number, number];
  /** TOF parameters (TOF sinograms only), resolved to mm. */
  tof?: TofParameters;
  /** The scanner rebuilt from the sidecar. */
  scanner: RingScanner;
  /** The validated sidecar. */
  sidecar: SinogramSidecar;
}

function defaultUnits(q: SinogramQuantity): string {
  if (q.endsWith("factors")) return "1";
  if (q === "attenuation-line-integrals") return "1/mm";
  if (q === "sensitivity" || q === "other") return "1";
  return "counts";
}

/**
 * Path of the sidecar of a data file: its name with `.npy`/`.nii`/`.nii.gz` replaced by `.json`.
 *
 * @example
 * ```ts
 * import { sidecarPath } from "@petrel/petrel";
 * sidecarPath("out/prompts.nii.gz"); // "out/prompts.json"
 * ```
 */
export function sidecarPath(dataPath: string): string {
  const m = /\.(npy|nii\.gz|nii)$/.exec(dataPath);
  if (!m) {
    throw new RangeError(
      `sinogram data file ${dataPath} must end in .npy, .nii or .nii.gz`,
    );
  }
  return dataPath.slice(0, m.index) + ".json";
}

function baseName(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

function dirName(p: string): string {
  const i = p.lastIndexOf("/");
  return i < 0 ? "." : p.slice(0, i) || "/";
}

function toScanner(s: RingScanner | RingScannerSpec): RingScanner {
  return s instanceof RingScanner ? s : new RingScanner(s);
}

/**
 * Writes a sinogram as `path` (`.npy`, `.nii` or `.nii.gz`) plus its JSON sidecar beside it
 * (same name, `.json`); both files appear together or not at all. Returns the sidecar's path.
 *
 * @example
 * ```ts
 * import { mmrLike2d, writeSinogram } from "@petrel/petrel";
 * const scanner = mmrLike2d();
 * const y = new Float32Array(scanner.bins); // [129 radial, 224 views, 1 plane]
 * await writeSinogram("out/prompts.npy", { data: y, scanner, quantity: "prompts" });
 * ```
 */
export async function writeSinogram(path: string, sinogram: SinogramInput): Promise<string> {
  const scanner = toScanner(sinogram.scanner);
  const nt = sinogram.tof ? tofParameters(sinogram.tof, "writeSinogram: tof").bins : 0;
  const shape: [number, number, number] | [number, number, number, number] = nt
    ? [...scanner.sinogramShape, nt]
    : scanner.sinogramShape;
  if (sinogram.data.length !== scanner.bins * (nt || 1)) {
    throw new RangeError(
      `writeSinogram: the data have ${sinogram.data.length} values but scanner ` +
        `"${scanner.spec.name}" has ${scanner.bins * (nt || 1)} bins (shape ` +
        `${nt ? "[radial, views, planes, tofBins]" : "[radial, views, planes]"} = ` +
        `${JSON.stringify(shape)})`,
    );
  }
  const jsonPath = sidecarPath(path);
  const dataFormat = path.endsWith(".npy") ? "npy" : "nifti";
  const sidecar: SinogramSidecar = SinogramSidecarSchema.parse({
    format: "petrel-sinogram",
    version: 1,
    dataFile: baseName(path),
    dataFormat,
    scanner: scanner.spec,
    shape,
    ...(nt ? { tof: sinogram.tof, axes: ["radial", "views", "planes", "tof"] } : {}),
    quantity: sinogram.quantity,
    units: sinogram.units ?? defaultUnits(sinogram.quantity),
    frameDurationS: sinogram.frameDurationS,
    description: sinogram.description,
    extra: sinogram.extra,
  });
  let bytes: Uint8Array;
  if (dataFormat === "npy") {
    bytes = encodeNpy({ data: sinogram.data, shape });
  } else {
    // unit "voxels": a sinogram has no spatial grid; the sidecar carries the geometry
    if (nt) throw new RangeError("writeSinogram: TOF sinograms are written as .npy only");
    const grid = imageGrid({
      shape: shape as [number, number, number],
      voxelSizeMm: [1, 1, 1],
      originMm: [0, 0, 0],
    });
    bytes = encodeNifti({ data: sinogram.data, grid }, {
      description: `petrel sinogram: ${sinogram.quantity}`,
    });
    if (path.endsWith(".gz")) bytes = gzip(bytes);
  }
  await writeFilesAtomic([
    { path, data: bytes },
    { path: jsonPath, data: JSON.stringify(sidecar, null, 2) + "\n" },
  ]);
  return jsonPath;
}

/** Options of {@linkcode readSinogram}. */
export type SinogramReadOptions = FiniteOptions;

/**
 * Reads a sinogram from its JSON sidecar or its data file (the sidecar is then found beside
 * it), validating the sidecar and checking that the data's shape matches the scanner. The data
 * file must lie in the sidecar's folder, and NaN/Inf values are refused (naming the file, the
 * count and the first bin) unless `options.allowNonFinite`.
 *
 * @example
 * ```ts
 * const { data, scanner } = await readSinogram("in/prompts.npy");
 * ```
 */
export async function readSinogram(
  path: string,
  options: SinogramReadOptions = {},
): Promise<Sinogram> {
  const jsonPath = path.endsWith(".json") ? path : sidecarPath(path);
  const { sidecar, raw } = await readJsonSidecar(jsonPath, SinogramSidecarSchema, "sinogram");
  let scanner: RingScanner;
  try {
    scanner = new RingScanner(sidecar.scanner);
  } catch (e) {
    throw new FormatError(`${jsonPath}: invalid scanner: ${(e as Error).message}`, { cause: e });
  }
  let tof: TofParameters | undefined;
  try {
    tof = sidecar.tof && tofParameters(sidecar.tof, "tof");
  } catch (e) {
    throw new FormatError(`${jsonPath}: invalid TOF parameters: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const expected: [number, number, number] | [number, number, number, number] = tof
    ? [...scanner.sinogramShape, tof.bins]
    : scanner.sinogramShape;
  const layout = tof ? "[radial, views, planes, tofBins]" : "[radial, views, planes]";
  if (
    sidecar.shape.length !== expected.length || sidecar.shape.some((n, a) => n !== expected[a]) ||
    // "axes" may be left out (its default names three axes), but not contradict the shape
    ((raw as { axes?: unknown }).axes !== undefined && sidecar.axes.length !== expected.length)
  ) {
    throw new FormatError(
      `${jsonPath}: shape ${JSON.stringify(sidecar.shape)} (axes ${
        JSON.stringify(sidecar.axes)
      }) does not match the scanner's sinogram ${JSON.stringify(expected)} (${layout}${
        !tof && sidecar.shape.length === 4 ? '; a 4-D shape needs a "tof" block' : ""
      })`,
    );
  }
  // Checked after following ".." and links: a sidecar cannot point the reader at other files.
  await dataFileInside(jsonPath, sidecar.dataFile);
  const dataPath = `${dirName(jsonPath)}/${sidecar.dataFile}`;
  const bytes = await readBytes(dataPath);
  let data: Float32Array;
  let shape: number[];
  if (sidecar.dataFormat === "npy") {
    const a = decodeNpy(bytes, dataPath, options);
    data = a.data;
    shape = a.shape;
  } else {
    const im = decodeNifti(bytes, dataPath, options);
    data = im.data;
    shape = im.shape;
  }
  while (shape.length < expected.length) shape.push(1);
  while (shape.length > expected.length && shape[shape.length - 1] === 1) shape.pop();
  if (shape.length !== expected.length || shape.some((n, a) => n !== expected[a])) {
    throw new FormatError(
      `${dataPath}: data shape ${JSON.stringify(shape)} (fastest first) does not match the ` +
        `sidecar's ${JSON.stringify(expected)} (${layout})`,
    );
  }
  return { data, shape: expected, scanner, sidecar, ...(tof ? { tof } : {}) };
}
