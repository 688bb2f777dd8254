/**
 * DDIP-HQS: PET reconstruction with a deep diffusion image prior adapted to the data by LoRA
 * fine-tuning, with half-quadratic splitting between the data term and the network
 * (Hashimoto & Gong, arXiv 2507.15078; `docs/ddip.md`), plus the diffusion
 * baselines/ablations that share its sampler:
 *
 * - `"ddip-hqs"`: per reverse step, `fineTuneIterations` × (Tweedie estimate z (no gradient) →
 *   penalised-EM x-step towards z on the device with the full forward model → one AdamW step on
 *   `mean‖x̂0(θ) − x_hqs‖²` through the prior's VJP graph), then the DDS-style DDIM step with the
 *   adapted network.
 * - `"dds"` (PET-DDS): the same sampler, no fine-tuning; x̂0 is replaced by the x-step result (the
 *   EM/HQS anchor) before each DDIM step.
 * - `"ddip-nll"`: fine-tuning without HQS, on the Poisson negative log-likelihood of `s·x̂0(θ)`
 *   (the original DDIP's measurement-domain loss): its gradient `s (Aᵀm − Aᵀ(m y/ybar))/ΣY` is
 *   taken through the projector explicitly and then through the network's VJP.
 * - `useMr: false` runs any of them with zero MR channels (the "no anatomical prior" ablation).
 *
 * One call reconstructs one 3-slice stack ({@linkcode ddipStack}); {@linkcode ddipVolume} covers
 * a whole volume with overlapping stacks (`volume.ts`).
 *
 * Images travel between the prior (onnxruntime-web, host arrays) and the EM step (WebGPU) once per
 * x-step; each x-step (all its EM iterations) is one submit.
 *
 * @module
 */

import type { GpuArray } from "../../gpu/context.ts";
import type { ImageGrid } from "../../geometry/grid.ts";
import type { PoissonLikelihood } from "../../model/likelihood.ts";
import { AdamW } from "../../diffusion/adamw.ts";
import type { LoraState } from "../../diffusion/lora.ts";
import type { ScorePrior } from "../../diffusion/prior.ts";
import { ddimStep, noiseTo, tweedie, tweedieLossGrad } from "../../diffusion/sampler.ts";
import { Rng, subSeed } from "../../random.ts";
import { mlem } from "../algorithms.ts";
import type { IterationState, ReconCallback } from "../callbacks.ts";
import { callbackDue } from "../callbacks.ts";
import { PenalisedEmStep } from "../xstep.ts";
import { disagreementOptionsOf, restrictToDisagreement } from "./residual.ts";
import {
  DDIP_METHODS,
  type DdipConfig,
  ddipConfig,
  type DdipConfigInput,
  type DdipMethod,
  hqsBeta,
} from "./config.ts";
import { autoScale } from "./scale.ts";

/** One 3-slice stack to reconstruct. */
export interface DdipStackProblem {
  /** Data and forward model on an `[nx, ny, 3]` grid (activity units). */
  likelihood: PoissonLikelihood;
  /** The stack's grid (used for the scale filter). */
  grid: ImageGrid;
  /** The MR stack `[nx, ny, 3]` on the prior's scale (divided by the MR volume max). */
  mr: Float32Array;
}

/** What DDIP hands to progress callbacks after each reverse step (one "iteration"). */
export interface DdipIterationState extends IterationState {
  /** The step's timestep t. */
  t: number;
  /** Estimated milliseconds left for this stack. */
  timeLeftMs: number;
  /** Fine-tuning loss of the step's last AdamW iteration (NaN without fine-tuning). */
  loss: number;
}

/**
 * Options of {@linkcode ddipStack}.
 *
 * @example
 * ```ts
 * import { DDIP_CPU_PRESET, type DdipStackOptions, progressCallback } from "@petrel/petrel";
 * const options: DdipStackOptions = {
 *   config: { ...DDIP_CPU_PRESET, seed: 3 }, // constants over the defaults
 *   method: "ddip-hqs", // or "dds", "ddip-nll"
 *   useMr: true, // false: the no-MR ablation
 *   samples: 4, // mean and voxel-wise std over 4 chains
 *   callbacks: [progressCallback({ label: "stack 20" })],
 *   signal: AbortSignal.timeout(30 * 60_000), // stop between steps after 30 min
 * };
 * ```
 */
