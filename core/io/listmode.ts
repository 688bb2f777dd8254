/**
 * List-mode events: a structured `.npy` table (one record per coincidence) plus a JSON sidecar
 * (same name, `.json`) with the scanner and the TOF parameters; the mapping of crystal-pair
 * events onto a scanner's sinogram LORs; and histogramming into (TOF) sinograms.
 *
 * Record fields (any subset that makes sense; see `docs/formats.md`):
 * - `crystal1, ring1, crystal2, ring2` (integers): the two crystals, or
 * - `x1, y1, z1, x2, y2, z2` (floats, mm): the two end points;
 * - `tof_bin` (integer, 0-based like the TOF axis of a TOF sinogram) or `tof_mm` (float, the
 *   continuous TOF position in mm from the LOR midpoint towards end point 2);
 * - `prompt` (u1/bool: 1 prompt, 0 delayed).
 *
 * @module
 */

import { z } from "zod";
import type { LorSet } from "../geometry/lors.ts";
import { RingScanner, RingScannerSchema, type RingScannerSpec } from "../geometry/scanner.ts";
import { type TofInput, type TofParameters, tofParameters, TofSchema } from "../geometry/tof.ts";
import {
  dataFileInside,
  FormatError,
  readBytes,
  readJsonSidecar,
  writeFilesAtomic,
} from "./files.ts";

/**
 * A table of list-mode events (host arrays, one entry per event).
 *
 * @example
 * ```ts
 * import type { ListModeEvents } from "@petrel/petrel";
 * // crystal-pair form: two prompts and one delayed, with TOF bins
 * const pairs: ListModeEvents = {
 *   count: 3,
 *   crystals: {
 *     crystal1: Int32Array.of(0, 17, 100), ring1: Int32Array.of(0, 3, 7),
 *     crystal2: Int32Array.of(224, 250, 330), ring2: Int32Array.of(1, 3, 6),
 *   },
 *   tofBin: Int32Array.of(6, 8, 6),
 *   prompt: Uint8Array.of(1, 1, 0),
 * };
 * // end-point form: x1, y1, z1, x2, y2, z2 per event (mm), continuous TOF positions
 * const points: ListModeEvents = {
 *   count: 1,
 *   endpoints: Float32Array.of(0, -330, 0, 0, 330, 0),
 *   tofMm: Float32Array.of(12.5),
 * };
 * ```
 */
export interface ListModeEvents {
  /** Number of events. */
  count: number;
  /** Crystal-pair form: crystal index in its ring and ring index of both ends. */
  crystals?: {
    crystal1: Int32Array;
    ring1: Int32Array;
    crystal2: Int32Array;
    ring2: Int32Array;
  };
  /** End-point form: `x1, y1, z1, x2, y2, z2` per event (mm). */
  endpoints?: Float32Array;
  /** TOF bin per event (0-based, as the TOF axis of the sinogram). */
  tofBin?: Int32Array;
  /** Continuous TOF position per event (mm from the LOR midpoint towards end 2). */
  tofMm?: Float32Array;
  /** 1 for a prompt, 0 for a delayed coincidence (absent: all prompts). */
  prompt?: Uint8Array;
}

type Field = {
  name: string;
  code: string;
};

const INT_FIELDS = ["crystal1", "ring1", "crystal2", "ring2"] as const;
const XYZ_FIELDS = ["x1", "y1", "z1", "x2", "y2", "z2"] as const;

/** The record layout petrel writes for `events` (packed, little-endian). */
function layout(events: ListModeEvents): Field[] {
  const f: Field[] = [];
  if (events.crystals) { for (const n of INT_FIELDS) f.push({ name: n, code: "<i4" }); }
  if (events.endpoints) { for (const n of XYZ_FIELDS) f.push({ name: n, code: "<f4" }); }
  if (events.tofBin) f.push({ name: "tof_bin", code: "<i2" });
  if (events.tofMm) f.push({ name: "tof_mm", code: "<f4" });
  if (events.prompt) f.push({ name: "prompt", code: "|u1" });
  return f;
}

