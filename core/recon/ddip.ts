/**
 * DDIP-HQS: PET reconstruction with a deep diffusion image prior adapted to the data by LoRA
 * fine-tuning, with half-quadratic splitting between the data term and the network
 * (Hashimoto & Gong, arXiv 2507.15078; `../shared/docs/method.md`), plus the diffusion
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
 * a whole volume with overlapping stacks (`core/recon/ddip_volume.ts`).
 *
 * Images travel between the prior (onnxruntime-web, host arrays) and the EM step (WebGPU) once per
 * x-step; each x-step (all its EM iterations) is one submit.
 *
 * @module
 */

import { z } from "zod";
import type { GpuArray } from "../gpu/context.ts";
import type { ImageGrid } from "../geometry/grid.ts";
import type { PoissonLikelihood } from "../model/likelihood.ts";
import { AdamW } from "../diffusion/adamw.ts";
import type { LoraState } from "../diffusion/lora.ts";
import type { ScorePrior } from "../diffusion/prior.ts";
import { ddimStep, noiseTo, tweedie, tweedieLossGrad } from "../diffusion/sampler.ts";
import { Rng } from "../sim/rng.ts";
import { mlem } from "./algorithms.ts";
import type { IterationState, ReconCallback } from "./callbacks.ts";
import { callbackDue } from "./callbacks.ts";
import { gaussianPostFilter } from "./filter.ts";
import { PenalisedEmStep } from "./xstep.ts";

/** zod schema of the DDIP-HQS constants; every default is the reference value of method.md. */
export const DdipConfigSchema = z.object({
  /** Start time of the reverse chain (exclusive upper bound; reference 200 of T = 1000). */
  startT: z.number().int().positive().default(200),
  /** Reverse steps, evenly strided from startT − 1 down to 0 (reference 200 = every t). */
  steps: z.number().int().positive().default(200),
  /** Fine-tuning iterations per reverse step (reference 2). */
  fineTuneIterations: z.number().int().min(0).default(2),
  /**
   * Fine-tune on every `fineTuneEvery`-th reverse step only (reference 1 = every step); a CPU
   * economy when the VJP graph is expensive. The LoRA weights carry over in between.
   */
  fineTuneEvery: z.number().int().positive().default(1),
  /** Penalised-EM iterations per x-step (reference 5). */
  emIterations: z.number().int().min(0).default(5),
  /** HQS coupling β on the prior's [0, 1] scale (reference 0.01). */
  beta: z.number().positive().finite().default(0.01),
  /** AdamW learning rate (reference 5e-4). */
  lr: z.number().positive().finite().default(5e-4),
  /** AdamW decoupled weight decay (PyTorch's AdamW default, 0.01). */
  weightDecay: z.number().min(0).finite().default(0.01),
  /** Global gradient-norm clip (reference 1.0). */
  clipNorm: z.number().positive().default(1.0),
  /** DDIM stochasticity η (reference 0.85). */
  eta: z.number().min(0).max(1).default(0.85),
  /** MLEM iterations of the initialisation (reference 20, from a uniform image). */
  initIterations: z.number().int().min(0).default(20),
  /**
   * Automatic intensity scale: the `scalePercentile`-th percentile of the MLEM initialisation
   * after a Gaussian filter of `scaleFilterFwhmMm` (in-plane), times `scaleHeadroom`, is mapped to
   * 1 on the prior's scale (the prior was trained on PET divided by its volume max). In the FDG
   * training stacks (241 stacks, BrainWeb 05–50) the filtered 99.5th percentile of a stack is 0.74
   * of the volume max (median; 10–90 %: 0.66–0.81), so 1/0.74 = 1.35 would put the data's
   * statistic where the training data's was; but the sampler's final `clip(x̂0, 0, 1)` then cuts
   * focal uptake above the normal brain (a ×2.3 lesion). Default 1.8, chosen on a validation
   * condition (BrainWeb 50, amyloid-negative, not a test subject): PSNR 32.82 / 33.00 / 31.65 dB
   * and lesion CRC 0.53 / 0.74 / 0.82 at 1.35 / 1.8 / 2.5.
   */
  scalePercentile: z.number().gt(0).max(100).default(99.5),
  scaleFilterFwhmMm: z.number().min(0).finite().default(4),
  scaleHeadroom: z.number().positive().finite().default(1.8),
  /** Seed of the start noise and the DDIM noise. */
  seed: z.number().int().default(0),
}).strict().refine((c) => c.steps <= c.startT, {
  message: "steps must be ≤ startT (one network evaluation per integer timestep at most)",
  path: ["steps"],
});

