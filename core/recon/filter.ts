/**
 * Gaussian post-filtering of reconstructed images (the usual companion of OSEM).
 *
 * @module
 */

import type { GpuArray, GpuContext } from "../gpu/context.ts";
import type { ImageGrid } from "../geometry/grid.ts";
import { GaussianFilter } from "../projector/gaussian.ts";

/**
 * Returns a new device array holding `x` filtered with a Gaussian of `fwhmMm` (per axis, mm;
 * a single number applies in-plane only, leaving z alone). Zero padding at the edges.
 *
 * @example
 * ```ts
 * import { defaultContext, gaussianPostFilter, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, osem, PoissonLikelihood, ringForwardModel, simulateCounts } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const nema = nemaIecPhantom(grid);
 * const model = ringForwardModel(ctx, scanner, { grid, muMap: nema.mu, subsets: 4 });
 * const activity = ctx.array(grid.shape, nema.activity);
 * const { counts } = await simulateCounts(model, activity, { trueCounts: 1e6, seed: 1 });
 * const likelihood = new PoissonLikelihood(model, counts);
 * const x = await osem(likelihood, { iterations: 4 });
 * const smooth = await gaussianPostFilter(ctx, grid, x, 4).read(); // 4 mm FWHM in-plane
 * ```
 */
export function gaussianPostFilter(
  ctx: GpuContext,
  grid: ImageGrid,
  x: GpuArray,
  fwhmMm: number | readonly [number, number, number],
): GpuArray {
  const f: readonly [number, number, number] = typeof fwhmMm === "number"
    ? [fwhmMm, fwhmMm, 0]
    : fwhmMm;
  const filter = new GaussianFilter(ctx, grid, f);
  const out = ctx.array(x.shape);
  ctx.run((rec) => filter.apply(rec, x, out));
  return out;
}