const SIZES: Record<string, number> = {
  i1: 1,
  u1: 1,
  b1: 1,
  i2: 2,
  u2: 2,
  i4: 4,
  u4: 4,
  f4: 4,
  f8: 8,
};

function checkEvents(events: ListModeEvents, what: string): void {
  const n = events.count;
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${what}: bad event count ${n}`);
  if (!events.crystals === !events.endpoints) {
    throw new RangeError(`${what}: give exactly one of crystals and endpoints`);
  }
  const len = (a: ArrayLike<number> | undefined, k: number, name: string) => {
    if (a && a.length !== k * n) {
      throw new RangeError(`${what}: ${name} has ${a.length} values, expected ${k * n}`);
    }
  };
  if (events.crystals) { for (const f of INT_FIELDS) len(events.crystals[f], 1, f); }
  len(events.endpoints, 6, "endpoints");
  len(events.tofBin, 1, "tofBin");
  len(events.tofMm, 1, "tofMm");
  len(events.prompt, 1, "prompt");
  if (events.tofBin && events.tofMm) {
    throw new RangeError(`${what}: give at most one of tofBin and tofMm`);
  }
}

/**
 * Encodes events as a structured `.npy` (NumPy: `np.load(f)["tof_bin"]` etc.).
 *
 * @example
 * ```ts
 * const bytes = encodeListMode({ count: 1, endpoints: Float32Array.of(0, -300, 0, 0, 300, 0) });
 * ```
 */
export function encodeListMode(events: ListModeEvents): Uint8Array {
  checkEvents(events, "encodeListMode");
  const fields = layout(events);
  const rec = fields.reduce((a, f) => a + SIZES[f.code.slice(1)], 0);
  const descr = fields.map((f) => `('${f.name}', '${f.code}')`).join(", ");
  let header = `{'descr': [${descr}], 'fortran_order': False, 'shape': (${events.count},), }`;
  header += " ".repeat((64 - ((10 + header.length + 1) % 64)) % 64) + "\n";
  if (header.length > 65535) throw new RangeError("encodeListMode: header too long");
  const n = events.count;
  const out = new Uint8Array(10 + header.length + n * rec);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  const dv = new DataView(out.buffer);
  dv.setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  let off = 10 + header.length;
  for (let e = 0; e < n; e++) {
    if (events.crystals) {
      for (const f of INT_FIELDS) {
        dv.setInt32(off, events.crystals[f][e], true);
        off += 4;
      }
    }
    if (events.endpoints) {
      for (let k = 0; k < 6; k++) {
        dv.setFloat32(off, events.endpoints[6 * e + k], true);
        off += 4;
      }
    }
    if (events.tofBin) {
      const t = events.tofBin[e];
      if (t < -32768 || t > 32767) {
        throw new RangeError(`encodeListMode: tofBin ${t} exceeds int16`);
      }
      dv.setInt16(off, t, true);
      off += 2;
    }
    if (events.tofMm) {
      dv.setFloat32(off, events.tofMm[e], true);
      off += 4;
    }
    if (events.prompt) out[off++] = events.prompt[e];
  }
  return out;
}

/** Decodes a structured `.npy` of events (fields as in the module notes; any int/float width). *
 * @example
 * ```ts
 * const events = decodeListMode(await Deno.readFile("events.npy"));
 * ```
 */
export function decodeListMode(bytes: Uint8Array, what = "list-mode"): ListModeEvents {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((m, i) => bytes[i] !== m)) {
    throw new FormatError(`${what}: not a .npy file (missing the \\x93NUMPY magic)`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  const hstart = major === 1 ? 10 : 12;
  if (major < 1 || major > 3 || bytes.length < hstart) {
    throw new FormatError(`${what}: unsupported .npy version ${major}`);
  }
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  if (bytes.length < hstart + hlen) throw new FormatError(`${what}: truncated .npy header`);
  const text = new TextDecoder("latin1").decode(bytes.subarray(hstart, hstart + hlen));
  const descr = /'descr'\s*:\s*\[(.*)\]\s*,/.exec(text);
  const shape = /'shape'\s*:\s*\(\s*(\d+)\s*,?\s*\)/.exec(text);
  if (!descr || !shape || /'fortran_order'\s*:\s*True/.test(text)) {
    throw new FormatError(
      `${what}: expected a 1-D structured .npy (a list of named fields), got the header ${text.trim()}`,
    );
  }
  const fields: { name: string; le: boolean; kind: string; size: number; offset: number }[] = [];
  let rec = 0;
  const re = /\(\s*'(\w+)'\s*,\s*'([<>|=]?)([a-z])(\d+)'\s*\)/g;
  for (let m = re.exec(descr[1]); m; m = re.exec(descr[1])) {
    const size = SIZES[`${m[3]}${m[4]}`];
    if (!size) throw new FormatError(`${what}: field ${m[1]} has unsupported type ${m[3]}${m[4]}`);
    fields.push({ name: m[1], le: m[2] !== ">", kind: m[3], size, offset: rec });
    rec += size;
  }
  const n = Number(shape[1]);
  const start = hstart + hlen;
  if (bytes.length < start + n * rec) {
    throw new FormatError(
      `${what}: truncated: ${n} records of ${rec} bytes need ${
        start + n * rec
      } bytes, the file holds ${bytes.length}`,
    );
  }
  const get = (name: string) => fields.find((f) => f.name === name);
  const read = (f: (typeof fields)[number], e: number): number => {
    const o = start + e * rec + f.offset;
    switch (`${f.kind}${f.size}`) {
      case "i1":
        return dv.getInt8(o);
      case "u1":
      case "b1":
        return dv.getUint8(o);
      case "i2":
        return dv.getInt16(o, f.le);
      case "u2":
        return dv.getUint16(o, f.le);
      case "i4":
        return dv.getInt32(o, f.le);
      case "u4":
        return dv.getUint32(o, f.le);
      case "f4":
        return dv.getFloat32(o, f.le);
      default:
        return dv.getFloat64(o, f.le);
    }
  };
  const column = <T extends Int32Array | Float32Array | Uint8Array>(
    name: string,
    make: (n: number) => T,
  ): T | undefined => {
    const f = get(name);
    if (!f) return undefined;
    const a = make(n);
    for (let e = 0; e < n; e++) {
      const v = read(f, e);
      if (!Number.isFinite(v)) {
        throw new FormatError(
          `${what}: field ${name} of event ${e} is ${v}; values must be finite`,
        );
      }
      a[e] = v;
    }
    return a;
  };
  const events: ListModeEvents = { count: n };
  if (INT_FIELDS.every((f) => get(f))) {
    const c = (f: string) => column(f, (k) => new Int32Array(k))!;
    events.crystals = {
      crystal1: c("crystal1"),
      ring1: c("ring1"),
      crystal2: c("crystal2"),
      ring2: c("ring2"),
    };
  } else if (XYZ_FIELDS.every((f) => get(f))) {
    const e = new Float32Array(6 * n);
    XYZ_FIELDS.forEach((name, k) => {
      const col = column(name, (m) => new Float32Array(m))!;
      for (let i = 0; i < n; i++) e[6 * i + k] = col[i];
    });
    events.endpoints = e;
  } else {
    throw new FormatError(
      `${what}: the records need crystal1, ring1, crystal2, ring2 or x1, y1, z1, x2, y2, z2; found ${
        fields.map((f) => f.name).join(", ")
      }`,
    );
  }
  events.tofBin = column("tof_bin", (k) => new Int32Array(k));
  events.tofMm = column("tof_mm", (k) => new Float32Array(k));
  events.prompt = column("prompt", (k) => new Uint8Array(k));
  for (const k of ["tofBin", "tofMm", "prompt"] as const) if (!events[k]) delete events[k];
  checkEvents(events, what);
  return events;
}

/**
 * zod schema of the list-mode sidecar.
 *
 * @example
 * ```ts
 * import { ListModeSidecarSchema } from "@petrel/petrel";
 * const sidecar = ListModeSidecarSchema.parse(JSON.parse(await Deno.readTextFile("in/events.json")));
 * console.log(sidecar.eventCount, sidecar.tof?.fwhmPs);
 * ```
 */
export const ListModeSidecarSchema = z.object({
  format: z.literal("petrel-listmode"),
  version: z.literal(1),
  /** The `.npy` file of the records, in the sidecar's folder. */
  dataFile: z.string().min(1),
  /** Number of records. */
  eventCount: z.number().int().nonnegative(),
  /** The scanner (needed for crystal-pair events). */
  scanner: RingScannerSchema.optional(),
  /** TOF parameters (needed when events carry tof_bin or tof_mm). */
  tof: TofSchema.optional(),
  /** Frame duration in seconds. */
  frameDurationS: z.number().positive().optional(),
  description: z.string().optional(),
  extra: z.record(z.string(), z.unknown()).optional(),
});

/** The JSON sidecar of a list-mode file. */
export type ListModeSidecar = z.infer<typeof ListModeSidecarSchema>;

/** List-mode data read back. */
export interface ListMode {
  events: ListModeEvents;
  scanner?: RingScanner;
  tof?: TofParameters;
  sidecar: ListModeSidecar;
}

/**
 * Writes events as `path` (`.npy`) plus the JSON sidecar beside it (both or neither). Returns the
 * sidecar's path.
 *
 * @example
 * ```ts
 * import { mmrLike2d, writeListMode } from "@petrel/petrel";
 * const scanner = mmrLike2d();
 * // two prompts between crystals 0–224 and 10–230 of ring 0, TOF bins 8 and 5
 * const events = {
 *   count: 2,
 *   crystals: {
 *     crystal1: Int32Array.of(0, 10), ring1: Int32Array.of(0, 0),
 *     crystal2: Int32Array.of(224, 230), ring2: Int32Array.of(0, 0),
 *   },
 *   tofBin: Int32Array.of(8, 5),
 * };
 * await writeListMode("out/events.npy", { events, scanner, tof: { bins: 17, binWidthMm: 24, fwhmPs: 400 } });
 * ```
 */
export async function writeListMode(
  path: string,
  data: {
    events: ListModeEvents;
    scanner?: RingScanner | RingScannerSpec;
    tof?: TofInput;
    frameDurationS?: number;
    description?: string;
    extra?: Record<string, unknown>;
  },
): Promise<string> {
  if (!path.endsWith(".npy")) throw new RangeError(`writeListMode: ${path} must end in .npy`);
  const ev = data.events;
  if (ev.crystals && !data.scanner) {
    throw new RangeError("writeListMode: crystal-pair events need the scanner in the sidecar");
  }
  if ((ev.tofBin || ev.tofMm) && !data.tof) {
    throw new RangeError("writeListMode: events with TOF need the TOF parameters in the sidecar");
  }
  if (data.tof) tofParameters(data.tof, "writeListMode: tof");
  const scanner = data.scanner instanceof RingScanner
    ? data.scanner.spec
    : data.scanner && new RingScanner(data.scanner).spec;
  const jsonPath = path.slice(0, -4) + ".json";
  const sidecar = ListModeSidecarSchema.parse({
    format: "petrel-listmode",
    version: 1,
    dataFile: path.slice(path.lastIndexOf("/") + 1),
    eventCount: ev.count,
    scanner,
    tof: data.tof,
    frameDurationS: data.frameDurationS,
    description: data.description,
    extra: data.extra,
  });
  await writeFilesAtomic([
    { path, data: encodeListMode(ev) },
    { path: jsonPath, data: JSON.stringify(sidecar, null, 2) + "\n" },
  ]);
  return jsonPath;
}

/**
 * Reads list-mode data from its sidecar or `.npy` (the other found beside it), validating the
 * sidecar, the record fields, the event count and crystal/ring/TOF ranges.
 *
 * @example
 * ```ts
 * const { events, scanner, tof } = await readListMode("in/events.npy");
 * ```
 */
export async function readListMode(path: string): Promise<ListMode> {
  const jsonPath = path.endsWith(".json") ? path : path.replace(/\.npy$/, ".json");
  if (jsonPath === path && !path.endsWith(".json")) {
    throw new RangeError(`readListMode: ${path} must end in .npy or .json`);
  }
  const { sidecar } = await readJsonSidecar(jsonPath, ListModeSidecarSchema, "list-mode");
  let scanner: RingScanner | undefined;
  let tof: TofParameters | undefined;
  try {
    scanner = sidecar.scanner && new RingScanner(sidecar.scanner);
    tof = sidecar.tof && tofParameters(sidecar.tof, "tof");
  } catch (e) {
    throw new FormatError(`${jsonPath}: ${(e as Error).message}`, { cause: e });
  }
  const dataPath = await dataFileInside(jsonPath, sidecar.dataFile);
  const events = decodeListMode(await readBytes(dataPath), dataPath);
  if (events.count !== sidecar.eventCount) {
    throw new FormatError(
      `${dataPath}: holds ${events.count} events but the sidecar says ${sidecar.eventCount}`,
    );
  }
  if (events.crystals) {
    if (!scanner) throw new FormatError(`${jsonPath}: crystal-pair events need a "scanner"`);
    checkCrystals(scanner, events, dataPath);
  }
  if ((events.tofBin || events.tofMm) && !tof) {
    throw new FormatError(`${jsonPath}: the events carry TOF but the sidecar has no "tof" block`);
  }
  if (events.tofBin && tof) {
    const bad = events.tofBin.findIndex((t) => t < 0 || t >= tof!.bins);
    if (bad >= 0) {
      throw new FormatError(
        `${dataPath}: event ${bad} has tof_bin ${events.tofBin[bad]} outside 0 … ${tof.bins - 1}`,
      );
    }
  }
  return { events, scanner, tof, sidecar };
}

function checkCrystals(scanner: RingScanner, events: ListModeEvents, what: string): void {
  const c = events.crystals!;
  const nc = scanner.spec.crystalsPerRing, nr = scanner.spec.rings;
  for (let e = 0; e < events.count; e++) {
    for (const [cr, rg] of [[c.crystal1[e], c.ring1[e]], [c.crystal2[e], c.ring2[e]]]) {
      if (!(cr >= 0 && cr < nc && rg >= 0 && rg < nr)) {
        throw new FormatError(
          `${what}: event ${e} has crystal ${cr} / ring ${rg}; the scanner has crystals 0 … ${
            nc - 1
          } and rings 0 … ${nr - 1}`,
        );
      }
    }
  }
}

/** Events mapped onto a scanner's sinogram LORs (see {@linkcode listModeGeometry}). */
export interface ListModeGeometry {
  /** Event LORs (start → end point, mm), oriented as the sinogram LOR of the event's bin. */
  lors: LorSet;
  /** Non-TOF sinogram bin of each event (−1: not in the sinogram, e.g. trimmed radially). */
  sinogramBins: Int32Array;
  /** TOF bin per event in the LOR's orientation (fractional for continuous positions). */
  tofBins?: Float32Array;
  /** Extra TOF centre offset per event (mm; non-zero only for reversed events with an offset). */
  tofOffsetsMm?: Float32Array;
  /** True for events whose crystals were given in the opposite order to the sinogram LOR. */
  reversed: Uint8Array;
}

/**
 * Maps crystal-pair events onto `scanner`'s sinogram: each event gets the LOR of its sinogram bin
 * (bit-identical to `scanner.lors()`), its bin index, and its TOF bin in that LOR's orientation
 * (an event recorded from the other crystal end has its TOF coordinate negated). End-point
 * events keep their LORs (no sinogram bins).
 *
 * @example
 * ```ts
 * import { listModeGeometry, mmrLike2d, readListMode } from "@petrel/petrel";
 * const { events, scanner, tof } = await readListMode("in/events.npy");
 * const g = listModeGeometry(scanner ?? mmrLike2d(), events, tof);
 * g.lors.count === events.count;
 * ```
 */
export function listModeGeometry(
  scanner: RingScanner | null,
  events: ListModeEvents,
  tof?: TofParameters,
): ListModeGeometry {
  checkEvents(events, "listModeGeometry");
  const n = events.count;
  if ((events.tofBin || events.tofMm) && !tof) {
    throw new RangeError("listModeGeometry: the events carry TOF; pass the TOF parameters");
  }
  const reversed = new Uint8Array(n);
  const sinogramBins = new Int32Array(n).fill(-1);
  let endpoints: Float32Array;
  if (events.crystals) {
    if (!scanner) throw new RangeError("listModeGeometry: crystal-pair events need a scanner");
    checkCrystals(scanner, events, "listModeGeometry");
    const { table, planeOf } = sinogramTables(scanner);
    const nc = scanner.spec.crystalsPerRing, nr = scanner.spec.rings;
    const nrad = scanner.radialBins, nv = scanner.views;
    const c = events.crystals;
    const xy = scanner.crystalXY;
    endpoints = new Float32Array(6 * n);
    for (let e = 0; e < n; e++) {
      const code = table[c.crystal1[e] * nc + c.crystal2[e]];
      const rev = code >= 0 && (code & 1) === 1;
      // canonical order: crystal a (ring1 of the plane) → crystal b (ring2)
      const [ca, ra, cb, rb] = rev
        ? [c.crystal2[e], c.ring2[e], c.crystal1[e], c.ring1[e]]
        : [c.crystal1[e], c.ring1[e], c.crystal2[e], c.ring2[e]];
      reversed[e] = rev ? 1 : 0;
      const p = planeOf[ra * nr + rb];
      if (code >= 0 && p >= 0) {
        const rv = code >> 1; // radial + nrad · view
        sinogramBins[e] = rv + nrad * nv * p;
        const plane = scanner.planes[p];
        endpoints.set([
          xy[2 * ca],
          xy[2 * ca + 1],
          scanner.ringZ(plane.ring1),
          xy[2 * cb],
          xy[2 * cb + 1],
          scanner.ringZ(plane.ring2),
        ], 6 * e);
      } else {
        endpoints.set([
          xy[2 * ca],
          xy[2 * ca + 1],
          scanner.ringZ(ra),
          xy[2 * cb],
          xy[2 * cb + 1],
          scanner.ringZ(rb),
        ], 6 * e);
      }
    }
  } else endpoints = Float32Array.from(events.endpoints!);
  let tofBins: Float32Array | undefined;
  let tofOffsetsMm: Float32Array | undefined;
  if (tof && (events.tofBin || events.tofMm)) {
    tofBins = new Float32Array(n);
    const c = tof.centreOffsetMm;
    for (let e = 0; e < n; e++) {
      const rev = reversed[e] === 1;
      if (events.tofBin) {
        const t = events.tofBin[e];
        tofBins[e] = rev ? tof.bins - 1 - t : t;
        if (rev && c !== 0) {
          // bin nt−1−t of the reversed LOR is centred at −(centre of t) only with offset −c
          tofOffsetsMm ??= new Float32Array(n);
          tofOffsetsMm[e] = -2 * c;
        }
      } else {
        const pos = rev ? -events.tofMm![e] : events.tofMm![e];
        tofBins[e] = (pos - c) / tof.binWidthMm + (tof.bins - 1) / 2;
      }
    }
  }
  return {
    lors: { count: n, endpoints, shape: [n] },
    sinogramBins,
    tofBins,
    tofOffsetsMm,
    reversed,
  };
}

const tableCache = new WeakMap<RingScanner, { table: Int32Array; planeOf: Int32Array }>();

/** Crystal pair → (radial + nrad·view)·2 + reversed, and ring pair → plane index. */
function sinogramTables(scanner: RingScanner): { table: Int32Array; planeOf: Int32Array } {
  let t = tableCache.get(scanner);
  if (t) return t;
  const nc = scanner.spec.crystalsPerRing, nr = scanner.spec.rings;
  const table = new Int32Array(nc * nc).fill(-1);
  for (let v = 0; v < scanner.views; v++) {
    for (let r = 0; r < scanner.radialBins; r++) {
      const [a, b] = scanner.crystalPair(r, v);
      const rv = r + scanner.radialBins * v;
      table[a * nc + b] = 2 * rv;
      table[b * nc + a] = 2 * rv + 1;
    }
  }
  const planeOf = new Int32Array(nr * nr).fill(-1);
  scanner.planes.forEach((p, i) => planeOf[p.ring1 * nr + p.ring2] = i);
  t = { table, planeOf };
  tableCache.set(scanner, t);
  return t;
}

/** Options of {@linkcode histogramListMode}. */
export interface HistogramOptions {
  /** TOF parameters: histogram into a TOF sinogram `[radial, views, planes, tofBins]`. */
  tof?: TofParameters;
  /** Which events: prompts (default), delayeds or all. */
  select?: "prompts" | "delayeds" | "all";
}

/**
 * Histograms crystal-pair events into `scanner`'s sinogram (or TOF sinogram with
 * `options.tof`; continuous TOF positions go to the nearest bin). Events outside the sinogram
 * (trimmed radial bins, ring differences beyond the maximum, TOF outside the bins) are counted in
 * `dropped`.
 *
 * @example
 * ```ts
 * import { histogramListMode, mmrLike2d, readListMode } from "@petrel/petrel";
 * const { events, scanner, tof } = await readListMode("in/events.npy");
 * const { data, dropped } = histogramListMode(scanner ?? mmrLike2d(), events, { tof });
 * ```
 */
export function histogramListMode(
  scanner: RingScanner,
  events: ListModeEvents,
  options: HistogramOptions = {},
): { data: Float32Array; dropped: number } {
  const tof = options.tof;
  // Without TOF parameters the events' TOF is ignored (a non-TOF histogram).
  const g = listModeGeometry(
    scanner,
    tof ? events : { ...events, tofBin: undefined, tofMm: undefined },
    tof,
  );
  const nb = scanner.bins;
  const nt = tof ? tof.bins : 1;
  if (tof && !g.tofBins) {
    throw new RangeError("histogramListMode: TOF histogramming needs events with tofBin or tofMm");
  }
  if (g.tofOffsetsMm) {
    throw new RangeError(
      "histogramListMode: events recorded in the reversed crystal order cannot be binned into a TOF sinogram with a non-zero centre offset",
    );
  }
  const data = new Float32Array(nb * nt);
  const sel = options.select ?? "prompts";
  let dropped = 0;
  for (let e = 0; e < events.count; e++) {
    const p = events.prompt ? events.prompt[e] : 1;
    if ((sel === "prompts" && !p) || (sel === "delayeds" && p)) continue;
    const b = g.sinogramBins[e];
    const t = g.tofBins ? Math.round(g.tofBins[e]) : 0;
    if (b < 0 || t < 0 || t >= nt) {
      dropped++;
      continue;
    }
    data[b + nb * t]++;
  }
  return { data, dropped };
}
