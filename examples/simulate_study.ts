/** Simulates a PET/MR study on a small ring scanner: attenuated Poisson prompts with randoms. */
import { z } from "zod";
import type { RecipeContext } from "../core/runtime/mod.ts";
import { RingScanner } from "../core/geometry/mod.ts";
import { ringForwardModel, simulateCounts } from "../core/model/mod.ts";
import { writeNifti, writeSinogram } from "../core/io/mod.ts";

export const description = "Simulate prompts, additive, μ-map, MR and truth (for osem/map/ddip).";
export const params = z.object({
  size: z.number().int().min(8).max(256).default(32).describe("image size (voxels per side)"),
  voxelMm: z.number().positive().default(4).describe("voxel size (and ring spacing) in mm"),
  crystals: z.number().int().multipleOf(4).default(96).describe("crystals per ring"),
  rings: z.number().int().positive().default(1).describe("rings = slices (direct planes only)"),
  trueCounts: z.number().positive().default(2e5).describe("expected true coincidences"),
  randomsFraction: z.number().min(0).max(0.9).default(0.2).describe("randoms / prompts"),
});

/** Water cylinder (μ, 1/mm), a hot lesion and a cold spot; the MR shows the same structures. */
function phantom(
  n: number,
  slices: number,
): { mu: Float32Array; pet: Float32Array; mr: Float32Array } {
  const mu = new Float32Array(n * n * slices), pet = mu.slice(), mr = mu.slice();
  for (let i = 0; i < mu.length; i++) {
    const x = (i % n) - n / 2 + 0.5, y = (((i / n) | 0) % n) - n / 2 + 0.5;
    if (Math.hypot(x, y) >= n / 2.6) continue;
    const hot = Math.hypot(x - n / 8, y) < n / 10, cold = Math.hypot(x + n / 8, y - n / 8) < n / 12;
    [mu[i], pet[i], mr[i]] = [0.0096, hot ? 4 : cold ? 0 : 1, hot ? 0.5 : cold ? 1 : 0.8];
  }
  return { mu, pet, mr };
}

export default async function run(ctx: RecipeContext<z.infer<typeof params>>): Promise<void> {
  const p = ctx.params;
  const scanner = new RingScanner({
    name: "small ring scanner",
    radiusMm: p.size * p.voxelMm,
    crystalsPerRing: p.crystals,
    rings: p.rings,
    ringSpacingMm: p.voxelMm,
    radialBins: p.crystals / 2 - 1,
    maxRingDifference: 0,
  });
  const grid = scanner.imageGrid(p.size, p.voxelMm);
  const { mu, pet, mr } = phantom(p.size, p.rings);
  const gpu = await ctx.gpu();
  const model = ringForwardModel(gpu, scanner, { grid, muMap: mu });
  const sim = await simulateCounts(model, gpu.array(grid.shape, pet), { ...p, seed: ctx.seed });
  await writeNifti(`${ctx.outDir}/truth.nii`, { data: pet.map((v) => v * sim.scale), grid });
  await writeNifti(`${ctx.outDir}/mu.nii`, { data: mu, grid }, { description: "mu, 1/mm" });
  await writeNifti(`${ctx.outDir}/mr.nii`, { data: mr, grid }, { description: "T1-like MR" });
  await writeSinogram(`${ctx.outDir}/prompts.npy`, {
    data: sim.counts,
    scanner,
    quantity: "prompts",
  });
  await writeSinogram(`${ctx.outDir}/additive.npy`, {
    data: sim.additive,
    scanner,
    quantity: "additive",
  });
  ctx.log(
    `simulated ${sim.counts.reduce((a, b) => a + b, 0)} prompts, sinogram ${scanner.sinogramShape}`,
  );
}