export interface DdipStackOptions {
  /** The constants (defaults: {@linkcode DDIP_DEFAULTS}). */
  config?: DdipConfigInput;
  /** Which method (default "ddip-hqs"). */
  method?: DdipMethod;
  /** Feed the MR channels (default true); false feeds zeros. */
  useMr?: boolean;
  /**
   * LoRA state to adapt (modified in place, so it can be carried to the next stack); a fresh one
   * from `prior.createParams()` by default.
   */
  params?: LoraState;
  /** Activity per prior unit; chosen from the MLEM initialisation when omitted. */
  scale?: number;
  /** The MLEM initialisation in activity units (computed when omitted). */
  init?: Float32Array;
  /** Seed override (default `config.seed`). */
  seed?: number;
  /**
   * Chains to run from different seeds (default 1). With N > 1 the result's image is their
   * voxel-wise mean and `std` their voxel-wise standard deviation (N − 1 in the denominator): a
   * posterior-like spread. Chain 0 uses `seed`, chain k > 0 `subSeed(seed, "sample-k")`; all share
   * the initialisation and the scale, and each starts from the LoRA state given (chain 0 adapts
   * `params` in place, the others adapt copies).
   */
  samples?: number;
  /** Progress observers (same protocol as the classical algorithms; one call per step). */
  callbacks?: readonly ReconCallback[];
  /** Stops between steps when aborted. */
  signal?: AbortSignal;
}

/** Where the time of a run went (milliseconds). */
export interface DdipTimings {
  /** Whole call. */
  totalMs: number;
  /** MLEM initialisation. */
  initMs: number;
  /** Network forward passes (ε). */
  networkMs: number;
  /** VJP graph runs (forward + backward). */
  vjpMs: number;
  /** x-steps / likelihood gradients on the device, including transfers. */
  emMs: number;
  /** AdamW updates. */
  adamMs: number;
  /** Everything else (sampler arithmetic, progress, bookkeeping). */
  overheadMs: number;
  /** Reverse steps taken. */
  steps: number;
  networkCalls: number;
  vjpCalls: number;
  xSteps: number;
}

/**
 * A {@linkcode DdipTimings} with every field 0: the start of a run's tally, and of the sum over
 * the stacks of a volume (which adds each stack's timings field by field).
 *
 * @example
 * ```ts
 * import { addTimings, zeroDdipTimings } from "@petrel/petrel";
 * const total = zeroDdipTimings(); // a volume's tally
 * const stack = { ...zeroDdipTimings(), totalMs: 1500, steps: 25 }; // one stack's result.timings
 * addTimings(total, stack);
 * total.steps; // 25
 * ```
 */
export function zeroDdipTimings(): DdipTimings {
  return {
    totalMs: 0,
    initMs: 0,
    networkMs: 0,
    vjpMs: 0,
    emMs: 0,
    adamMs: 0,
    overheadMs: 0,
    steps: 0,
    networkCalls: 0,
    vjpCalls: 0,
    xSteps: 0,
  };
}

/** Result of {@linkcode ddipStack}. */
export interface DdipStackResult {
  /** The reconstruction `s · clip(x̂0, 0, 1)` in activity units, `[nx, ny, 3]`. */
  image: Float32Array;
  /** The MLEM initialisation (activity units). */
  init: Float32Array;
  /** Activity per prior unit used. */
  scale: number;
  /** "auto" (from the data, see the config) or "given". */
  scaleSource: "auto" | "given";
  /** Poisson log-likelihood `L(x)` of the initialisation and of the result. */
  logLikelihood: { init: number; final: number };
  /** Fine-tuning loss per AdamW step (empty without fine-tuning). */
  losses: number[];
  timings: DdipTimings;
  method: DdipMethod;
  useMr: boolean;
  config: DdipConfig;
  seed: number;
  /** Chains averaged (`options.samples`). */
  samples: number;
  /** Voxel-wise standard deviation over the chains (activity units; only when samples > 1). */
  std?: Float32Array;
  /**
   * Each chain's image, chain 0 (the one seeded `seed`, bit-identical to the `samples: 1` run)
   * first; only when samples > 1.
   */
  sampleImages?: Float32Array[];
  /**
   * The disagreement image (the final iterations' in-plane smoothed change in robust standard
   * deviations, `residual.ts`) when they ran with `finalEmRegion: "disagreement"` (of the first
   * chain when samples > 1).
   */
  disagreement?: Float32Array;
}

