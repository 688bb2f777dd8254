/** A custom scanner (polygonal, several rings): simulate noise-free data and reconstruct with OSEM. */
import { z } from "zod";
import type { RecipeContext } from "../core/runtime/mod.ts";
import { RingScanner } from "../core/geometry/mod.ts";
import { PoissonLikelihood, ringForwardModel, simulateCounts } from "../core/model/mod.ts";
import { osem } from "../core/recon/mod.ts";
import { writeNifti } from "../core/io/mod.ts";

export const description = "Define a scanner from parameters, simulate and reconstruct on it.";
export const params = z.object({
  radiusMm: z.number().positive().default(120),
  crystals: z.number().int().multipleOf(4).default(64).describe("crystals per ring"),
  sides: z.number().int().min(3).optional().describe("flat detector modules (polygon)"),
  rings: z.number().int().positive().default(2),
  ringSpacingMm: z.number().positive().default(4),
  size: z.number().int().min(8).default(24).describe("image size (voxels per side)"),
  iterations: z.number().int().positive().default(3),
});

export default async function run(ctx: RecipeContext<z.infer<typeof params>>): Promise<void> {
  const p = ctx.params;
  const scanner = new RingScanner({
    name: "custom",
    radiusMm: p.radiusMm,
    crystalsPerRing: p.crystals,
    sides: p.sides,
    rings: p.rings,
    ringSpacingMm: p.ringSpacingMm,
    radialBins: p.crystals / 2 - 1,
    maxRingDifference: p.rings - 1,
  });
  const voxelMm = (1.2 * p.radiusMm) / p.size;
  const grid = scanner.imageGrid(p.size, voxelMm);
  const n = p.size;
  const truth = new Float32Array(n * n * p.rings).map((_, i) =>
    Math.hypot((i % n) - n / 2 + 0.5, (((i / n) | 0) % n) - n / 2 + 0.5) < n / 4 ? 1 : 0
  );
  const gpu = await ctx.gpu();
  const model = ringForwardModel(gpu, scanner, { grid, subsets: 2 });
  const sim = await simulateCounts(model, gpu.array(grid.shape, truth), {
    trueCounts: 1e5,
    seed: ctx.seed,
    noiseFree: true,
  });
  const x = await osem(new PoissonLikelihood(model, sim.counts), {
    iterations: p.iterations,
    callbacks: [{ onIteration: (s) => ctx.progress(s.iteration, p.iterations) }],
  });
  await writeNifti(`${ctx.outDir}/recon.nii`, { data: await x.read(), grid });
  await ctx.writeJson("scanner.json", { ...scanner.spec, sinogramShape: scanner.sinogramShape });
}
