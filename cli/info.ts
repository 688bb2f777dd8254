/**
 * `petrel info`: what a file holds (NIfTI, .npy, raw float32, provenance manifest): shape
 * (fastest axis first), geometry, value statistics and sha256.
 *
 * @module
 */

import { decodeNifti } from "../core/io/nifti.ts";
import { decodeNpy } from "../core/io/npy.ts";
import { readSinogram, sidecarPath, type Sinogram } from "../core/io/sinogram.ts";
import { readInterfileImage, readInterfileSinogram } from "../core/io/interfile.ts";
import type { RingScanner } from "../core/geometry/scanner.ts";
import { sha256Bytes } from "../core/runtime/hash.ts";
import { ManifestSchema } from "../core/runtime/manifest.ts";

// info reports NaN counts rather than refusing files that hold them
const INSPECT = { allowNonFinite: true } as const;

/** Summary statistics of an array (NaNs counted apart). */
export interface ValueStats {
  count: number;
  min: number;
  max: number;
  mean: number;
  std: number;
  sum: number;
  nonzero: number;
  nan: number;
}

/** What {@linkcode describeFile} finds. */
export interface FileInfo {
  path: string;
  bytes: number;
  sha256: string;
  format: "nifti" | "npy" | "f32" | "interfile" | "sinogram-sidecar" | "manifest" | "unknown";
  /** Shape, fastest axis first. */
  shape?: number[];
  /** Stored element type. */
  dtype?: string;
  /** Image geometry (NIfTI): voxel size and origin (centre of voxel 0) in mm. */
  grid?: { voxelSizeMm: number[]; originMm: number[]; affineSource: string; axisAligned: boolean };
  /** A hint on how petrel reads the axes (e.g. sinogram `[radial, views, planes]`). */
  layout?: string;
  stats?: ValueStats;
  /** For sinograms (JSON sidecar beside the data, or Interfile `.hs`): scanner and quantity. */
  sinogram?: {
    quantity: string;
    units: string;
    scanner: {
      name: string;
      radiusMm: number;
      crystalsPerRing: number;
      rings: number;
      ringSpacingMm: number;
      radialBins: number;
      maxRingDifference: number;
      sides?: number;
      views: number;
      planes: number;
    };
  };
  /** For manifests: the recorded run. */
  manifest?: {
    recipe: string;
    ok: boolean;
    reason?: string;
    seed: number;
    params: Record<string, unknown>;
    outputs: number;
    adapter: string | null;
    totalMs: number;
  };
}

/** Statistics of `data` (float64 accumulation). */
export function valueStats(data: ArrayLike<number>): ValueStats {
  let min = Infinity, max = -Infinity, sum = 0, sq = 0, nonzero = 0, nan = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (Number.isNaN(v)) {
      nan++;
      continue;
    }
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
    if (v !== 0) nonzero++;
  }
  const n = data.length - nan;
  const mean = n ? sum / n : NaN;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isNaN(v)) sq += (v - mean) * (v - mean);
  }
  return {
    count: data.length,
    min: n ? min : NaN,
    max: n ? max : NaN,
    mean,
    std: n ? Math.sqrt(sq / n) : NaN,
    sum,
    nonzero,
    nan,
  };
}

function layoutHint(shape: number[]): string {
  if (shape.length === 3 && shape[0] % 2 === 1 && shape[1] % 2 === 0 && shape[0] !== shape[1]) {
    return "sinogram? [radial, views, planes] (odd radial bins, even views)";
  }
  return shape.length >= 3 ? "image [nx, ny, nz] (x fastest)" : `${shape.length}-D array`;
}

function scannerInfo(scanner: RingScanner, quantity: string, units: string): FileInfo["sinogram"] {
  const s = scanner.spec;
  return {
    quantity,
    units,
    scanner: {
      name: s.name,
      radiusMm: s.radiusMm,
      crystalsPerRing: s.crystalsPerRing,
      rings: s.rings,
      ringSpacingMm: s.ringSpacingMm,
      radialBins: s.radialBins,
      maxRingDifference: s.maxRingDifference,
      ...(s.sides ? { sides: s.sides } : {}),
      views: scanner.views,
      planes: scanner.planes.length,
    },
  };
}

async function sidecarOf(path: string): Promise<Sinogram | null> {
  let side: string;
  try {
    side = sidecarPath(path);
    await Deno.stat(side);
  } catch {
    return null;
  }
  return await readSinogram(path, INSPECT);
}

/** Reads `path` and describes it. Throws (FormatError from core/io) on malformed files. */
export async function describeFile(path: string): Promise<FileInfo> {
  const info = await describeData(path);
  if (info.format === "npy" || info.format === "nifti") {
    const sino = await sidecarOf(path);
    if (sino) {
      info.sinogram = scannerInfo(sino.scanner, sino.sidecar.quantity, sino.sidecar.units);
      info.layout =
        "sinogram [radial, views, planes] (radial fastest; planes in segment order 0, −1, +1, …)";
      delete info.grid;
    }
  }
  return info;
}

