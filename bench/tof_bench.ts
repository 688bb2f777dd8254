/**
 * TOF and list-mode benchmark (issue 16): projector pair times beside the non-TOF projector, and
 * the OSEM iterations TOF needs to reach the image quality of non-TOF OSEM.
 *
 *   deno task bench --cases tof2d,lm        # through the projector benchmark
 *   deno run -A bench/tof_bench.ts [--json] [--cases tof2d,lm] [--iterations 6] [--seed 1]
 *     [--subsets 14] [--filter 5]
 *
 * One data set serves both cases: the procedural brain slice (FDG, μ-map) on the mMR-like ring
 * (128² voxels of 2.086 mm), 9·10⁴ trues + 10 % uniform randoms (≈ 10⁵ prompts), TOF 400 ps
 * FWHM in 13 bins of 40 mm (≈ 267 ps), Poisson in each TOF bin. Non-TOF data are the same
 * counts summed over the TOF bins, list-mode events the same counts as events (so the three
 * reconstructions see one realisation). OSEM uses 14 view subsets; NRMSE is taken in the brain
 * (grey + white matter fraction > 0.5), raw and after a 5 mm FWHM Gaussian post-filter.
 *
 * - `tof2d`: TOF sinogram projector pair (forward + back, 28 896 LORs × 13 bins), the non-TOF
 *   pair beside it, NRMSE of TOF and non-TOF OSEM per iteration.
 * - `lm`: list-mode projector pair on the events, NRMSE of list-mode OSEM per iteration.
 *
 * @module
 */

import { defaultContext, type GpuArray, type GpuContext } from "../core/gpu/context.ts";
import { mmrLike2d } from "../core/geometry/scanner.ts";
import { type TofParameters, tofParameters } from "../core/geometry/tof.ts";
import { histogramListMode, listModeGeometry } from "../core/io/listmode.ts";
import { nrmse } from "../core/metrics/image.ts";
import { ringForwardModel } from "../core/model/forward_model.ts";
import { PoissonLikelihood } from "../core/model/likelihood.ts";
import { simulateCounts } from "../core/model/simulate.ts";
import {
  listModeForwardModel,
  ListModeLikelihood,
  sampleListMode,
  tofRingForwardModel,
} from "../core/model/tof.ts";
import { JosephProjector } from "../core/projector/joseph.ts";
import type { LinearOperator } from "../core/projector/operator.ts";
import { TofListModeProjector, TofSinogramProjector } from "../core/projector/tof.ts";
import { osem } from "../core/recon/algorithms.ts";
import { gaussianPostFilter } from "../core/recon/filter.ts";
import type { ImageGrid } from "../core/geometry/grid.ts";
import { brainPhantomStudy } from "../core/sim/phantom_brain.ts";
import { adapterTitle, timeGpu } from "./_timing.ts";

/** The TOF parameters of the benchmark: 400 ps FWHM, 13 bins of 40 mm. */
export const BENCH_TOF: TofParameters = tofParameters({ bins: 13, binWidthMm: 40, fwhmPs: 400 });

/** Names of the TOF benchmark cases. */
export const TOF_CASES = ["tof2d", "lm"] as const;

async function pairMs(ctx: GpuContext, op: LinearOperator, repeats: number): Promise<number> {
  const n = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  const x = ctx.array(op.inShape, new Float32Array(n(op.inShape)).fill(1));
  const y = ctx.array(op.outShape);
  const b = ctx.array(op.inShape);
  const t = await timeGpu(ctx, () =>
    ctx.run((rec) => {
      op.apply(rec, x, y);
      op.adjoint(rec, y, b);
    }), repeats);
  for (const a of [x, y, b]) a.destroy();
  return t.wall;
}

/** NRMSE per iteration in the brain, raw and after a Gaussian post-filter of `filterMm` FWHM. */
async function curve(
  lik: PoissonLikelihood,
  iterations: number,
  ref: { truth: Float32Array; mask: Uint8Array; grid: ImageGrid; filterMm: number },
): Promise<{ raw: number[]; filtered: number[] }> {
  const ctx = lik.model.ctx;
  const raw: number[] = [];
  const filtered: number[] = [];
  const x: GpuArray = await osem(lik, {
    iterations,
    callbacks: [{
      needsImage: true,
      onIteration: async (s) => {
        raw.push(nrmse(ref.truth, s.image!, { mask: ref.mask }));
        const d = ctx.array(ref.grid.shape, s.image!);
        const f = gaussianPostFilter(ctx, ref.grid, d, ref.filterMm);
        filtered.push(nrmse(ref.truth, await f.read(), { mask: ref.mask }));
        d.destroy();
        f.destroy();
      },
    }],
  });
  x.destroy();
  return { raw, filtered };
}

/** First iteration (1-based) whose NRMSE is at or below `target`, or null. */
function reach(c: number[], target: number): number | null {
  const i = c.findIndex((v) => v <= target);
  return i < 0 ? null : i + 1;
}

const r4 = (v: number): number => +v.toFixed(4);