/** The constants as given (all optional). */
export type DdipConfigInput = z.input<typeof DdipConfigSchema>;
/** The resolved constants. */
export type DdipConfig = z.output<typeof DdipConfigSchema>;

/** The reference constants (method.md): 200 steps from t = 200, 2 × (5 EM + 1 AdamW) per step. */
export const DDIP_REFERENCE: DdipConfigInput = {};

/**
 * The faster CPU preset: the same start time and per-step work, but 25 strided reverse steps
 * (t = 199, 191, …, 0; 50 AdamW steps and 125 EM x-step iterations in all instead of 400 and
 * 2000), about 8× cheaper than the reference chain, with the learning rate raised to 2e-3 to
 * make up for 8× fewer AdamW steps. 2e-3 was chosen on a validation condition (BrainWeb 50,
 * amyloid-negative, 1·10⁵ counts/slice; not one of the test subjects 51–53): PSNR 31.33 / 32.82 /
 * 32.67 dB at lr 5e-4 / 2e-3 / 5e-3 (`docs/results.md`, "Tuning").
 */
export const DDIP_CPU_PRESET: DdipConfigInput = { steps: 25, lr: 2e-3 };

/** Validates DDIP constants; throws one readable error listing every problem. */
export function ddipConfig(input: DdipConfigInput = {}): DdipConfig {
  const r = DdipConfigSchema.safeParse(input);
  if (!r.success) {
    throw new RangeError(
      `invalid DDIP configuration: ${
        r.error.issues.map((i) => `${i.path.join(".") || "config"}: ${i.message}`).join("; ")
      } (see DdipConfigSchema for the expected fields)`,
    );
  }
  return r.data;
}

/** The diffusion-based methods this module runs. */
export type DdipMethod = "ddip-hqs" | "dds" | "ddip-nll";

/** The methods, for validation and listings. */
export const DDIP_METHODS: readonly DdipMethod[] = ["ddip-hqs", "dds", "ddip-nll"];

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

/** Options of {@linkcode ddipStack}. */
export interface DdipStackOptions {
  /** The constants (defaults: the reference). */
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
}

/** `q`-th percentile (0–100, linear interpolation between order statistics) of `v`. */
export function percentile(v: ArrayLike<number>, q: number): number {
  if (v.length === 0) throw new RangeError("percentile of an empty array");
  const s = Float64Array.from(v as ArrayLike<number>).sort();
  const pos = (q / 100) * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (pos - lo) * (s[hi] - s[lo]);
}

function scaleFrom(img: Float32Array, config: DdipConfig): number {
  const p = percentile(img, config.scalePercentile) * config.scaleHeadroom;
  if (!(p > 0) || !Number.isFinite(p)) {
    throw new RangeError(
      `automatic intensity scale is ${p}: the MLEM initialisation has no positive activity at the ${config.scalePercentile}th percentile; pass options.scale`,
    );
  }
  return p;
}

/**
 * The automatic intensity scale (activity per prior unit) of an MLEM image: the configured
 * percentile of the in-plane Gaussian-filtered image (filtered on the device) times the headroom.
 */