async function describeData(path: string): Promise<FileInfo> {
  const bytes = await Deno.readFile(path);
  const base: FileInfo = {
    path,
    bytes: bytes.byteLength,
    sha256: sha256Bytes(bytes),
    format: "unknown",
  };
  if (/\.nii(\.gz)?$/i.test(path)) {
    const img = decodeNifti(bytes, path, INSPECT);
    return {
      ...base,
      format: "nifti",
      shape: img.shape,
      dtype: img.header.dtype,
      grid: {
        voxelSizeMm: [...img.grid.voxelSizeMm],
        originMm: [...img.grid.originMm],
        affineSource: img.affineSource,
        axisAligned: img.axisAligned,
      },
      layout: "image [nx, ny, nz] (x fastest)",
      stats: valueStats(img.data),
    };
  }
  if (/\.npy$/i.test(path)) {
    const a = decodeNpy(bytes, path, INSPECT);
    return {
      ...base,
      format: "npy",
      shape: a.shape,
      dtype: a.dtype,
      layout: layoutHint(a.shape),
      stats: valueStats(a.raw),
    };
  }
  if (/\.f32$/i.test(path) && bytes.byteLength % 4 === 0) {
    const data = new Float32Array(bytes.slice().buffer);
    return {
      ...base,
      format: "f32",
      shape: [data.length],
      dtype: "float32",
      stats: valueStats(data),
    };
  }
  if (/\.hv$/i.test(path)) {
    const img = await readInterfileImage(path, INSPECT);
    return {
      ...base,
      format: "interfile",
      shape: [...img.grid.shape],
      dtype: "float32",
      grid: {
        voxelSizeMm: [...img.grid.voxelSizeMm],
        originMm: [...img.grid.originMm],
        affineSource: "interfile",
        axisAligned: true,
      },
      layout: "image [nx, ny, nz] (x fastest)",
      stats: valueStats(img.data),
    };
  }
  if (/\.hs$/i.test(path)) {
    const sino = await readInterfileSinogram(path, INSPECT);
    return {
      ...base,
      format: "interfile",
      shape: [...sino.shape],
      dtype: "float32",
      layout: "sinogram [radial, views, planes] (petrel's order, remapped from STIR)",
      stats: valueStats(sino.data),
      sinogram: scannerInfo(sino.scanner, sino.header.get("pet data type") ?? "unknown", "?"),
    };
  }
  if (/\.json$/i.test(path)) {
    try {
      const m = ManifestSchema.safeParse(JSON.parse(new TextDecoder().decode(bytes)));
      if (m.success) {
        const d = m.data;
        return {
          ...base,
          format: "manifest",
          manifest: {
            recipe: d.recipe.path,
            ok: d.result.ok,
            reason: d.result.reason,
            seed: d.seed,
            params: d.params,
            outputs: d.outputs.length,
            adapter: d.adapter?.description ?? null,
            totalMs: d.timings.totalMs,
          },
        };
      }
      const json = JSON.parse(new TextDecoder().decode(bytes));
      if (json && json.format === "petrel-sinogram") {
        const sino = await readSinogram(path, INSPECT);
        return {
          ...base,
          format: "sinogram-sidecar",
          shape: [...sino.shape],
          dtype: sino.sidecar.dataFormat,
          layout: "sinogram [radial, views, planes] (radial fastest)",
          stats: valueStats(sino.data),
          sinogram: scannerInfo(sino.scanner, sino.sidecar.quantity, sino.sidecar.units),
        };
      }
    } catch {
      // plain JSON
    }
  }
  return base;
}

function num(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-3)
    ? v.toExponential(4)
    : String(+v.toPrecision(6));
}

/** Human-readable rendering of a {@linkcode FileInfo}. */
export function formatInfo(info: FileInfo): string {
  const lines = [`${info.path}`, `  format   ${info.format}`, `  bytes    ${info.bytes}`];
  if (info.shape) lines.push(`  shape    [${info.shape.join(", ")}] (fastest axis first)`);
  if (info.dtype) lines.push(`  dtype    ${info.dtype}`);
  if (info.layout) lines.push(`  layout   ${info.layout}`);
  if (info.grid) {
    const g = info.grid;
    lines.push(`  voxel    [${g.voxelSizeMm.map(num).join(", ")}] mm`);
    lines.push(`  origin   [${g.originMm.map(num).join(", ")}] mm (centre of voxel 0)`);
    lines.push(
      `  affine   from ${g.affineSource}${g.axisAligned ? ", axis-aligned" : ", oblique/flipped"}`,
    );
  }
  if (info.sinogram) {
    const g = info.sinogram;
    const sc = g.scanner;
    lines.push(
      `  quantity ${g.quantity} (${g.units})`,
      `  scanner  "${sc.name}": radius ${num(sc.radiusMm)} mm, ${sc.crystalsPerRing} crystals${
        sc.sides ? ` on ${sc.sides} sides` : ""
      } × ${sc.rings} rings (${num(sc.ringSpacingMm)} mm apart)`,
      `           ${sc.radialBins} radial bins × ${sc.views} views × ${sc.planes} planes (max ring difference ${sc.maxRingDifference})`,
    );
  }
  if (info.stats) {
    const s = info.stats;
    lines.push(
      `  values   min ${num(s.min)}  max ${num(s.max)}  mean ${num(s.mean)}  std ${num(s.std)}`,
      `           sum ${num(s.sum)}  nonzero ${s.nonzero}/${s.count}${
        s.nan ? `  NaN ${s.nan}` : ""
      }`,
    );
  }
  if (info.manifest) {
    const m = info.manifest;
    lines.push(
      `  recipe   ${m.recipe}`,
      `  result   ${m.ok ? "ok" : `failed (${m.reason})`} in ${
        num(m.totalMs / 1000)
      } s, ${m.outputs} outputs`,
      `  seed     ${m.seed}`,
      `  params   ${JSON.stringify(m.params)}`,
      `  adapter  ${m.adapter ?? "(none)"}`,
    );
  }
  lines.push(`  sha256   ${info.sha256}`);
  return lines.join("\n");
}
