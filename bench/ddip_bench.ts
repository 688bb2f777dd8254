/**
 * DDIP-HQS benchmark: time per reverse diffusion step and per 3-slice 128² stack, split into
 * network (ε forward), VJP, penalised-EM x-step and overhead, on whatever adapter/provider this
 * machine gives (wasm on a CPU fallback adapter, WebGPU on a real GPU).
 *
 *   deno run -A --unstable-raw-imports bench/ddip_bench.ts [--model models/fdg_prior] [--steps 4] [--json]
 *
 * It runs `--steps` DDIP-HQS steps of the reference per-step work (2 fine-tuning iterations of
 * 5 EM iterations each) on an mMR-like 3-direct-plane stack (224 views × 129 bins × 3 planes,
 * attenuation, randoms) and extrapolates the per-stack time of the reference chain (200 steps) and
 * the CPU preset (25 steps) from the measured per-step time.
 *
 * @module
 */

import { Command } from "commander";
import { defaultContext } from "../core/gpu/context.ts";
import { centredGrid } from "../core/geometry/grid.ts";
import { MMR_VOXEL_MM, mmrLike2d } from "../core/geometry/scanner.ts";
import { ringForwardModel } from "../core/model/forward_model.ts";
import { PoissonLikelihood } from "../core/model/likelihood.ts";
import { simulateCounts } from "../core/model/simulate.ts";
import { loadPrior } from "../core/diffusion/prior.ts";
import { DDIP_CPU_PRESET, ddipConfig, ddipStack } from "../core/recon/ddip.ts";
import { directPlaneScanner } from "../core/recon/ddip_volume.ts";

const o = new Command("ddip_bench")
  .option("--model <dir>", "prior directory", "models/fdg_prior")
  .option("--steps <n>", "DDIP steps to time", "4")
  .option("--size <n>", "image size (must match the VJP graph)", "128")
  .option("--json", "print JSON instead of a table", false)
  .parse().opts();

const n = Number(o.size);
const ctx = await defaultContext();
const prior = await loadPrior(String(o.model), { adapter: ctx.adapter });
const grid = centredGrid([n, n, 3], [MMR_VOXEL_MM * 128 / n, MMR_VOXEL_MM * 128 / n, MMR_VOXEL_MM]);
const scanner = directPlaneScanner(mmrLike2d(), 3, MMR_VOXEL_MM);
// a head-sized ellipse with a hot insert
const truth = new Float32Array(n * n * 3);
const mu = new Float32Array(n * n * 3);
for (let k = 0; k < 3; k++) {
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
const sim = await simulateCounts(model, tx, { trueCounts: 3e5, randomsFraction: 0.2, seed: 1 });
tx.destroy();
model.setAdditive(sim.additive);
const likelihood = new PoissonLikelihood(model, sim.counts);
let mrMax = 0;
for (const v of truth) mrMax = Math.max(mrMax, v);
const mr = Float32Array.from(truth, (v) => v / mrMax);
const steps = Number(o.steps);

// warm-up (session and pipeline compilation), then the timed run
await ddipStack(prior, { likelihood, grid, mr }, {
  config: { startT: 200, steps: 1, initIterations: 1 },
});
const r = await ddipStack(prior, { likelihood, grid, mr }, {
  config: { startT: 200, steps, initIterations: 20 },
});
const t = r.timings;
const perStep = (t.totalMs - t.initMs) / t.steps;
const split = {
  network: t.networkMs / t.steps,
  vjp: t.vjpMs / t.steps,
  em: t.emMs / t.steps,
  adamw: t.adamMs / t.steps,
  overhead: t.overheadMs / t.steps,
};
const ref = ddipConfig();
const cpu = ddipConfig(DDIP_CPU_PRESET);
const result = {
  device: ctx.adapter?.description ?? "unknown adapter",
  provider: prior.provider,
  model: String(o.model),
  image: [n, n, 3],
  lors: scanner.sinogramShape,
  stepsTimed: t.steps,
  perStepMs: perStep,
  perStepSplitMs: split,
  perCallMs: {
    eps: t.networkMs / t.networkCalls,
    vjp: t.vjpMs / Math.max(1, t.vjpCalls),
    xStep5Em: t.emMs / Math.max(1, t.xSteps),
  },
  initMs: t.initMs,
  stackSecondsReference: (t.initMs + ref.steps * perStep) / 1000,
  stackSecondsCpuPreset: (t.initMs + cpu.steps * perStep) / 1000,
};
if (o.json) console.log(JSON.stringify(result, null, 1));
else {
  const row = (a: string, b: string) => console.log(`| ${a.padEnd(34)} | ${b.padStart(12)} |`);
  console.log(`DDIP-HQS on ${result.device}, prior on ${result.provider}, stack ${n}×${n}×3`);
  row("part", "ms per step");
  row("-".repeat(34), "-".repeat(12));
  for (const [k, v] of Object.entries(split)) row(k, v.toFixed(1));
  row("total", perStep.toFixed(1));
  row("ε forward (per call)", result.perCallMs.eps.toFixed(1));
  row("VJP (per call)", result.perCallMs.vjp.toFixed(1));
  row("x-step, 5 EM its (per call)", result.perCallMs.xStep5Em.toFixed(1));
  row("MLEM init, 20 its", t.initMs.toFixed(1));
  row("stack, reference (200 steps) [s]", result.stackSecondsReference.toFixed(1));
  row("stack, CPU preset (25 steps) [s]", result.stackSecondsCpuPreset.toFixed(1));
}
likelihood.destroy();
model.destroy();
await prior.release();
