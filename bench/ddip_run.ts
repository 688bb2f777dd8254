/**
 * DDIP-HQS run for real (not composed from per-call timings as `ddip_bench.ts` does) on the
 * benchmark stack (`_stack.ts`), or on a volume of direct planes stack by stack: wall time, where
 * it went, and a sanity check of the result (finite, log-likelihood above the MLEM start's).
 *
 *   deno run -A bench/ddip_run.ts [--preset reference|cpu] [--steps n] [--slices 3]
 *       [--stride 2] [--concurrency 1] [--provider auto|wasm|webgpu|native] [--threads 1] [--inter-op 1]
 *       [--xstep-subsets S] [--em-iterations n] [--seed n] [--json]
 *
 * `--slices 3` runs one stack (`ddipStack`); more runs `ddipVolume` over overlapping stacks
 * (`--stride` between their centres). Progress goes to stderr every 10 % of the steps.
 * `--xstep-subsets S` (one stack) runs the x-steps over S ordered subsets; `nrmseToTruth` (after
 * the best scale) compares such variants on this phantom. `imageSha256` (the output's bytes)
 * tells whether a change left the result bit-identical.
 *
 * @module
 */

import { Command } from "commander";
import { defaultContext } from "../core/gpu/context.ts";
import { loadPrior } from "../core/diffusion/load.ts";
import {
  DDIP_CPU_PRESET,
  DDIP_PAPER,
  type DdipConfigInput,
  ddipStack,
  type DdipTimings,
  ddipVolume,
} from "../core/recon/ddip/mod.ts";
import { benchStack, stackLikelihood } from "./_stack.ts";
import { DEFAULT_PRIOR_DIR } from "../core/diffusion/default_prior.ts";

const o = new Command("ddip_run")
  .option("--model <dir>", "prior directory", DEFAULT_PRIOR_DIR)
  .option("--preset <p>", "reference (200 steps) or cpu (25 steps)", "reference")
  .option("--steps <n>", "override the number of reverse steps")
  .option("--slices <n>", "slices: 3 = one stack, more = a volume", "3")
  .option("--stride <n>", "distance between stack centres in a volume (1–3)", "2")
  .option("--concurrency <n>", "stacks of a volume reconstructed at the same time (1 or 2)", "1")
  .option("--provider <p>", "prior runtime: auto, wasm, webgpu or native", "auto")
  .option(
    "--threads <n>",
    "prior threads: onnxruntime-node intra-op threads with --provider native (not bit-identical to 1 thread; faster only on an otherwise idle machine), ORT-web wasm threads otherwise (keep 1)",
    "1",
  )
  .option(
    "--inter-op <n>",
    "onnxruntime-node inter-op threads with --provider native (parallel executor; same results as 1)",
    "1",
  )
  .option("--xstep-subsets <s>", "x-step over S ordered subsets (config.xStepOrderedSubsets)", "1")
  .option("--em-iterations <n>", "override the x-step's penalised-EM iterations")
  .option("--seed <n>", "override the chain's seed")
  .option("--json", "print JSON instead of lines", false)
  .parse().opts();

