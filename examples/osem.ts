/** OSEM reconstruction of prompts.npy (+ optional additive.npy, mu.nii) from the input folder. */
import { z } from "zod";
import { findReference, type RecipeContext, writeReconResults } from "../core/runtime/mod.ts";
import { PoissonLikelihood, ringForwardModel } from "../core/model/mod.ts";
import { gaussianPostFilter, osem } from "../core/recon/mod.ts";
import { readNifti, readSinogram, writeNifti } from "../core/io/mod.ts";

export const description =
  "OSEM with attenuation/additive terms when present in --in; writes osem.nii, osem.png, metrics.json.";
export const params = z.object({
  size: z.number().int().min(8).max(512).default(32).describe("image size (voxels per side)"),
  voxelMm: z.number().positive().default(4).describe("voxel size in mm"),
  iterations: z.number().int().positive().default(4),
  subsets: z.number().int().positive().default(4),
  postFilterMm: z.number().min(0).default(0).describe("Gaussian post-filter FWHM in mm"),
});

export default async function run(ctx: RecipeContext<z.infer<typeof params>>): Promise<void> {
  const p = ctx.params;
  const exists = (f: string) => Deno.stat(ctx.inputPath(f)).then(() => true, () => false);
  const prompts = await readSinogram(ctx.inputPath("prompts.npy"));
  const grid = prompts.scanner.imageGrid(p.size, p.voxelMm);
  const gpu = await ctx.gpu();
  const model = ringForwardModel(gpu, prompts.scanner, {
    grid,
    subsets: p.subsets,
    muMap: (await exists("mu.nii")) ? (await readNifti(ctx.inputPath("mu.nii"))).data : undefined,
    additive: (await exists("additive.npy"))
      ? (await readSinogram(ctx.inputPath("additive.npy"))).data
      : undefined,
  });
  const progress = {
    onIteration: (s: { iteration: number }) => ctx.progress(s.iteration, p.iterations),
  };
  const lik = new PoissonLikelihood(model, prompts.data);
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
    method: "OSEM",
    params: p,
    titleParams: ["iterations", "subsets", "postFilterMm", "voxelMm"],
    image,
    grid,
    logLikelihood: await lik.logLikelihood(x),
    reference: await findReference(ctx.inputs),
  });
}
