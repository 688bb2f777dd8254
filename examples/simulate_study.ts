/** Simulates a 2-D PET study: phantom, μ-map, attenuated Poisson prompts with randoms. */
import { z } from "zod";
import type { RecipeContext } from "../core/runtime/mod.ts";
import { RingScanner } from "../core/geometry/mod.ts";
import { ringForwardModel, simulateCounts } from "../core/model/mod.ts";
import { writeNifti, writeSinogram } from "../core/io/mod.ts";

export const description = "Simulate prompts (+ additive, μ-map, truth) for osem/map_rdp.";
export const params = z.object({
  size: z.number().int().min(8).max(256).default(32).describe("image size (voxels per side)"),
  voxelMm: z.number().positive().default(4).describe("voxel size in mm"),
  crystals: z.number().int().multipleOf(4).default(96).describe("crystals in the ring"),
  trueCounts: z.number().positive().default(2e5).describe("expected true coincidences"),
  randomsFraction: z.number().min(0).max(0.9).default(0.2).describe("randoms / prompts"),
});

export default async function run(ctx: RecipeContext<z.infer<typeof params>>): Promise<void> {
  const p = ctx.params, n = p.size;
  const scanner = new RingScanner({
    name: "small 2-D ring",
    radiusMm: n * p.voxelMm,
    crystalsPerRing: p.crystals,
    rings: 1,
    ringSpacingMm: p.voxelMm,
    radialBins: p.crystals / 2 - 1,
    maxRingDifference: 0,
  });
  const grid = scanner.imageGrid(n, p.voxelMm);
  const r = (i: number, cx = 0, cy = 0) =>
    Math.hypot(i % n - n / 2 + 0.5 - cx, ((i / n) | 0) - n / 2 + 0.5 - cy);
  const mu = new Float32Array(n * n).map((_, i) => (r(i) < n / 2.6 ? 0.0096 : 0)); // water, 1/mm
  const truth = mu.map((
    m,
    i,
  ) => (m ? (r(i, n / 8) < n / 10 ? 4 : r(i, -n / 8, n / 8) < n / 12 ? 0 : 1) : 0));
  const gpu = await ctx.gpu();
  const model = ringForwardModel(gpu, scanner, { grid, muMap: mu });
  const sim = await simulateCounts(model, gpu.array(grid.shape, truth), { ...p, seed: ctx.seed });
  await writeNifti(`${ctx.outDir}/truth.nii`, { data: truth.map((v) => v * sim.scale), grid });
  await writeNifti(`${ctx.outDir}/mu.nii`, { data: mu, grid }, { description: "mu, 1/mm" });
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
  ctx.log(`simulated ${sim.counts.reduce((a, b) => a + b, 0)} prompts on ${scanner.sinogramShape}`);
}
