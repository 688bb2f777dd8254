/**
 * OSEM benchmark: time per OSEM iteration (all subsets, one submit) beside the time of one
 * full-data projector pair (P x, then Pᵀ of the prompts, over all LORs, one submit) on the
 * current adapter, so the overhead of the algorithm over its projections is visible. Wall times
 * are medians; CPU times (process, all threads) are the stabler figure on a shared machine.
 *
 *   deno run --allow-read --allow-env bench/osem_bench.ts                 # 2d and stack3
 *   deno run --allow-read --allow-env bench/osem_bench.ts --cases 2d,stack3,3d --subsets 14
 *   deno run --allow-read --allow-env bench/osem_bench.ts --json          # JSON lines
 *
 * Cases (as in `bench/projector_bench.ts`): `2d` one mMR-like slice (224 views × 129 bins,
 * 128²), `stack3` three direct slices (128²×3), `3d` 32 rings, max ring difference 7 (12.25 M
 * LORs, 128²×32; slow on a CPU adapter, so only run when asked for). The data are Poisson counts
 * of a uniform water cylinder with attenuation and 20 % randoms; MAP-RDP and x-step iterations are
 * timed too (`map_rdp_iter_ms`, `xstep_iter_ms`), and an MLEM iteration on the same data as one
 * subset (`mlem_iter_ms`), which is one projector pair plus the element-wise work: its overhead
 * over `pair_ms` is the algorithm's own; OSEM adds per-subset back-projection set-up (clear,
 * max-abs, fixed-point resolve over the image) K times.
 *
 * @module
 */

import { adapterTitle, scannerCases, selectCases, timeGpu } from "./_timing.ts";
import { defaultContext } from "../core/gpu/context.ts";
import { MMR_VOXEL_MM } from "../core/geometry/scanner.ts";
import { voxelCount } from "../core/geometry/grid.ts";
import { JosephProjector } from "../core/projector/joseph.ts";
import { ringForwardModel } from "../core/model/forward_model.ts";
import { PoissonLikelihood } from "../core/model/likelihood.ts";
import { simulateCounts } from "../core/model/simulate.ts";
import { emScratch, recordEmSubiteration } from "../core/recon/algorithms.ts";
import { relativeDifferencePrior } from "../core/recon/priors.ts";
import { PenalisedEmStep } from "../core/recon/xstep.ts";
import { fill } from "../core/gpu/ops.ts";

