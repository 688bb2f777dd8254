/**
 * The benchmark stack shared by `ddip_bench.ts`, `xstep_bench.ts` and `ddip_run.ts`: a 3-slice mMR-like
 * direct-plane problem (224 views × 129 bins × 3 planes) on an n² grid, a head-sized ellipse with
 * a hot insert, attenuation, 20 % randoms and 3·10⁵ true counts (seed 1).
 *
 * @module
 */
import type { GpuContext } from "../core/gpu/context.ts";
import { centredGrid, type ImageGrid } from "../core/geometry/grid.ts";
import { MMR_VOXEL_MM, mmrLike2d, type RingScanner } from "../core/geometry/scanner.ts";
import { type ForwardModel, ringForwardModel } from "../core/model/forward_model.ts";
import { PoissonLikelihood } from "../core/model/likelihood.ts";
import { simulateCounts } from "../core/model/simulate.ts";
import { directPlaneScanner } from "../core/recon/ddip/mod.ts";

/** One benchmark stack: geometry, truth, data and the likelihood built on them. */
export interface BenchStack {
  grid: ImageGrid;
  scanner: RingScanner;
  truth: Float32Array;
  mu: Float32Array;
  counts: Float32Array;
  additive: Float32Array;
}

/**
 * Builds the stack's phantom and simulates its data (once per benchmark run); `slices` > 3 gives
 * a volume of direct planes (the same ellipse in every slice, 10⁵ true counts per slice).
 */
export async function benchStack(ctx: GpuContext, n: number, slices = 3): Promise<BenchStack> {
  const grid = centredGrid([n, n, slices], [
    MMR_VOXEL_MM * 128 / n,
    MMR_VOXEL_MM * 128 / n,
    MMR_VOXEL_MM,
  ]);
  const scanner = directPlaneScanner(mmrLike2d(), slices, MMR_VOXEL_MM);
  const truth = new Float32Array(n * n * slices);
  const mu = new Float32Array(n * n * slices);
  for (let k = 0; k < slices; k++) {
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < n; i++) {
        const x = (i - n / 2 + 0.5) / (n / 2);
        const y = (j - n / 2 + 0.5) / (n / 2);
        const inHead = (x / 0.6) ** 2 + (y / 0.75) ** 2 < 1;
        const t = i + n * (j + n * k);
        truth[t] = inHead ? 1 + 3 * Number((x - 0.2) ** 2 + y ** 2 < 0.01) : 0;
        mu[t] = inHead ? 0.0096 : 0;
      }
    }
  }
  const model = ringForwardModel(ctx, scanner, { grid, muMap: mu });
  const tx = ctx.array(grid.shape, truth);
  const sim = await simulateCounts(model, tx, {
    trueCounts: 1e5 * slices,
    randomsFraction: 0.2,
    seed: 1,
  });
  tx.destroy();
  model.destroy();
  return { grid, scanner, truth, mu, counts: sim.counts, additive: sim.additive! };
}

/** The stack's forward model and likelihood with the given projector and subsets. */
export function stackLikelihood(
  ctx: GpuContext,
  s: BenchStack,
  options: { projector?: "auto" | "ring" | "joseph"; subsets?: number } = {},
): { model: ForwardModel; likelihood: PoissonLikelihood } {
  const model = ringForwardModel(ctx, s.scanner, {
    grid: s.grid,
    muMap: s.mu,
    additive: s.additive,
    projector: options.projector,
    subsets: options.subsets,
  });
  return { model, likelihood: new PoissonLikelihood(model, s.counts) };
}
