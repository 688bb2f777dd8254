/**
 * Joseph projector benchmark: WGSL on the current adapter beside the plain-TypeScript reference.
 *
 *   deno task bench                 # table for people
 *   deno task bench --json          # one JSON object per case
 *   deno task bench --cases 2d,stack3
 *   deno task bench --projectors joseph,ring   # both by default, side by side
 *   deno task bench --no-reference             # skip the plain-TypeScript timings
 *   deno task bench --repeats 3                # fewer repetitions (default 20, 10, 1)
 *   deno task bench --cases tof2d,lm  # TOF and list-mode cases (bench/tof_bench.ts), opt-in
 *
 * Cases (from issue 2): `2d` one mMR-like slice (28 896 LORs, 128²), `stack3` three direct
 * slices (128²×3), `3d` 32 rings, max ring difference 7 (12.25 M LORs, 128²×32).
 * The 3d TypeScript reference is timed on every 64th LOR and scaled up (marked "extrapolated").
 * `ring` is the ring-sinogram projector (`ringProjector`: RingPlanarProjector for the direct-plane
 * cases, RingObliqueProjector for 3d); `pair cpu / joseph` is its pair CPU time over Joseph's in
 * the same run.
 *
 * @module
 */

import { adapterTitle, scannerCases, selectCases, timeGpu } from "./_timing.ts";
import { main as tofBench, TOF_CASES } from "./tof_bench.ts";
import { defaultContext } from "../core/gpu/context.ts";
import { MMR_VOXEL_MM } from "../core/geometry/scanner.ts";
import type { LorSet } from "../core/geometry/lors.ts";
import { JosephProjector } from "../core/projector/joseph.ts";
import { ringProjector, ringProjectorUnsupported } from "../core/projector/ring_oblique.ts";
import { josephBackReference, josephForwardReference } from "../core/projector/reference.ts";
import type { ImageGrid } from "../core/geometry/grid.ts";

/** The cases: repeats of the WGSL timings, and every how-many-th LOR the TS reference times. */
const CASES = scannerCases({
  "2d": { repeats: 20, referenceStride: 1 },
  stack3: { repeats: 10, referenceStride: 1 },
  "3d": { repeats: 1, referenceStride: 64 },
});

function strided(lors: LorSet, stride: number): LorSet {
  if (stride === 1) return lors;
  const count = Math.ceil(lors.count / stride);
  const e = new Float32Array(6 * count);
  for (let n = 0; n < count; n++) {
    e.set(lors.endpoints.subarray(6 * n * stride, 6 * n * stride + 6), 6 * n);
  }
  return { count, endpoints: e, shape: [count] };
}

function timeReference(lors: LorSet, grid: ImageGrid, stride: number) {
  const sub = strided(lors, stride);
  const x = new Float32Array(grid.shape[0] * grid.shape[1] * grid.shape[2]).fill(1);
  const y = new Float32Array(sub.count).fill(1);
  const t0 = performance.now();
  josephForwardReference(sub, grid, x);
  const t1 = performance.now();
  josephBackReference(sub, grid, y);
  const t2 = performance.now();
  return { fwd: (t1 - t0) * stride, back: (t2 - t1) * stride };
}

/** The projectors timed side by side: Joseph on stored LORs, and the ring-sinogram one. */
const PROJECTORS = ["joseph", "ring"] as const;

