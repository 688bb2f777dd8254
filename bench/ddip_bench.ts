/**
 * DDIP-HQS benchmark: time per reverse diffusion step and per 3-slice 128² stack, split into
 * network (ε forward), VJP, penalised-EM x-step and overhead, on whatever adapter/provider this
 * machine gives (wasm on a CPU fallback adapter, WebGPU on a real GPU).
 *
 *   deno run -A --unstable-raw-imports bench/ddip_bench.ts [--model models/fdg_prior] [--reps 3] [--skip-vjp] [--provider native] [--json]
 *
 * It times each part of a reverse step on an mMR-like 3-direct-plane stack (224 views × 129
 * bins × 3 planes, attenuation, randoms): ε forward, VJP, the x-step (5 penalised-EM
 * iterations, one submit plus transfers), AdamW and the host sampler arithmetic (medians of
 * `--reps` calls), composes the per-step cost of DDIP-HQS (2 × (ε + x-step + VJP + AdamW) + ε)
 * and DDS (ε + x-step), and the per-stack time of the reference chain (200 steps) and the CPU
 * preset (25 steps).
 *
 * @module
 */

import { Command } from "commander";
import { defaultContext } from "../core/gpu/context.ts";
import { benchStack, stackLikelihood } from "./_stack.ts";
import { RingPlanarProjector } from "../core/projector/ring.ts";
import { RingObliqueProjector } from "../core/projector/ring_oblique.ts";
import { loadPrior } from "../core/diffusion/load.ts";
import { AdamW } from "../core/diffusion/adamw.ts";
import { ddimStep, tweedie, tweedieLossGrad } from "../core/diffusion/sampler.ts";
import { DDIP_CPU_PRESET, DDIP_PAPER, ddipConfig, mlemInit } from "../core/recon/ddip/mod.ts";
import { PenalisedEmStep } from "../core/recon/xstep.ts";
import { Rng } from "../core/random.ts";
import { DEFAULT_PRIOR_DIR } from "../core/diffusion/default_prior.ts";

const o = new Command("ddip_bench")
  .option("--model <dir>", "prior directory", DEFAULT_PRIOR_DIR)
  .option("--reps <n>", "repetitions per timed call (median)", "3")
  .option("--vjp-reps <n>", "repetitions of the VJP call", "1")
  .option("--skip-vjp", "do not time the VJP graph", false)
  .option(
    "--threads <n>",
    "prior threads: ORT-web wasm threads (2 stalls the VJP graph in Deno), or onnxruntime-node intra-op threads with --provider native",
    "1",
  )
  .option(
    "--provider <p>",
    "prior runtime: auto (ORT-web), wasm, webgpu or native (onnxruntime-node, needs --allow-ffi)",
    "auto",
  )
  .option("--size <n>", "image size (must match the VJP graph)", "128")
  .option("--projector <p>", "x-step projector: auto (ring here), ring or joseph", "auto")
  .option("--json", "print JSON instead of a table", false)
  .parse().opts();