/** Runs the TOF cases and prints a table (or JSON lines with `--json`). */
export async function main(args: string[]): Promise<void> {
  const json = args.includes("--json");
  const opt = (name: string, d: number) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : d;
  };
  const ci = args.indexOf("--cases");
  const wanted = ci >= 0 ? args[ci + 1].split(",") : [...TOF_CASES];
  for (const w of wanted) {
    if (!(TOF_CASES as readonly string[]).includes(w)) {
      throw new RangeError(`unknown TOF case "${w}"; expected ${TOF_CASES.join(", ")}`);
    }
  }
  const iterations = opt("--iterations", 6);
  const seed = opt("--seed", 1);
  const subsets = opt("--subsets", 14);
  const ctx = await defaultContext();
  const scanner = mmrLike2d();
  const study = brainPhantomStudy({ dims: 2, seed, tracers: ["fdg"] });
  const grid = study.grid;
  const mu = study.mu!;
  const tof = BENCH_TOF;
  const tofModel = tofRingForwardModel(ctx, scanner, { grid, tof, subsets, muMap: mu });
  const truthDev = ctx.array(grid.shape, study.activity.fdg!);
  const sim = await simulateCounts(tofModel, truthDev, {
    trueCounts: 9e4,
    randomsFraction: 0.1,
    seed,
  });
  truthDev.destroy();
  tofModel.setAdditive(sim.additive);
  const truth = study.activity.fdg!.map((v) => v * sim.scale);
  const mask = Uint8Array.from(study.brainFraction!, (f) => f > 0.5 ? 1 : 0);
  const nb = scanner.bins;
  const counts0 = new Float32Array(nb);
  const additive0 = new Float32Array(nb);
  for (let t = 0; t < tof.bins; t++) {
    for (let i = 0; i < nb; i++) {
      counts0[i] += sim.counts[i + nb * t];
      additive0[i] += sim.additive[i + nb * t];
    }
  }
  const prompts = counts0.reduce((a, b) => a + b, 0);
  const rows: Record<string, unknown>[] = [];
  const lors = scanner.lors();
  const P = new JosephProjector(ctx, lors, grid);
  const nonTofPair = await pairMs(ctx, P, 5);
  const model0 = ringForwardModel(ctx, scanner, { grid, subsets, muMap: mu, additive: additive0 });
  const ref = { truth, mask, grid, filterMm: opt("--filter", 5) };
  const c0 = await curve(new PoissonLikelihood(model0, counts0), iterations, ref);
  model0.destroy();
  const best0 = Math.min(...c0.filtered);
  if (wanted.includes("tof2d")) {
    const T = new TofSinogramProjector(ctx, lors, grid, tof);
    const pair = await pairMs(ctx, T, 3);
    T.destroy();
    const c1 = await curve(new PoissonLikelihood(tofModel, sim.counts), iterations, ref);
    rows.push({
      case: "tof2d",
      lors: lors.count,
      tof_bins: tof.bins,
      counts: Math.round(prompts),
      pair_ms: +pair.toFixed(1),
      nontof_pair_ms: +nonTofPair.toFixed(1),
      pair_ratio: +(pair / nonTofPair).toFixed(2),
      nrmse: c1.raw.map(r4),
      nontof_nrmse: c0.raw.map(r4),
      nrmse_filtered: c1.filtered.map(r4),
      nontof_nrmse_filtered: c0.filtered.map(r4),
      iterations_to_nontof_best: reach(c1.filtered, best0),
      nontof_best_iteration: c0.filtered.indexOf(best0) + 1,
    });
  }
  if (wanted.includes("lm")) {
    const events = sampleListMode(scanner, sim.counts, { seed, tof, counts: true });
    const h = histogramListMode(scanner, events, { tof });
    if (h.dropped !== 0 || h.data.some((v, i) => v !== sim.counts[i])) {
      throw new Error("bench lm: the events do not histogram back to the simulated counts");
    }
    const lm = listModeForwardModel(ctx, scanner, events, {
      grid,
      tof,
      subsets,
      muMap: mu,
      additiveSinogram: sim.additive,
    });
    const g = listModeGeometry(scanner, events, tof);
    const L = new TofListModeProjector(ctx, { lors: g.lors, tofBins: g.tofBins! }, grid, tof);
    const pair = await pairMs(ctx, L, 3);
    L.destroy();
    const c2 = await curve(new ListModeLikelihood(lm), iterations, ref);
    lm.destroy();
    rows.push({
      case: "lm",
      events: events.count,
      tof_bins: tof.bins,
      counts: Math.round(prompts),
      pair_ms: +pair.toFixed(1),
      nontof_pair_ms: +nonTofPair.toFixed(1),
      pair_ratio: +(pair / nonTofPair).toFixed(2),
      nrmse: c2.raw.map(r4),
      nontof_nrmse: c0.raw.map(r4),
      nrmse_filtered: c2.filtered.map(r4),
      nontof_nrmse_filtered: c0.filtered.map(r4),
      iterations_to_nontof_best: reach(c2.filtered, best0),
      nontof_best_iteration: c0.filtered.indexOf(best0) + 1,
    });
  }
  P.destroy();
  tofModel.destroy();
  if (json) {
    for (const r of rows) console.log(JSON.stringify({ ...r, adapter: ctx.adapter.description }));
  } else {
    console.log(adapterTitle("TOF / list-mode projectors and OSEM", ctx));
    console.log(
      `brain slice, ${Math.round(prompts)} prompts, TOF ${tof.fwhmMm.toFixed(1)} mm FWHM ` +
        `(400 ps), ${tof.bins} bins of ${tof.binWidthMm} mm, OSEM ${subsets} subsets, NRMSE in the brain`,
    );
    console.table(rows.map((r) => ({
      case: r.case,
      "pair ms": r.pair_ms,
      "non-TOF pair ms": r.nontof_pair_ms,
      ratio: r.pair_ratio,
      "NRMSE by iteration": (r.nrmse as number[]).join(" "),
      "non-TOF NRMSE": (r.nontof_nrmse as number[]).join(" "),
      "NRMSE, filtered": (r.nrmse_filtered as number[]).join(" "),
      "non-TOF, filtered": (r.nontof_nrmse_filtered as number[]).join(" "),
      "its to non-TOF best": r.iterations_to_nontof_best,
      "non-TOF best at": r.nontof_best_iteration,
    })));
  }
}

if (import.meta.main) await main(Deno.args);
