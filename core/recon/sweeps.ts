/**
 * The classical baselines DDIP is compared with, as parameter sweeps over the existing
 * algorithms of `core/recon`: OSEM with a Gaussian post-filter (every iteration × every FWHM) and
 * MAP-EM with the relative-difference prior (every β). The caller picks the best setting against
 * the truth (an oracle choice, the most favourable a baseline can get).
 *
 * @module
 */

import type { GpuContext } from "../gpu/context.ts";
import type { ImageGrid } from "../geometry/grid.ts";
import type { PoissonLikelihood } from "../model/likelihood.ts";
import { mapEm, osem } from "./algorithms.ts";
import type { ReconCallback } from "./callbacks.ts";
import { gaussianPostFilter } from "./filter.ts";
import { relativeDifferencePrior } from "./priors.ts";

/** One reconstruction of a sweep. */
export interface SweepImage {
  /** e.g. `{iteration: 4, fwhmMm: 4}` or `{beta: 1}`. */
  setting: Record<string, number>;
  image: Float32Array;
}

/** A sweep's images and its wall time (ms, whole sweep). */
export interface Sweep {
  images: SweepImage[];
  ms: number;
}

/**
 * OSEM for `iterations` iterations (the model's subsets), post-filtered with each in-plane
 * Gaussian FWHM (mm; 0 = unfiltered) after every iteration.
 *
 * @example
 * ```ts
 * import { defaultContext, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, osemSweep, PoissonLikelihood, psnr, ringForwardModel, simulateCounts } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const nema = nemaIecPhantom(grid);
 * const model = ringForwardModel(ctx, scanner, { grid, muMap: nema.mu, subsets: 4 });
 * const activity = ctx.array(grid.shape, nema.activity);
 * const { counts, scale } = await simulateCounts(model, activity, { trueCounts: 1e6, seed: 1 });
 * const likelihood = new PoissonLikelihood(model, counts);
 * const truth = nema.activity.map((v) => v * scale); // what the reconstruction estimates
 * const sweep = await osemSweep(ctx, likelihood, grid, { iterations: 6, fwhmMm: [0, 3, 5] });
 * const best = sweep.images.reduce((a, b) => (psnr(truth, b.image) > psnr(truth, a.image) ? b : a));
 * ```
 */
export async function osemSweep(
  ctx: GpuContext,
  likelihood: PoissonLikelihood,
  grid: ImageGrid,
  options: { iterations: number; fwhmMm: readonly number[] },
): Promise<Sweep> {
  const t0 = performance.now();
  const raw: [number, Float32Array][] = [];
  const cb: ReconCallback = {
    needsImage: true,
    onIteration(s) {
      raw.push([s.iteration, s.image!]);
    },
  };
  const x = await osem(likelihood, { iterations: options.iterations, callbacks: [cb] });
  x.destroy();
  const images: SweepImage[] = [];
  for (const [iteration, img] of raw) {
    for (const f of options.fwhmMm) {
      if (f <= 0) {
        images.push({ setting: { iteration, fwhmMm: 0 }, image: img });
        continue;
      }
      const a = ctx.array(likelihood.model.imageShape, img);
      const b = gaussianPostFilter(ctx, grid, a, f);
      a.destroy();
      images.push({ setting: { iteration, fwhmMm: f }, image: await b.read() });
      b.destroy();
    }
  }
  return { images, ms: performance.now() - t0 };
}

/**
 * MAP-EM (OS, De Pierro) with the relative-difference prior for each β, `iterations` iterations
 * from a uniform image (8 neighbours in-plane for single slices, 26 otherwise).
 *
 * @example
 * ```ts
 * import { defaultContext, mapRdpSweep, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, PoissonLikelihood, ringForwardModel, simulateCounts } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const nema = nemaIecPhantom(grid);
 * const model = ringForwardModel(ctx, scanner, { grid, muMap: nema.mu, subsets: 4 });
 * const activity = ctx.array(grid.shape, nema.activity);
 * const { counts } = await simulateCounts(model, activity, { trueCounts: 1e6, seed: 1 });
 * const likelihood = new PoissonLikelihood(model, counts);
 * const sweep = await mapRdpSweep(ctx, likelihood, grid, { betas: [0.3, 1, 3], iterations: 20 });
 * sweep.images.map((i) => i.setting.beta); // [0.3, 1, 3]
 * ```
 */
export async function mapRdpSweep(
  ctx: GpuContext,
  likelihood: PoissonLikelihood,
  grid: ImageGrid,
  options: { betas: readonly number[]; iterations: number; gamma?: number },
): Promise<Sweep> {
  const t0 = performance.now();
  const images: SweepImage[] = [];
  for (const beta of options.betas) {
    const prior = relativeDifferencePrior(ctx, grid, { beta, gamma: options.gamma });
    try {
      const x = await mapEm(likelihood, prior, { iterations: options.iterations });
      images.push({ setting: { beta }, image: await x.read() });
      x.destroy();
    } finally {
      prior.destroy();
    }
  }
  return { images, ms: performance.now() - t0 };
}