/**
 * The MLEM initialisation (activity units) of a stack: `iterations` EM iterations from 1.
 *
 * @example
 * ```ts
 * import { defaultContext, directPlaneScanner, mlemInit, MMR_VOXEL_MM, mmrLike2d, PoissonLikelihood, readImage, readSinogram, ringForwardModel } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * // one 3-slice stack: 3 direct planes on the centres of 2.086 mm slices, 128 × 128 × 3 voxels
 * const scanner = directPlaneScanner(mmrLike2d(), 3, MMR_VOXEL_MM);
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const { data: counts } = await readSinogram("in/stack_prompts.npy"); // [129, 224, 3]
 * const { data: mr } = await readImage("in/stack_mr.nii"); // MR stack divided by the volume's max
 * const likelihood = new PoissonLikelihood(ringForwardModel(ctx, scanner, { grid }), counts);
 * const init = await mlemInit(likelihood, 20); // host image [128, 128, 3], activity units
 * ```
 */
export async function mlemInit(
  likelihood: PoissonLikelihood,
  iterations: number,
): Promise<Float32Array> {
  const x = await mlem(likelihood, { iterations, initial: 1 });
  const v = await x.read();
  x.destroy();
  return v;
}

/**
 * `∂ℓ/∂ε` of the measurement-domain loss `ℓ(x̂0) = −L(y | s·max(x̂0, 0)) / ΣY` given the EM back
 * projection `bp = Aᵀ(m y / ybar)` and the sensitivity `sens = Aᵀ m` at `s·max(x̂0, 0)`:
 * `∂ℓ/∂x̂0 = s (sens − bp) / ΣY` (straight through the clamp), times `∂x̂0/∂ε = −√(1−ᾱ)/√ᾱ`.
 *
 * @example
 * ```ts
 * import { DdpmSchedule, nllLossGradEps } from "@petrel/petrel";
 * // EM back projection and sensitivity at s·max(x̂0, 0), read back from the device
 * const bp = Float32Array.of(1, 2, 0.5);
 * const sens = Float32Array.of(1, 1, 1);
 * const gradEps = nllLossGradEps(bp, sens, {
 *   scale: 3.6, // activity per prior unit
 *   totalCounts: 1e5, // ΣY
 *   alphaBar: new DdpmSchedule().alphaBar(199),
 * }); // 0 where the data are fitted (bp = sens); the input of prior.vjp for "ddip-nll"
 * ```
 */
export function nllLossGradEps(
  bp: Float32Array,
  sens: Float32Array,
  options: { scale: number; totalCounts: number; alphaBar: number },
): Float32Array {
  const { scale, totalCounts, alphaBar } = options;
  if (bp.length !== sens.length) {
    throw new RangeError(`nllLossGradEps: bp has ${bp.length} values, sens ${sens.length}`);
  }
  const c = -Math.sqrt(1 - alphaBar) / Math.sqrt(alphaBar) * scale / Math.max(totalCounts, 1);
  const g = new Float32Array(bp.length);
  for (let i = 0; i < g.length; i++) g[i] = c * (sens[i] - bp[i]);
  return g;
}

/** Device helper: the x-step (and likelihood pieces) on host images, one submit per call. */
class DeviceStep {
  readonly x: GpuArray;
  readonly z: GpuArray;
  readonly bp: GpuArray;
  readonly ll: GpuArray;
  readonly step: PenalisedEmStep;
  #sens: Float32Array | null = null;

  constructor(readonly likelihood: PoissonLikelihood, readonly orderedSubsets = false) {
    const ctx = likelihood.model.ctx;
    const shape = likelihood.model.imageShape;
    this.x = ctx.array(shape);
    this.z = ctx.array(shape);
    this.bp = ctx.array(shape);
    this.ll = ctx.array([1]);
    this.step = new PenalisedEmStep(likelihood);
  }

  /**
   * x_hqs (activity units) from target `zAct`: `iterations` penalised-EM iterations (over the
   * ordered subsets if `orderedSubsets`, by default as constructed).
   */
  async xStep(
    zAct: Float32Array,
    beta: number,
    iterations: number,
    orderedSubsets = this.orderedSubsets,
  ): Promise<Float32Array> {
    this.z.write(zAct);
    this.likelihood.model.ctx.run((rec) => {
      this.step.record(rec, this.x, this.z, {
        beta,
        iterations,
        initFromTarget: true,
        orderedSubsets,
      });
    });
    return await this.x.read();
  }

