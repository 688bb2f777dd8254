/** DDIP-HQS (or DDS / DDIP-NLL) on a 3-slice stack with a diffusion prior from --models. */
import { z } from "zod";
import type { RecipeContext } from "../core/runtime/mod.ts";
import { PoissonLikelihood, ringForwardModel } from "../core/model/mod.ts";
import { DDIP_METHODS, ddipStack } from "../core/recon/ddip/mod.ts";
import { loadPrior } from "../core/diffusion/mod.ts";
import { readNifti, readSinogram, writeNifti } from "../core/io/mod.ts";

export const description =
  "DDIP-HQS: prompts.npy (3 planes), mr.nii, additive.npy, mu.nii from --in.";
export const params = z.object({
  size: z.number().int().min(8).default(32).describe("image size (voxels per side)"),
  voxelMm: z.number().positive().default(4).describe("voxel size in mm"),
  method: z.enum(DDIP_METHODS as ["ddip-hqs", "dds", "ddip-nll"]).default("ddip-hqs"),
  useMr: z.boolean().default(true).describe("feed the MR channels (needs mr.nii)"),
  steps: z.number().int().positive().default(25).describe("reverse steps (reference 200)"),
  startT: z.number().int().positive().default(200),
  fineTuneIterations: z.number().int().min(0).default(2),
  lr: z.number().positive().default(2e-3).describe("AdamW lr (CPU preset 2e-3; reference 5e-4)"),
  emIterations: z.number().int().min(0).default(5),
  initIterations: z.number().int().min(0).default(20).describe("MLEM iterations of the start"),
});

export default async function run(ctx: RecipeContext<z.infer<typeof params>>): Promise<void> {
  const { size, voxelMm, method, useMr, ...config } = ctx.params;
  const has = (f: string) => Deno.stat(ctx.inputPath(f)).then(() => true, () => false);
  const prompts = await readSinogram(ctx.inputPath("prompts.npy"));
  const grid = prompts.scanner.imageGrid(size, voxelMm);
  const gpu = await ctx.gpu();
  const model = ringForwardModel(gpu, prompts.scanner, {
    grid,
    muMap: (await has("mu.nii")) ? (await readNifti(ctx.inputPath("mu.nii"))).data : undefined,
    additive: (await has("additive.npy"))
      ? (await readSinogram(ctx.inputPath("additive.npy"))).data
      : undefined,
  });
  const mr = useMr
    ? (await readNifti(ctx.inputPath("mr.nii"))).data
    : new Float32Array(model.imageShape.reduce((a, b) => a * b));
  const mrMax = mr.reduce((a, b) => Math.max(a, b), 0) || 1;
  const prior = await loadPrior(
    ctx.modelsDir ?? ctx.modelPath("denoiser.onnx").replace(/\/[^/]*$/, ""),
    { adapter: gpu.adapter },
  );
  const result = await ddipStack(prior, {
    likelihood: new PoissonLikelihood(model, prompts.data),
    grid,
    mr: mr.map((v) => v / mrMax),
  }, {
    method,
    useMr,
    seed: ctx.seed,
    config,
    callbacks: [{ onIteration: (s) => ctx.progress(s.iteration, s.iterations) }],
  });
  await writeNifti(`${ctx.outDir}/ddip.nii`, { data: result.image, grid });
  await ctx.writeJson("ddip.json", {
    method,
    scale: result.scale,
    logLikelihood: result.logLikelihood,
    losses: result.losses,
    timings: result.timings,
  });
}
