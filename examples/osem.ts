/**
 * OSEM reconstruction of prompts.npy (+ optional additive.npy, norm.npy, mu.nii) from the input
 * folder, optionally with an image-space resolution model (`resolutionFwhmMm`); TOF
 * sinograms are reconstructed with their TOF model, and `data=listmode` reconstructs events.npy
 * (list mode, TOF when the events carry it) instead of the prompts.
 */
import { z } from "zod";
import { findReference, type RecipeContext, writeReconResults } from "../core/runtime/mod.ts";
import {
  listModeForwardModel,
  ListModeLikelihood,
  PoissonLikelihood,
  RESOLUTION_PARAMS,
  resolutionModel,
  sinogramForwardModel,
} from "../core/model/mod.ts";
import { gaussianPostFilter, osem } from "../core/recon/mod.ts";
import {
  findNormalisation,
  readListMode,
  readNifti,
  readNormalisation,
  readSinogram,
  reconGrid,
  writeNifti,
} from "../core/io/mod.ts";

export const description =
  "OSEM with attenuation/normalisation/additive terms when present in --in; writes osem.nii, osem.png, metrics.json.";
export const params = z.object({
  size: z.number().int().min(8).max(512).optional().describe(
    "image size (voxels per side); only without mu.nii, whose grid is used (default 32)",
  ),
  voxelMm: z.number().positive().optional().describe(
    "voxel size in mm; only without mu.nii, whose grid is used (default 4)",
  ),
  iterations: z.number().int().positive().default(4),
  subsets: z.number().int().positive().default(4),
  postFilterMm: z.number().min(0).default(0).describe("Gaussian post-filter FWHM in mm"),
  ...RESOLUTION_PARAMS,
  data: z.enum(["sinogram", "listmode"]).default("sinogram").describe(
    "reconstruct prompts.npy (sinogram, TOF or not) or events.npy (list mode)",
  ),
});

export default async function run(ctx: RecipeContext<z.infer<typeof params>>): Promise<void> {
  const p = ctx.params;
  const exists = (f: string) => Deno.stat(ctx.inputPath(f)).then(() => true, () => false);
  const mu = (await exists("mu.nii")) ? await readNifti(ctx.inputPath("mu.nii")) : undefined;
  const muMap = mu?.data;
  // The grid is the μ-map's when there is one; size/voxelMm only without it.
  const gridFor = (scanner: Parameters<typeof reconGrid>[0]) =>
    reconGrid(scanner, {
      image: mu && { ...mu, path: ctx.inputPath("mu.nii") },
      size: p.size,
      voxelMm: p.voxelMm,
    }).grid;
  const additive = (await exists("additive.npy"))
    ? (await readSinogram(ctx.inputPath("additive.npy"))).data
    : undefined;
  const normPath = await findNormalisation(ctx.inputPath);
  const resolution = resolutionModel(p);
  const gpu = await ctx.gpu();
  let lik: PoissonLikelihood;
  let grid;
  let method = "OSEM";
  if (p.data === "listmode") {
    const lm = await readListMode(ctx.inputPath("events.npy"));
    if (!lm.scanner) throw new Error("events.json has no scanner; list-mode OSEM needs one");
    grid = gridFor(lm.scanner);
    const model = listModeForwardModel(gpu, lm.scanner, lm.events, {
      grid,
      tof: lm.events.tofBin || lm.events.tofMm ? lm.tof : undefined,
      subsets: p.subsets,
      muMap,
      additiveSinogram: additive,
      normalisation: normPath
        ? await readNormalisation(normPath, lm.scanner, ctx.inputPath("events.npy"))
        : undefined,
      ...resolution,
    });
    lik = new ListModeLikelihood(model);
    method = lm.events.tofBin || lm.events.tofMm ? "TOF list-mode OSEM" : "list-mode OSEM";
  } else {
    const prompts = await readSinogram(ctx.inputPath("prompts.npy"));
    grid = gridFor(prompts.scanner);
    const multiplicative = normPath
      ? await readNormalisation(normPath, prompts.scanner, ctx.inputPath("prompts.npy"))
      : undefined;
    const opts = { grid, subsets: p.subsets, muMap, additive, multiplicative, ...resolution };
    const model = sinogramForwardModel(gpu, prompts.scanner, { ...opts, tof: prompts.tof });
    lik = new PoissonLikelihood(model, prompts.data);
    if (prompts.tof) method = "TOF OSEM";
  }
  const progress = {
    onIteration: (s: { iteration: number }) => ctx.progress(s.iteration, p.iterations),
  };
  let x = await osem(lik, {
    iterations: p.iterations,
    callbacks: [progress],
  });
  if (p.postFilterMm > 0) x = gaussianPostFilter(gpu, grid, x, p.postFilterMm);
  const image = await x.read();
  await writeNifti(`${ctx.outDir}/osem.nii`, { data: image, grid });
  await writeReconResults({
    outDir: ctx.outDir,
    name: "osem",
    method,
    params: p,
    titleParams: ["iterations", "subsets", "postFilterMm", "resolutionFwhmMm", "voxelMm"],
    image,
    grid,
    logLikelihood: await lik.logLikelihood(x),
    reference: await findReference(ctx.inputs),
  });
}