const CASES = scannerCases({
  "2d": { repeats: 10, trueCounts: 1e6 },
  stack3: { repeats: 5, trueCounts: 3e6 },
  "3d": { repeats: 1, trueCounts: 1e8 },
});

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Runs the benchmark and prints a table (or JSON lines with `--json`). */
export async function main(args: string[]): Promise<void> {
  const json = args.includes("--json");
  const wanted = (option(args, "--cases") ?? "2d,stack3").split(",");
  const subsets = Number(option(args, "--subsets") ?? 14);
  const cases = selectCases(CASES, wanted);
  if (!Number.isInteger(subsets) || subsets < 1) {
    throw new Error(`--subsets must be a positive integer, got ${option(args, "--subsets")}`);
  }
  const ctx = await defaultContext();
  const rows = [];
  for (const c of cases) {
    const scanner = c.scanner();
    const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
    const n = voxelCount(grid);
    // uniform water cylinder (radius 100 mm) as activity and μ-map (0.0096 /mm)
    const cyl = new Float32Array(n);
    const [nx, ny, nz] = grid.shape;
    for (let k = 0; k < nz; k++) {
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const x = grid.originMm[0] + i * grid.voxelSizeMm[0];
          const y = grid.originMm[1] + j * grid.voxelSizeMm[1];
          if (x * x + y * y < 100 * 100) cyl[i + nx * (j + ny * k)] = 1;
        }
      }
    }
    const t0 = performance.now();
    const model = ringForwardModel(ctx, scanner, {
      grid,
      subsets,
      muMap: cyl.map((v) => v * 0.0096),
    });
    const truth = ctx.array(grid.shape, cyl);
    const sim = await simulateCounts(model, truth, {
      trueCounts: c.trueCounts,
      randomsFraction: 0.2,
      seed: 1,
    });
    model.setAdditive(sim.additive);
    const lik = new PoissonLikelihood(model, sim.counts);
    for (let k = 0; k < subsets; k++) model.sensitivity(k);
    await ctx.finish();
    const setupMs = performance.now() - t0;

    // Full-data projector pair for comparison (its own projector over all LORs): forward of the
    // image, back projection of the measured prompts. (Back projection skips zero bins, so
    // back-projecting P x of a compact object would be unfairly cheap next to the EM ratio, which
    // is non-zero wherever counts were measured.)
    const P = new JosephProjector(ctx, scanner.lors(), grid);
    const y = ctx.array(P.outShape);
    const prompts = ctx.array(P.outShape, sim.counts);
    const b = ctx.array(P.inShape);
    const pair = await timeGpu(ctx, () =>
      ctx.run((rec) => {
        P.apply(rec, truth, y);
        P.adjoint(rec, prompts, b);
      }), c.repeats);
    P.destroy();
    for (const a of [y, prompts, b]) a.destroy();

    const x = ctx.array(grid.shape);
    ctx.run((rec) => fill(rec, x, 1));
    const scratch = emScratch(lik);
    let dispatches = 0;
    const osemMs = await timeGpu(ctx, () => {
      const rec = ctx.record();
      for (let k = 0; k < subsets; k++) {
        recordEmSubiteration(rec, lik, x, { subset: k, scratch });
      }
      dispatches = rec.dispatches;
      rec.submit();
    }, c.repeats);
    const rdp = relativeDifferencePrior(ctx, grid, { beta: 1, epsilon: 1e-3 });
    const mapMs = await timeGpu(ctx, () =>
      ctx.run((rec) => {
        for (let k = 0; k < subsets; k++) {
          recordEmSubiteration(rec, lik, x, { subset: k, scratch, prior: rdp });
        }
      }), c.repeats);
    const step = new PenalisedEmStep(lik);
    const xstepMs = await timeGpu(
      ctx,
      () => ctx.run((rec) => step.record(rec, x, truth, { beta: 0.01, iterations: 1 })),
      c.repeats,
    );
    // The same data as one subset: an MLEM iteration is one projector pair plus element-wise work,
    // which isolates the algorithm's own overhead from the per-subset back-projection set-up.
    const model1 = ringForwardModel(ctx, scanner, { grid, muMap: cyl.map((v) => v * 0.0096) });
    model1.setAdditive(sim.additive);
    const lik1 = new PoissonLikelihood(model1, sim.counts);
    model1.sensitivity(0);
    const scratch1 = emScratch(lik1);
    const mlemMs = await timeGpu(
      ctx,
      () => ctx.run((rec) => recordEmSubiteration(rec, lik1, x, { subset: 0, scratch: scratch1 })),
      c.repeats,
    );
    for (const a of [scratch1.bp, scratch1.tmp, scratch1.a, scratch1.bz]) a.destroy();
    lik1.destroy();
    model1.destroy();
    const row = {
      case: c.name,
      lors: scanner.bins,
      voxels: n,
      subsets,
      pair_ms: +pair.wall.toFixed(2),
      osem_iter_ms: +osemMs.wall.toFixed(2),
      overhead_pct: +(100 * (osemMs.wall / pair.wall - 1)).toFixed(1),
      mlem_iter_ms: +mlemMs.wall.toFixed(2),
      mlem_overhead_pct: +(100 * (mlemMs.wall / pair.wall - 1)).toFixed(1),
      map_rdp_iter_ms: +mapMs.wall.toFixed(2),
      xstep_iter_ms: +xstepMs.wall.toFixed(2),
      pair_cpu_ms: +pair.cpu.toFixed(1),
      osem_iter_cpu_ms: +osemMs.cpu.toFixed(1),
      overhead_cpu_pct: +(100 * (osemMs.cpu / pair.cpu - 1)).toFixed(1),
      mlem_iter_cpu_ms: +mlemMs.cpu.toFixed(1),
      mlem_overhead_cpu_pct: +(100 * (mlemMs.cpu / pair.cpu - 1)).toFixed(1),
      map_rdp_iter_cpu_ms: +mapMs.cpu.toFixed(1),
      xstep_iter_cpu_ms: +xstepMs.cpu.toFixed(1),
      dispatches_per_iter: dispatches,
      setup_ms: +setupMs.toFixed(0),
      adapter: ctx.adapter.description,
    };
    rows.push(row);
    if (json) console.log(JSON.stringify(row));
    step.destroy();
    rdp.destroy();
    for (const a of [x, scratch.bp, scratch.tmp, scratch.a, scratch.bz, truth]) a.destroy();
    lik.destroy();
    model.destroy();
  }
  if (!json) {
    console.log(adapterTitle("OSEM iteration vs projector pair", ctx));
    console.table(rows.map((r) => ({
      case: r.case,
      LORs: r.lors,
      voxels: r.voxels,
      subsets: r.subsets,
      "pair ms (cpu)": `${r.pair_ms} (${r.pair_cpu_ms})`,
      "OSEM iter ms (cpu)": `${r.osem_iter_ms} (${r.osem_iter_cpu_ms})`,
      "overhead % (cpu)": `${r.overhead_pct} (${r.overhead_cpu_pct})`,
      "MLEM iter ms (cpu)": `${r.mlem_iter_ms} (${r.mlem_iter_cpu_ms})`,
      "MLEM overhead % (cpu)": `${r.mlem_overhead_pct} (${r.mlem_overhead_cpu_pct})`,
      "MAP-RDP iter ms (cpu)": `${r.map_rdp_iter_ms} (${r.map_rdp_iter_cpu_ms})`,
      "x-step iter ms (cpu)": `${r.xstep_iter_ms} (${r.xstep_iter_cpu_ms})`,
      dispatches: r.dispatches_per_iter,
      "setup ms": r.setup_ms,
    })));
  }
}

if (import.meta.main) await main(Deno.args);
