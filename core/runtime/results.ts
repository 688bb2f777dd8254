/**
 * What every reconstruction recipe writes beside its NIfTI image: a PNG figure (three orthogonal
 * planes, colour bar with units, a title with the method and its key parameters; the reference
 * in a second row on the same window when there is one) and `metrics.json` (log-likelihood, and
 * PSNR / SSIM / NRMSE against the reference). Used by `examples/osem.ts`, `examples/map_rdp.ts`
 * and `examples/ddip.ts`; scripts and notebooks may call it too.
 *
 * @module
 */
import type { ImageGrid } from "../geometry/grid.ts";
import { writeFileAtomic } from "../io/files.ts";
import { readNifti } from "../io/nifti.ts";
import { type ColormapName, writeOrthoMontage } from "../io/png.ts";
import { type ReconMetrics, reconMetrics } from "../metrics/report.ts";

/**
 * File names tried, in order, as the reference among a run's inputs.
 *
 * @example
 * ```ts
 * import { REFERENCE_NAMES } from "@petrel/petrel";
 * // put the simulation's truth beside the data under one of these names to get PSNR/SSIM
 * console.log(REFERENCE_NAMES.join(", ")); // "truth.nii, truth.nii.gz, reference.nii, reference.nii.gz"
 * ```
 */
export const REFERENCE_NAMES: readonly string[] = [
  "truth.nii",
  "truth.nii.gz",
  "reference.nii",
  "reference.nii.gz",
];

/** A reference image found among the inputs. */
export interface FoundReference {
  /** Its file name. */
  name: string;
  /** Voxels, x fastest. */
  data: Float32Array;
  /** Its grid. */
  grid: ImageGrid;
}

/**
 * Looks for a reference (truth) among the input files and folders: the first of
 * {@linkcode REFERENCE_NAMES} found (as a file given directly, or inside a given folder).
 * Returns null when there is none.
 *
 * @example
 * ```ts
 * import { findReference } from "@petrel/petrel";
 * const ref = await findReference(["sim"]); // sim/truth.nii written by `petrel simulate`
 * if (ref) console.log(ref.name, ref.grid.shape);
 * ```
 */
export async function findReference(inputs: readonly string[]): Promise<FoundReference | null> {
  const isFile = (p: string) => Deno.stat(p).then((s) => s.isFile, () => false);
  const isDir = (p: string) => Deno.stat(p).then((s) => s.isDirectory, () => false);
  for (const name of REFERENCE_NAMES) {
    for (const input of inputs) {
      const base = input.split("/").pop();
      const path = base === name && (await isFile(input))
        ? input
        : (await isDir(input)) && (await isFile(`${input}/${name}`))
        ? `${input}/${name}`
        : null;
      if (!path) continue;
      const img = await readNifti(path);
      return { name, data: img.data, grid: img.grid };
    }
  }
  return null;
}

/** What {@linkcode writeReconResults} writes. */
export interface ReconResultsOptions {
  /** Output folder. */
  outDir: string;
  /** Base name of the PNG (`<name>.png`), usually the NIfTI's, e.g. "osem". */
  name: string;
  /** Method shown in the title and recorded, e.g. "OSEM". */
  method: string;
  /** Parameters recorded in `metrics.json`. */
  params: Record<string, unknown>;
  /** Parameters shown in the title (default all of `params`), in this order. */
  titleParams?: readonly string[];
  /** The reconstructed image (x fastest). */
  image: ArrayLike<number>;
  /** Its grid. */
  grid: ImageGrid;
  /** Poisson log-likelihood of the image, if computed. */
  logLikelihood?: number;
  /** Reference (truth) to compare with, e.g. from {@linkcode findReference}. */
  reference?: FoundReference | null;
  /** Units of the values (default "counts scale": the forward model's activity units). */
  units?: string;
  /** Colour map (default "inferno"). */
  colormap?: ColormapName;
  /** Further figures for `metrics.json`. */
  extra?: Record<string, unknown>;
  /** Name of the metrics file (default "metrics.json"). */
  metricsName?: string;
}

function titleValue(v: unknown): string {
  if (typeof v === "number") return String(Number(v.toPrecision(4)));
  if (Array.isArray(v)) return `[${v.map(titleValue).join(",")}]`;
  return String(v);
}

/**
 * Writes `<name>.png` (three planes with a colour bar; the reference below it on the same window)
 * and `metrics.json` (see `core/metrics/report.ts`) into `outDir`, both atomically, and returns
 * the metrics.
 *
 * @example
 * ```ts
 * import {
 *   defineRecipe, findReference, osem, PoissonLikelihood, readNifti, readSinogram, ringForwardModel,
 *   writeReconResults,
 * } from "@petrel/petrel";
 * import { z } from "zod";
 * export default defineRecipe({
 *   params: z.object({ iterations: z.number().int().default(4) }),
 *   async run(ctx) {
 *     const prompts = await readSinogram(ctx.inputPath("prompts.npy"));
 *     const { grid, data: muMap } = await readNifti(ctx.inputPath("mu.nii"));
 *     const model = ringForwardModel(await ctx.gpu(), prompts.scanner, { grid, subsets: 4, muMap });
 *     const lik = new PoissonLikelihood(model, prompts.data);
 *     const x = await osem(lik, { iterations: ctx.params.iterations });
 *     await writeReconResults({
 *       outDir: ctx.outDir, name: "osem", method: "OSEM", params: ctx.params,
 *       image: await x.read(), grid, logLikelihood: await lik.logLikelihood(x),
 *       reference: await findReference(ctx.inputs),
 *     });
 *   },
 * });
 * ```
 */
export async function writeReconResults(o: ReconResultsOptions): Promise<ReconMetrics> {
  const shape = o.grid.shape;
  const units = o.units ?? "counts scale";
  const ref = o.reference ?? null;
  const metrics = reconMetrics({
    method: o.method,
    params: o.params,
    image: o.image,
    shape,
    logLikelihood: o.logLikelihood,
    reference: ref ? { name: ref.name, data: ref.data, shape: ref.grid.shape } : null,
    units,
    extra: o.extra,
  });
  const keys = o.titleParams ?? Object.keys(o.params);
  const title = `${o.method}: ${
    keys.filter((k) => k in o.params).map((k) => `${k} ${titleValue(o.params[k])}`).join(", ")
  }`;
  const bits: string[] = [];
  if (metrics.logLikelihood !== null) {
    bits.push(`log-likelihood ${metrics.logLikelihood.toExponential(6)}`);
  }
  if (metrics.reference) {
    const r = metrics.reference;
    bits.push(
      `vs ${r.name}: PSNR ${r.psnrDb.toFixed(2)} dB, SSIM ${r.ssim?.toFixed(3) ?? "-"}, NRMSE ${
        r.nrmse.toFixed(3)
      }`,
    );
  }
  const vox = o.grid.voxelSizeMm;
  const volumes = [{ data: o.image, shape, voxelMm: vox, label: o.name }];
  if (metrics.reference && ref) {
    volumes.push({ data: ref.data, shape, voxelMm: vox, label: ref.name });
  }
  await writeOrthoMontage(`${o.outDir}/${o.name}.png`, volumes, {
    title,
    subtitle: bits.join("; "),
    units,
    colormap: o.colormap ?? "inferno",
    sharedWindow: true,
  });
  await writeFileAtomic(
    `${o.outDir}/${o.metricsName ?? "metrics.json"}`,
    JSON.stringify(metrics, null, 2) + "\n",
  );
  return metrics;
}