  /** `{bp, sens}` at image `xAct` (clamped at 0). */
  async emBackprojection(xAct: Float32Array): Promise<{ bp: Float32Array; sens: Float32Array }> {
    const pos = Float32Array.from(xAct, (v) => Math.max(v, 0));
    this.x.write(pos);
    const tmp = this.likelihood.model.subsetCount > 1 ? this.z : undefined;
    this.likelihood.model.ctx.run((rec) => {
      this.likelihood.recordFullEmBackprojection(rec, this.x, this.bp, tmp);
    });
    const bp = await this.bp.read();
    this.#sens ??= await this.likelihood.model.totalSensitivity().read();
    return { bp, sens: this.#sens };
  }

  /** `L(x)` of a host image. */
  async logLikelihood(xAct: Float32Array): Promise<number> {
    this.x.write(xAct);
    this.likelihood.model.ctx.run((rec) =>
      this.likelihood.recordLogLikelihood(rec, this.x, this.ll)
    );
    return (await this.ll.read())[0] + this.likelihood.constant;
  }

  destroy(): void {
    for (const a of [this.x, this.z, this.bp, this.ll]) a.destroy();
    this.step.destroy();
  }
}

function scaled(v: Float32Array, s: number, clip = false): Float32Array {
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = (clip ? Math.min(1, Math.max(0, v[i])) : v[i]) * s;
  return out;
}

/** The timing fields {@linkcode ddipStack} measures itself (the network's come from the prior). */
type TimedKey = "initMs" | "emMs" | "adamMs";

/** Checks the problem against the prior and the method; returns the stack's `[nx, ny, c]`. */
function checkStack(
  prior: ScorePrior,
  problem: DdipStackProblem,
  config: DdipConfig,
  method: DdipMethod,
): [number, number, number] {
  if (!DDIP_METHODS.includes(method)) {
    throw new RangeError(
      `unknown DDIP method "${method}"; expected one of ${DDIP_METHODS.join(", ")}`,
    );
  }
  const shape = problem.likelihood.model.imageShape;
  const n = shape.reduce((a, b) => a * b, 1);
  const c = prior.channels;
  if (shape.length !== 3 || shape[2] !== c) {
    throw new RangeError(
      `DDIP stacks are [nx, ny, ${c}] images (${c} slices, the prior's PET channels); the forward model's image is ${
        JSON.stringify(shape)
      }`,
    );
  }
  if (problem.mr.length !== n * prior.meta.channels.mr / c) {
    throw new RangeError(
      `mr has ${problem.mr.length} values, expected ${
        n * prior.meta.channels.mr / c
      } (the stack's MR channels)`,
    );
  }
  if (config.startT > prior.schedule.T) {
    throw new RangeError(`startT ${config.startT} exceeds the prior's T = ${prior.schedule.T}`);
  }
  if (method !== "dds" && config.fineTuneIterations > 0 && !prior.canFineTune) {
    throw new Error(`method "${method}" fine-tunes the prior, but ${prior.fineTuneNote}`);
  }
  return [shape[0], shape[1], shape[2]];
}

/**
 * Reconstructs one 3-slice stack with DDIP-HQS (or the `dds` / `ddip-nll` variants, see the
 * module notes), from one seed or as the mean and spread of `options.samples` chains. Seeded: the
 * same inputs, seed and adapter give bit-identical output.
 *
 * @example
 * ```ts
 * import { ddipStack, defaultContext, directPlaneScanner, loadPrior, MMR_VOXEL_MM, mmrLike2d, PoissonLikelihood, readImage, readSinogram, ringForwardModel } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * // one 3-slice stack: 3 direct planes on the centres of 2.086 mm slices, 128 × 128 × 3 voxels
 * const scanner = directPlaneScanner(mmrLike2d(), 3, MMR_VOXEL_MM);
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const { data: counts } = await readSinogram("in/stack_prompts.npy"); // [129, 224, 3]
 * const { data: mr } = await readImage("in/stack_mr.nii"); // MR stack divided by the volume's max
 * const likelihood = new PoissonLikelihood(ringForwardModel(ctx, scanner, { grid }), counts);
 * const prior = await loadPrior("models/fdg_prior", { adapter: ctx.adapter });
 * const r = await ddipStack(prior, { likelihood, grid, mr }, { seed: 1, samples: 4 });
 * console.log(r.scale, r.logLikelihood, r.timings.totalMs, r.std); // std: spread over 4 chains
 * ```
 */
export async function ddipStack(
  prior: ScorePrior,
  problem: DdipStackProblem,
  options: DdipStackOptions = {},
): Promise<DdipStackResult> {
  const samples = options.samples ?? 1;
  if (!Number.isInteger(samples) || samples < 1) {
    throw new RangeError(`samples must be an integer ≥ 1, got ${samples}`);
  }
  if (samples === 1) return await ddipChain(prior, problem, options);
  const start = options.params?.clone();
  const seed = options.seed ?? ddipConfig(options.config).seed;
  const first = await ddipChain(prior, problem, { ...options, seed });
  const runs = [first];
  for (let k = 1; k < samples; k++) {
    runs.push(
      await ddipChain(prior, problem, {
        ...options,
        init: first.init,
        scale: first.scale,
        seed: subSeed(seed, `sample-${k}`),
        params: start?.clone(),
      }),
    );
  }
  const { mean, std } = meanAndStd(runs.map((r) => r.image));
  const timings = zeroDdipTimings();
  for (const r of runs) addTimings(timings, r.timings);
  const dev = new DeviceStep(problem.likelihood);
  try {
    return {
      ...first,
      image: mean,
      std,
      sampleImages: runs.map((r) => r.image),
      samples,
      logLikelihood: { init: first.logLikelihood.init, final: await dev.logLikelihood(mean) },
      losses: runs.flatMap((r) => r.losses),
      timings,
    };
  } finally {
    dev.destroy();
  }
}

/**
 * Voxel-wise mean and sample standard deviation (N − 1) of N ≥ 2 images (float64 sums).
 *
 * @example
 * ```ts
 * import { meanAndStd } from "@petrel/petrel";
 * // two chains' images of two voxels
 * const { mean, std } = meanAndStd([Float32Array.of(1, 4), Float32Array.of(3, 4)]);
 * mean; // Float32Array [2, 4]
 * std; // Float32Array [1.4142, 0]
 * ```
 */
export function meanAndStd(
  images: readonly Float32Array[],
): { mean: Float32Array; std: Float32Array } {
  const n = images.length;
  if (n < 2) throw new RangeError(`meanAndStd needs at least 2 images, got ${n}`);
  const len = images[0].length;
  const mean = new Float32Array(len);
  const std = new Float32Array(len);
  for (let v = 0; v < len; v++) {
    let m = 0;
    for (const im of images) m += im[v];
    m /= n;
    let q = 0;
    for (const im of images) q += (im[v] - m) ** 2;
    mean[v] = m;
    std[v] = Math.sqrt(q / (n - 1));
  }
  return { mean, std };
}

/**
 * Completes a run's tally: the network fields from the prior's counters since `stats0`, the total
 * since `tStart` (a `performance.now()` reading) and the overhead (what no other field holds).
 *
 * @example
 * ```ts
 * import { finishTimings, zeroDdipTimings } from "@petrel/petrel";
 * const timings = zeroDdipTimings();
 * const tStart = performance.now();
 * const stats0 = { epsCalls: 0, epsMs: 0, vjpCalls: 0, vjpMs: 0 }; // { ...prior.stats } at the start
 * timings.emMs = 1200; // … the chain runs, timing its x-steps …
 * const stats = { epsCalls: 25, epsMs: 2750, vjpCalls: 50, vjpMs: 21000 }; // prior.stats at the end
 * finishTimings(timings, stats, stats0, tStart);
 * [timings.networkCalls, timings.vjpMs]; // [25, 21000]
 * ```
 */
export function finishTimings(
  timings: DdipTimings,
  stats: ScorePrior["stats"],
  stats0: ScorePrior["stats"],
  tStart: number,
): void {
  timings.totalMs = performance.now() - tStart;
  timings.networkMs = stats.epsMs - stats0.epsMs;
  timings.vjpMs = stats.vjpMs - stats0.vjpMs;
  timings.networkCalls = stats.epsCalls - stats0.epsCalls;
  timings.vjpCalls = stats.vjpCalls - stats0.vjpCalls;
  timings.overheadMs = timings.totalMs - timings.initMs - timings.networkMs - timings.vjpMs -
    timings.emMs - timings.adamMs;
}

/**
 * Adds `b`'s fields to `a` (the tally of several chains or stacks).
 *
 * @example
 * ```ts
 * import { addTimings, zeroDdipTimings } from "@petrel/petrel";
 * const a = { ...zeroDdipTimings(), emMs: 100, xSteps: 50 };
 * addTimings(a, { ...zeroDdipTimings(), emMs: 20, xSteps: 50 });
 * [a.emMs, a.xSteps]; // [120, 100]
 * ```
 */
export function addTimings(a: DdipTimings, b: DdipTimings): void {
  for (const k of Object.keys(a) as (keyof DdipTimings)[]) a[k] += b[k];
}

/** One chain from one seed ({@linkcode ddipStack} with `samples` 1). */
async function ddipChain(
  prior: ScorePrior,
  problem: DdipStackProblem,
  options: DdipStackOptions = {},
): Promise<DdipStackResult> {
  const config = ddipConfig(options.config);
  const method = options.method ?? "ddip-hqs";
  const callShape = checkStack(prior, problem, config, method);
  const callOpts = { shape: callShape };
  const { likelihood, grid } = problem;
  const n = callShape[0] * callShape[1] * callShape[2];
  const fineTunes = method !== "dds" && config.fineTuneIterations > 0;
  const useMr = options.useMr ?? true;
  const seed = options.seed ?? config.seed;
  const mr = useMr ? problem.mr : new Float32Array(problem.mr.length);
  const params = options.params ?? prior.createParams();
  const callbacks = options.callbacks ?? [];
  const sched = prior.schedule;
  const steps = sched.reverseSteps(config.startT, config.steps);
  const tStart = performance.now();
  // this chain's own network tally (the prior's counters also count other chains in flight,
  // e.g. the concurrent stacks of ddipVolume)
  const zero = { epsCalls: 0, epsMs: 0, vjpCalls: 0, vjpMs: 0 };
  const own = { ...zero };
  const net = {
    eps: async (xt: Float32Array, t: number): Promise<Float32Array> => {
      const t0 = performance.now();
      try {
        return await prior.eps(xt, t, mr, params, callOpts);
      } finally {
        own.epsCalls++;
        own.epsMs += performance.now() - t0;
      }
    },
    vjp: async (xt: Float32Array, t: number, gradEps: Float32Array) => {
      const t0 = performance.now();
      try {
        return await prior.vjp(xt, t, mr, params, gradEps, callOpts);
      } finally {
        own.vjpCalls++;
        own.vjpMs += performance.now() - t0;
      }
    },
  };
  const timings = zeroDdipTimings();
  const timed = async <T>(key: TimedKey, fn: () => T | Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      timings[key] += performance.now() - t0;
    }
  };
  const dev = new DeviceStep(likelihood, config.xStepOrderedSubsets);
  try {
    // 1. the MLEM initialisation and the intensity scale (activity per prior unit)
    const { init, s } = await timed("initMs", async () => {
      const init = options.init ?? await mlemInit(likelihood, config.initIterations);
      if (init.length !== n) throw new RangeError(`init has ${init.length} voxels, expected ${n}`);
      const s = options.scale ?? await autoScale(likelihood.model.ctx, [{ grid, init }], config);
      if (!(s > 0) || !Number.isFinite(s)) {
        throw new RangeError(`scale must be a finite number > 0, got ${s}`);
      }
      return { init, s };
    });
    // (β/2)‖x/s − z‖² = (β/(2s²))‖x − s z‖²; β goes geometrically to betaEnd along the chain
    const betaAt = (i: number): number => hqsBeta(config, i, steps.length) / (s * s);
    let betaAct = betaAt(0);
    const llInit = await dev.logLikelihood(init);
    const rng = new Rng(seed);
    let x0 = scaled(init, 1 / s);
    let xt = noiseTo(x0, sched.alphaBar(steps[0][0]), rng);
    const losses: number[] = [];

    /** HQS x-step on the prior's scale: penalised EM towards `z`, on the device. */
    const xStep = async (z: Float32Array): Promise<Float32Array> => {
      const out = await timed("emMs", () => dev.xStep(scaled(z, s), betaAct, config.emIterations));
      timings.xSteps++;
      return scaled(out, 1 / s);
    };

    /** `∂ℓ/∂ε` of the fine-tuning loss at the Tweedie estimate `z`, and the loss (NaN for NLL). */
    const lossGrad = async (z: Float32Array, ab: number) => {
      if (method === "ddip-hqs") {
        const g = tweedieLossGrad(z, await xStep(z), ab);
        return { gradEps: g.gradEps, loss: g.loss };
      }
      const { bp, sens } = await timed("emMs", () => dev.emBackprojection(scaled(z, s)));
      const opts = { scale: s, totalCounts: likelihood.totalCounts, alphaBar: ab };
      return { gradEps: nllLossGradEps(bp, sens, opts), loss: NaN };
    };

    /** θ-step: `fineTuneIterations` AdamW steps (a fresh optimiser; the LoRA carries over). */
    const fineTune = async (t: number, ab: number): Promise<number> => {
      const opt = new AdamW({
        lr: config.lr,
        weightDecay: config.weightDecay,
        clipNorm: config.clipNorm,
      });
      let loss = NaN;
      for (let k = 0; k < config.fineTuneIterations; k++) {
        const z = tweedie(xt, await net.eps(xt, t), ab);
        const g = await lossGrad(z, ab);
        const { grads } = await net.vjp(xt, t, g.gradEps);
        await timed("adamMs", () => opt.step(params, grads));
        loss = g.loss;
        if (!Number.isNaN(loss)) losses.push(loss);
      }
      return loss;
    };

    /** Progress callbacks due after reverse step `it` (1-based). */
    const report = async (it: number, t: number, loss: number): Promise<void> => {
      const due = callbacks.filter((cb) => callbackDue(cb, it, steps.length));
      if (!due.length) return;
      const elapsed = performance.now() - tStart;
      const state: DdipIterationState = {
        algorithm: `DDIP(${method}${useMr ? "" : ", no MR"})`,
        iteration: it,
        iterations: steps.length,
        elapsedMs: elapsed,
        t,
        timeLeftMs: (elapsed - timings.initMs) / it * (steps.length - it),
        loss,
      };
      const img = scaled(x0, s, true);
      if (due.some((cb) => cb.needsImage)) state.image = img;
      if (due.some((cb) => cb.needsLogLikelihood)) {
        state.logLikelihood = await dev.logLikelihood(img);
      }
      for (const cb of due) await cb.onIteration(state);
    };

    // 2. the reverse chain (the paper's algorithm box, `docs/ddip.md`)
    for (const [i, [t, tPrev]] of steps.entries()) {
      if (options.signal?.aborted) throw options.signal.reason ?? new Error("DDIP aborted");
      const ab = sched.alphaBar(t);
      betaAct = betaAt(i);
      // a. adapt θ to the data (x-step + AdamW inside, for DDIP-HQS)
      const loss = fineTunes && i % config.fineTuneEvery === 0 ? await fineTune(t, ab) : NaN;
      // b. Tweedie estimate with the adapted network; DDS anchors it by the x-step instead
      const eps = await net.eps(xt, t);
      x0 = tweedie(xt, eps, ab);
      if (method === "dds") x0 = await xStep(x0);
      // c. sample: the DDIM step to t_prev
      xt = ddimStep(x0, eps, { alphaBarPrev: sched.alphaBar(tPrev), eta: config.eta, rng });
      timings.steps++;
      await report(i + 1, t, loss);
    }

    // 3. the output, clip(x̂0, 0, 1) in activity units, optionally pulled back to the data
    let image = scaled(x0, s, true);
    let disagreement: Float32Array | undefined;
    if (config.finalEmIterations > 0) {
      const dc = await timed(
        "emMs",
        () =>
          dev.xStep(
            image,
            config.finalBeta / (s * s),
            config.finalEmIterations,
            config.finalOrderedSubsets,
          ),
      );
      timings.xSteps++;
      if (config.finalEmRegion === "disagreement") {
        // kept only where the data disagree with the output (lesions the prior erased or filled)
        const r = await restrictToDisagreement(
          likelihood.model.ctx,
          grid,
          image,
          dc,
          disagreementOptionsOf(config),
        );
        image = r.image;
        disagreement = r.disagreement;
      } else image = dc;
    }
    const llFinal = await dev.logLikelihood(image);
    finishTimings(timings, own, zero, tStart);
    return {
      image,
      init,
      scale: s,
      scaleSource: options.scale !== undefined ? "given" : "auto",
      logLikelihood: { init: llInit, final: llFinal },
      losses,
      timings,
      method,
      useMr,
      config,
      seed,
      samples: 1,
      ...(disagreement ? { disagreement } : {}),
    };
  } finally {
    dev.destroy();
  }
}