const n = Number(o.size);
const ctx = await defaultContext();
const prior = await loadPrior(String(o.model), {
  adapter: ctx.adapter,
  numThreads: Number(o.threads),
  provider: String(o.provider) as "auto" | "wasm" | "webgpu" | "native",
});
const stack = await benchStack(ctx, n);
const { grid, scanner, truth } = stack;
const { model, likelihood } = stackLikelihood(ctx, stack, {
  projector: String(o.projector) as "auto" | "ring" | "joseph",
});
let mrMax = 0;
for (const v of truth) mrMax = Math.max(mrMax, v);
const mr = Float32Array.from(truth, (v) => v / mrMax);
const reps = Number(o.reps);
const k = ddipConfig().fineTuneIterations;
const emIts = ddipConfig().emIterations;
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const time = async (fn: () => Promise<unknown>, n: number): Promise<number> => {
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
};
const params = prior.createParams();
const xt = Float32Array.from(truth, (v) => v / mrMax + 0.1);
const log = (m: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${m}`);
// MLEM initialisation (20 its) and the x-step (5 penalised-EM its, one submit + transfers)
const t0 = performance.now();
const init = await mlemInit(likelihood, 20);
const initMs = performance.now() - t0;
log(`MLEM 20 its ${initMs.toFixed(0)} ms`);
const dev = new PenalisedEmStep(likelihood);
const xa = ctx.array(grid.shape);
const za = ctx.array(grid.shape);
const xStepMs = await time(async () => {
  za.write(init);
  ctx.run((rec) => dev.record(rec, xa, za, { beta: 0.01, iterations: emIts }));
  await xa.read();
}, reps);
log(`x-step ${xStepMs.toFixed(0)} ms`);
// the NLL variant's data term instead: one full EM back projection (forward + back projection of
// all subsets) with upload and readback, as ddipStack's "ddip-nll" does per fine-tuning iteration
const bpa = ctx.array(grid.shape);
const nllGradMs = await time(async () => {
  xa.write(init);
  ctx.run((rec) =>
    likelihood.recordFullEmBackprojection(rec, xa, bpa, model.subsetCount > 1 ? za : undefined)
  );
  await bpa.read();
}, reps);
log(`NLL data gradient ${nllGradMs.toFixed(0)} ms`);
await prior.eps(xt, 150, mr, params); // warm-up
const epsMs = await time(() => prior.eps(xt, 150, mr, params), reps);
log(`eps ${epsMs.toFixed(0)} ms`);
let vjpMs = NaN;
let adamMs = NaN;
if (!o.skipVjp && prior.canFineTune) {
  let grads: Map<string, Float32Array> | null = null;
  vjpMs = await time(async () => {
    grads = (await prior.vjp(xt, 150, mr, params, xt)).grads;
  }, Number(o.vjpReps));
  log(`vjp ${vjpMs.toFixed(0)} ms`);
  const opt = new AdamW();
  adamMs = await time(() => Promise.resolve(opt.step(params.clone(), grads!)), reps);
}
// host sampler arithmetic per step: k+1 Tweedie estimates, k loss gradients, one DDIM step
const rng = new Rng(1);
const hostMs = await time(() => {
  for (let i = 0; i < k + 1; i++) tweedie(xt, xt, 0.9);
  for (let i = 0; i < k; i++) tweedieLossGrad(xt, init, 0.9);
  ddimStep(xt, xt, { alphaBarPrev: 0.95, eta: 0.85, rng });
  return Promise.resolve();
}, reps);
const split = {
  network: (k + 1) * epsMs,
  vjp: k * vjpMs,
  em: k * xStepMs,
  adamw: k * adamMs,
  overhead: hostMs,
};
const dds = { network: epsMs, em: xStepMs, overhead: hostMs };
const nll = { ...split, em: k * nllGradMs };
const perStep = Object.values(split).reduce((a, b) => a + b, 0);
const perStepDds = Object.values(dds).reduce((a, b) => a + b, 0);
const perStepNll = Object.values(nll).reduce((a, b) => a + b, 0);
const ref = ddipConfig(DDIP_PAPER);
const cpu = ddipConfig(DDIP_CPU_PRESET);
const result = {
  device: ctx.adapter.description,
  provider: prior.provider,
  projector: model.subsets[0].geometric instanceof RingPlanarProjector ||
      model.subsets[0].geometric instanceof RingObliqueProjector
    ? "ring"
    : "joseph",
  model: String(o.model),
  image: [n, n, 3],
  sinogram: scanner.sinogramShape,
  perCallMs: {
    eps: epsMs,
    vjp: vjpMs,
    xStep5Em: xStepMs,
    nllDataGradient: nllGradMs,
    adamw: adamMs,
    host: hostMs,
  },
  ddipHqsPerStepMs: { ...split, total: perStep },
  ddsPerStepMs: { ...dds, total: perStepDds },
  ddipNllPerStepMs: { ...nll, total: perStepNll },
  initMs,
  stackSeconds: {
    ddipHqsReference: (initMs + ref.steps * perStep) / 1000,
    ddipHqsCpuPreset: (initMs + cpu.steps * perStep) / 1000,
    ddsReference: (initMs + ref.steps * perStepDds) / 1000,
    ddsCpuPreset: (initMs + cpu.steps * perStepDds) / 1000,
    ddipNllReference: (initMs + ref.steps * perStepNll) / 1000,
    ddipNllCpuPreset: (initMs + cpu.steps * perStepNll) / 1000,
  },
};
if (o.json) console.log(JSON.stringify(result, null, 1));
else {
  const row = (a: string, b: string, c = "", d = "") =>
    console.log(`| ${a.padEnd(36)} | ${b.padStart(12)} | ${c.padStart(10)} | ${d.padStart(12)} |`);
  console.log(
    `DDIP-HQS on ${result.device}, prior on ${result.provider}, ${result.projector} projector, stack ${n}×${n}×3`,
  );
  row("per reverse step", "DDIP-HQS ms", "DDS ms", "DDIP-NLL ms");
  row("-".repeat(36), "-".repeat(12), "-".repeat(10), "-".repeat(12));
  row(
    `network (${k + 1} / 1 / ${k + 1} ε)`,
    split.network.toFixed(0),
    dds.network.toFixed(0),
    nll.network.toFixed(0),
  );
  row(`VJP (${k} / 0 / ${k})`, split.vjp.toFixed(0), "0", nll.vjp.toFixed(0));
  row(
    `EM (${k} / 1 × ${emIts} its; NLL ${k} × 1 pair)`,
    split.em.toFixed(0),
    dds.em.toFixed(0),
    nll.em.toFixed(0),
  );
  row(`AdamW (${k})`, split.adamw.toFixed(1), "0", nll.adamw.toFixed(1));
  row(
    "overhead (host sampler)",
    split.overhead.toFixed(1),
    dds.overhead.toFixed(1),
    nll.overhead.toFixed(1),
  );
  row("total", perStep.toFixed(0), perStepDds.toFixed(0), perStepNll.toFixed(0));
  row("MLEM init, 20 its", initMs.toFixed(0), initMs.toFixed(0), initMs.toFixed(0));
  row(
    "stack, 200 steps [s]",
    result.stackSeconds.ddipHqsReference.toFixed(0),
    result.stackSeconds.ddsReference.toFixed(0),
    result.stackSeconds.ddipNllReference.toFixed(0),
  );
  row(
    "stack, 25 steps [s]",
    result.stackSeconds.ddipHqsCpuPreset.toFixed(0),
    result.stackSeconds.ddsCpuPreset.toFixed(0),
    result.stackSeconds.ddipNllCpuPreset.toFixed(0),
  );
}
dev.destroy();
bpa.destroy();
xa.destroy();
za.destroy();
likelihood.destroy();
model.destroy();
await prior.release();