/** Runs the projector benchmark and prints a table (or JSON lines with `--json`). */
export async function main(args: string[]): Promise<void> {
  const json = args.includes("--json");
  const ci = args.indexOf("--cases");
  const asked = ci >= 0 ? args[ci + 1].split(",") : CASES.map((c) => c.name);
  // The TOF / list-mode cases run in their own benchmark (they simulate and reconstruct).
  const tof = asked.filter((w) => (TOF_CASES as readonly string[]).includes(w));
  const wanted = asked.filter((w) => !tof.includes(w));
  if (tof.length) {
    await tofBench([...args.filter((_, i) => i !== ci && i !== ci + 1), "--cases", tof.join(",")]);
  }
  if (wanted.length === 0) return;
  const ri = args.indexOf("--repeats");
  const cases = selectCases(CASES, wanted).map((c) =>
    ri >= 0 ? { ...c, repeats: Math.max(1, Number(args[ri + 1])) } : c
  );
  const pi = args.indexOf("--projectors");
  const projectors = pi >= 0 ? args[pi + 1].split(",") : [...PROJECTORS];
  const bad = projectors.filter((p) => !(PROJECTORS as readonly string[]).includes(p));
  if (bad.length) throw new Error(`unknown projector(s) ${bad}; choose from ${PROJECTORS}`);
  const ctx = await defaultContext();
  const rows = [];
  for (const c of cases) {
    const scanner = c.scanner();
    const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
    const lors = scanner.lors();
    const ref = args.includes("--no-reference")
      ? { fwd: NaN, back: NaN }
      : timeReference(lors, grid, c.referenceStride);
    const ringWhy = ringProjectorUnsupported(scanner, grid);
    let jointPair = NaN;
    for (const kind of projectors) {
      if (kind === "ring" && ringWhy) continue;
      const P = kind === "ring"
        ? ringProjector(ctx, scanner, grid)
        : new JosephProjector(ctx, lors, grid);
      const x = ctx.array(P.inShape, new Float32Array(P.inShape.reduce((a, b) => a * b)).fill(1));
      const y = ctx.array(P.outShape);
      const b = ctx.array(P.inShape);
      const fwd = await timeGpu(ctx, () => ctx.run((rec) => P.apply(rec, x, y)), c.repeats);
      const back = await timeGpu(ctx, () => ctx.run((rec) => P.adjoint(rec, y, b)), c.repeats);
      const pair = await timeGpu(ctx, () =>
        ctx.run((rec) => {
          P.apply(rec, x, y);
          P.adjoint(rec, y, b);
        }), c.repeats);
      if (kind === "joseph") jointPair = pair.cpu;
      const row = {
        case: c.name,
        projector: kind,
        lors: lors.count,
        voxels: x.length,
        fwd_ms: +fwd.wall.toFixed(2),
        back_ms: +back.wall.toFixed(2),
        pair_ms: +pair.wall.toFixed(2),
        fwd_cpu_ms: +fwd.cpu.toFixed(1),
        back_cpu_ms: +back.cpu.toFixed(1),
        pair_cpu_ms: +pair.cpu.toFixed(1),
        // pair CPU time relative to Joseph's in the same run (the figure to trust under load)
        pair_cpu_vs_joseph: +(pair.cpu / jointPair).toFixed(3),
        ts_fwd_ms: +ref.fwd.toFixed(1),
        ts_back_ms: +ref.back.toFixed(1),
        ts_extrapolated: c.referenceStride > 1,
        adapter: ctx.adapter.description,
      };
      rows.push(row);
      if (json) console.log(JSON.stringify(row));
      P.destroy();
      x.destroy();
      y.destroy();
      b.destroy();
    }
  }
  if (!json) {
    console.log(adapterTitle("Joseph projector", ctx));
    console.table(rows.map((r) => ({
      case: r.case,
      projector: r.projector,
      LORs: r.lors,
      voxels: r.voxels,
      "fwd ms": r.fwd_ms,
      "back ms": r.back_ms,
      "pair ms": r.pair_ms,
      "fwd cpu ms": r.fwd_cpu_ms,
      "back cpu ms": r.back_cpu_ms,
      "pair cpu ms": r.pair_cpu_ms,
      "pair cpu / joseph": r.pair_cpu_vs_joseph,
      "TS fwd ms": r.ts_fwd_ms + (r.ts_extrapolated ? "*" : ""),
      "TS back ms": r.ts_back_ms + (r.ts_extrapolated ? "*" : ""),
    })));
    if (rows.some((r) => r.ts_extrapolated)) {
      console.log("* TypeScript reference timed on every 64th LOR and scaled");
    }
  }
}

if (import.meta.main) await main(Deno.args);
