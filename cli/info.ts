/**
 * `petrel info`: what a file holds (NIfTI, .npy, raw float32, provenance manifest): shape
 * (fastest axis first), geometry, value statistics and sha256.
 *
 * @module
 */

import { decodeNifti } from "../core/io/nifti.ts";
import { decodeNpy } from "../core/io/npy.ts";
import { sha256Bytes } from "../core/runtime/hash.ts";
import { ManifestSchema } from "../core/runtime/manifest.ts";

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
  format: "nifti" | "npy" | "f32" | "manifest" | "unknown";
  /** Shape, fastest axis first. */
  shape?: number[];
  /** Stored element type. */
  dtype?: string;
  /** Image geometry (NIfTI): voxel size and origin (centre of voxel 0) in mm. */
  grid?: { voxelSizeMm: number[]; originMm: number[]; affineSource: string; axisAligned: boolean };
  /** A hint on how petrel reads the axes (e.g. sinogram `[radial, views, planes]`). */
  layout?: string;
  stats?: ValueStats;
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

/** Reads `path` and describes it. Throws (FormatError from core/io) on malformed files. */
export async function describeFile(path: string): Promise<FileInfo> {
  const bytes = await Deno.readFile(path);
  const base: FileInfo = {
    path,
    bytes: bytes.byteLength,
    sha256: sha256Bytes(bytes),
    format: "unknown",
  };
  if (/\.nii(\.gz)?$/i.test(path)) {
    const img = decodeNifti(bytes, path);
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
    const a = decodeNpy(bytes, path);
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
