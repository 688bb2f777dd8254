/**
 * MAP-EM with a relative-difference prior (De Pierro), from prompts.npy (+ additive.npy,
 * norm.npy, mu.nii; TOF sinograms with their TOF model), optionally with an image-space resolution
 * model (`resolutionFwhmMm`).
 */
import { z } from "zod";
import { findReference, type RecipeContext, writeReconResults } from "../core/runtime/mod.ts";
import {
  PoissonLikelihood,
  RESOLUTION_PARAMS,
  resolutionModel,
  sinogramForwardModel,
} from "../core/model/mod.ts";
import { mapEm, relativeDifferencePrior } from "../core/recon/mod.ts";
import {
  findNormalisation,
  readNifti,
  readNormalisation,
  readSinogram,
  reconGrid,
  writeNifti,
} from "../core/io/mod.ts";

export const description =
  "MAP-EM with the relative-difference prior (β, γ); writes map_rdp.nii, map_rdp.png, metrics.json.";
export const params = z.object({
  size: z.number().int().min(8).max(512).optional().describe(
    "image size (voxels per side); only without mu.nii, whose grid is used (default 32)",
  ),
  voxelMm: z.number().positive().optional().describe(
    "voxel size in mm; only without mu.nii, whose grid is used (default 4)",
  ),
  iterations: z.number().int().positive().default(10),
  subsets: z.number().int().positive().default(4),
  beta: z.number().min(0).default(0.5).describe("prior strength β"),
  gamma: z.number().min(0).default(2).describe("RDP edge preservation γ"),
  ...RESOLUTION_PARAMS,
});

export default async function run(ctx: RecipeContext<z.infer<typeof params>>): Promise<void> {
  const p = ctx.params;
  const optional = async <T>(f: string, read: (path: string) => Promise<T>) =>
    (await Deno.stat(ctx.inputPath(f)).then(() => true, () => false))
      ? read(ctx.inputPath(f))
      : undefined;
  const prompts = await readSinogram(ctx.inputPath("prompts.npy"));
  const mu = await optional("mu.nii", readNifti);
  const { grid } = reconGrid(prompts.scanner, {
    image: mu && { ...mu, path: ctx.inputPath("mu.nii") },
    size: p.size,
    voxelMm: p.voxelMm,
  });
  const normPath = await findNormalisation(ctx.inputPath);
  const gpu = await ctx.gpu();
  const opts = {
    grid,
    subsets: p.subsets,
    muMap: mu?.data,
    additive: (await optional("additive.npy", readSinogram))?.data,
    multiplicative: normPath
      ? await readNormalisation(normPath, prompts.scanner, ctx.inputPath("prompts.npy"))
      : undefined,
    ...resolutionModel(p),
  };
  // TOF prompts get their TOF model (as in recon osem): MAP-EM only needs a forward model
  const model = sinogramForwardModel(gpu, prompts.scanner, { ...opts, tof: prompts.tof });
  const prior = relativeDifferencePrior(gpu, grid, { beta: p.beta, gamma: p.gamma });
  const lik = new PoissonLikelihood(model, prompts.data);
  const x = await mapEm(lik, prior, {
    iterations: p.iterations,
    callbacks: [{ onIteration: (s) => ctx.progress(s.iteration, p.iterations) }],
  });
  const image = await x.read();
  await writeNifti(`${ctx.outDir}/map_rdp.nii`, { data: image, grid });
  await writeReconResults({
    outDir: ctx.outDir,
    name: "map_rdp",
    method: prompts.tof ? "TOF MAP-EM (RDP)" : "MAP-EM (RDP)",
    params: p,
    titleParams: ["beta", "gamma", "iterations", "subsets", "resolutionFwhmMm"],
    image,
    grid,
    logLikelihood: await lik.logLikelihood(x),
    reference: await findReference(ctx.inputs),
  });
}