const presets: Record<string, DdipConfigInput> = {
  reference: DDIP_PAPER,
  cpu: DDIP_CPU_PRESET,
};
const base = presets[String(o.preset)];
if (!base) throw new Error(`--preset must be reference or cpu, got ${o.preset}`);
const xsub = Number(o.xstepSubsets);
const config: DdipConfigInput = {
  ...base,
  ...(o.steps ? { steps: Number(o.steps) } : {}),
  ...(o.emIterations ? { emIterations: Number(o.emIterations) } : {}),
  ...(o.seed !== undefined ? { seed: Number(o.seed) } : {}),
  ...(xsub > 1 ? { xStepOrderedSubsets: true } : {}),
};
const slices = Number(o.slices);
const log = (m: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${m}`);

const ctx = await defaultContext();
const prior = await loadPrior(String(o.model), {
  adapter: ctx.adapter,
  provider: String(o.provider) as "auto" | "wasm" | "webgpu" | "native",
  numThreads: Number(o.threads),
  interOpThreads: Number(o.interOp),
});
log(`adapter ${ctx.adapter.description}; prior on ${prior.provider} ${prior.providerNote}`);
const stack = await benchStack(ctx, 128, slices);
let mrMax = 0;
for (const v of stack.truth) mrMax = Math.max(mrMax, v);
const mr = Float32Array.from(stack.truth, (v) => v / mrMax);
const steps = config.steps ?? 200;
const progress = {
  every: Math.max(1, Math.round(steps / 10)),
  onIteration: (s: { iteration: number }) => log(`step ${s.iteration}/${steps}`),
};
const t0 = performance.now();
let timings: DdipTimings;
let image: Float32Array;
let sanity: Record<string, number | boolean>;
if (slices === 3) {
  const { model, likelihood } = stackLikelihood(ctx, stack, { subsets: xsub });
  const r = await ddipStack(prior, { likelihood, grid: stack.grid, mr }, {
    config,
    callbacks: [progress],
  });
  timings = r.timings;
  image = r.image;
  sanity = {
    logLikelihoodInit: r.logLikelihood.init,
    logLikelihoodFinal: r.logLikelihood.final,
    improved: r.logLikelihood.final > r.logLikelihood.init,
  };
  likelihood.destroy();
  model.destroy();
} else {
  const r = await ddipVolume(ctx, prior, {
    grid: stack.grid,
    scanner: stack.scanner,
    counts: stack.counts,
    additive: stack.additive,
    mu: stack.mu,
    mr,
  }, {
    config,
    stackStride: Number(o.stride),
    concurrency: Number(o.concurrency),
    onStack: ({ index, count }) => log(`stack ${index + 1}/${count} done`),
  });
  timings = r.timings;
  image = r.image;
  sanity = { stacks: r.centres.length };
}
const wallS = (performance.now() - t0) / 1000;
let finite = true;
for (const v of image) finite &&= Number.isFinite(v);
// distance to the truth after the best scale (the image is in activity units, the truth not)
let tx = 0;
let xx = 0;
for (let i = 0; i < image.length; i++) {
  tx += stack.truth[i] * image[i];
  xx += image[i] * image[i];
}
const a = xx > 0 ? tx / xx : 0;
let e2 = 0;
let t2 = 0;
for (let i = 0; i < image.length; i++) {
  e2 += (a * image[i] - stack.truth[i]) ** 2;
  t2 += stack.truth[i] ** 2;
}
const digest = await crypto.subtle.digest(
  "SHA-256",
  image.buffer.slice(image.byteOffset, image.byteOffset + image.byteLength) as ArrayBuffer,
);
const imageSha256 = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0"))
  .join("");
const result = {
  device: ctx.adapter.description,
  fallbackAdapter: ctx.adapter.isFallback,
  provider: prior.provider,
  providerNote: prior.providerNote,
  preset: String(o.preset),
  steps,
  slices,
  stride: Number(o.stride),
  concurrency: Number(o.concurrency),
  wallSeconds: +wallS.toFixed(2),
  timingsMs: Object.fromEntries(
    Object.entries(timings).map(([k, v]) => [k, k.endsWith("Ms") ? Math.round(v) : v]),
  ),
  finite,
  xStepSubsets: xsub,
  emIterations: config.emIterations ?? 5,
  interOpThreads: Number(o.interOp),
  nrmseToTruth: +Math.sqrt(e2 / t2).toFixed(5),
  imageSha256,
  ...sanity,
};
if (o.json) console.log(JSON.stringify(result, null, 1));
else {
  console.log(
    `DDIP-HQS ${
      slices === 3 ? "one stack" : `${slices}-slice volume`
    }, ${o.preset} (${steps} steps) on ${result.device}, prior on ${result.provider}: ${
      wallS.toFixed(1)
    } s`,
  );
  console.log(JSON.stringify(result.timingsMs));
}
await prior.release();
if (!finite) throw new Error("the reconstruction has non-finite values");