export async function autoScale(
  likelihood: PoissonLikelihood,
  grid: ImageGrid,
  init: Float32Array,
  config: DdipConfig,
): Promise<number> {
  if (config.scaleFilterFwhmMm <= 0) return scaleFrom(init, config);
  const ctx = likelihood.model.ctx;
  const x = ctx.array(likelihood.model.imageShape, init);
  const f = gaussianPostFilter(ctx, grid, x, config.scaleFilterFwhmMm);
  x.destroy();
  const v = await f.read();
  f.destroy();
  return scaleFrom(v, config);
}

/** The MLEM initialisation (activity units) of a stack: `iterations` EM iterations from 1. */
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

  constructor(readonly likelihood: PoissonLikelihood) {
    const ctx = likelihood.model.ctx;
    const shape = likelihood.model.imageShape;
    this.x = ctx.array(shape);
    this.z = ctx.array(shape);
    this.bp = ctx.array(shape);
    this.ll = ctx.array([1]);
    this.step = new PenalisedEmStep(likelihood);
  }

  /** x_hqs (activity units) from target `zAct`: `iterations` penalised-EM iterations. */
  async xStep(zAct: Float32Array, beta: number, iterations: number): Promise<Float32Array> {
    this.z.write(zAct);
    this.likelihood.model.ctx.run((rec) => {
      this.step.record(rec, this.x, this.z, { beta, iterations, initFromTarget: true });
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

/**
 * Reconstructs one 3-slice stack with DDIP-HQS (or the `dds` / `ddip-nll` variants, see the
 * module notes). Seeded: the same inputs, seed and adapter give bit-identical output.
 */
export async function ddipStack(
  prior: ScorePrior,
  problem: DdipStackProblem,
  options: DdipStackOptions = {},
): Promise<DdipStackResult> {
  const config = ddipConfig(options.config);
  const method = options.method ?? "ddip-hqs";
  if (!DDIP_METHODS.includes(method)) {
    throw new RangeError(
      `unknown DDIP method "${method}"; expected one of ${DDIP_METHODS.join(", ")}`,
    );
  }
  const useMr = options.useMr ?? true;
  const { likelihood, grid } = problem;
  const shape = likelihood.model.imageShape;
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
  const fineTune = method !== "dds" && config.fineTuneIterations > 0;
  if (fineTune && !prior.canFineTune) {
    throw new Error(`method "${method}" fine-tunes the prior, but ${prior.fineTuneNote}`);
  }
  const seed = options.seed ?? config.seed;
  const callOpts = { shape: [shape[0], shape[1], shape[2]] as [number, number, number] };
  const mr = useMr ? problem.mr : new Float32Array(problem.mr.length);
  const params = options.params ?? prior.createParams();
  const callbacks = options.callbacks ?? [];
  const tStart = performance.now();
  const stats0 = { ...prior.stats };
  const dev = new DeviceStep(likelihood);
  const timings = zeroDdipTimings();
  try {
    // 1. initialisation and scale
    const t0 = performance.now();
    const init = options.init ?? await mlemInit(likelihood, config.initIterations);
    if (init.length !== n) {
      throw new RangeError(`init has ${init.length} voxels, expected ${n}`);
    }
    const scaleSource = options.scale !== undefined ? "given" : "auto";
    const s = options.scale ?? await autoScale(likelihood, grid, init, config);
    if (!(s > 0) || !Number.isFinite(s)) {
      throw new RangeError(`scale must be a finite number > 0, got ${s}`);
    }
    timings.initMs = performance.now() - t0;
    const betaAct = config.beta / (s * s); // (β/2)‖x/s − z‖² = (β/(2s²))‖x − s z‖²
    const llInit = await dev.logLikelihood(init);
    const x0init = scaled(init, 1 / s);
    const rng = new Rng(seed);
    const sched = prior.schedule;
    const steps = sched.reverseSteps(config.startT, config.steps);
    let xt = noiseTo(x0init, sched.alphaBar(steps[0][0]), rng);
    const losses: number[] = [];
    let x0 = x0init;
    const totalCounts = likelihood.totalCounts;

    const xStep = async (zPrior: Float32Array): Promise<Float32Array> => {
      const t = performance.now();
      const out = await dev.xStep(scaled(zPrior, s), betaAct, config.emIterations);
      timings.emMs += performance.now() - t;
      timings.xSteps++;
      return scaled(out, 1 / s);
    };

    for (let i = 0; i < steps.length; i++) {
      if (options.signal?.aborted) throw options.signal.reason ?? new Error("DDIP aborted");
      const [t, tPrev] = steps[i];
      const ab = sched.alphaBar(t);
      let lastLoss = NaN;
      if (fineTune && i % config.fineTuneEvery === 0) {
        // the optimiser is re-created every step; the LoRA weights carry over
        const opt = new AdamW({
          lr: config.lr,
          weightDecay: config.weightDecay,
          clipNorm: config.clipNorm,
        });
        for (let k = 0; k < config.fineTuneIterations; k++) {
          const eps = await prior.eps(xt, t, mr, params, callOpts);
          const zc = tweedie(xt, eps, ab);
          let gradEps: Float32Array;
          if (method === "ddip-hqs") {
            const target = await xStep(zc);
            const g = tweedieLossGrad(zc, target, ab);
            gradEps = g.gradEps;
            lastLoss = g.loss;
          } else {
            const te = performance.now();
            const xa = scaled(zc, s);
            const { bp, sens } = await dev.emBackprojection(xa);
            timings.emMs += performance.now() - te;
            gradEps = nllLossGradEps(bp, sens, { scale: s, totalCounts, alphaBar: ab });
            lastLoss = NaN;
          }
          const { grads } = await prior.vjp(xt, t, mr, params, gradEps, callOpts);
          const ta = performance.now();
          opt.step(params, grads);
          timings.adamMs += performance.now() - ta;
          if (!Number.isNaN(lastLoss)) losses.push(lastLoss);
        }
      }
      const eps = await prior.eps(xt, t, mr, params, callOpts);
      x0 = tweedie(xt, eps, ab);
      if (method === "dds") x0 = await xStep(x0);
      xt = ddimStep(x0, eps, { alphaBarPrev: sched.alphaBar(tPrev), eta: config.eta, rng });
      timings.steps++;

      const it = i + 1;
      const due = callbacks.filter((cb) => callbackDue(cb, it, steps.length));
      if (due.length) {
        const elapsed = performance.now() - tStart;
        const state: DdipIterationState = {
          algorithm: `DDIP(${method}${useMr ? "" : ", no MR"})`,
          iteration: it,
          iterations: steps.length,
          elapsedMs: elapsed,
          t,
          timeLeftMs: (elapsed - timings.initMs) / it * (steps.length - it),
          loss: lastLoss,
        };
        const img = scaled(x0, s, true);
        if (due.some((cb) => cb.needsImage)) state.image = img;
        if (due.some((cb) => cb.needsLogLikelihood)) {
          state.logLikelihood = await dev.logLikelihood(img);
        }
        for (const cb of due) await cb.onIteration(state);
      }
    }
    const image = scaled(x0, s, true);
    const llFinal = await dev.logLikelihood(image);
    timings.totalMs = performance.now() - tStart;
    timings.networkMs = prior.stats.epsMs - stats0.epsMs;
    timings.vjpMs = prior.stats.vjpMs - stats0.vjpMs;
    timings.networkCalls = prior.stats.epsCalls - stats0.epsCalls;
    timings.vjpCalls = prior.stats.vjpCalls - stats0.vjpCalls;
    timings.overheadMs = timings.totalMs - timings.initMs - timings.networkMs - timings.vjpMs -
      timings.emMs - timings.adamMs;
    return {
      image,
      init,
      scale: s,
      scaleSource,
      logLikelihood: { init: llInit, final: llFinal },
      losses,
      timings,
      method,
      useMr,
      config,
      seed,
    };
  } finally {
    dev.destroy();
  }
}
