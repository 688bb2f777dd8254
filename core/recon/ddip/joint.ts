/**
 * DDIP-HQS on a whole volume with one fully 3-D forward model (span-1 multi-ring data with
 * oblique segments, attenuation, normalisation and additive terms), the prior working stack by
 * stack. One reverse step `t → t_prev`:
 *
 * 1. `fineTuneIterations` times: every stack's Tweedie estimate `z_s = x̂0(x_t,s; θ_s)`; the
 *    stacks' estimates combined into one volume `z` (each slice from the stack centred on it,
 *    slices no stack is centred on averaged over the stacks that cover them); ONE 3-D x-step
 *    `x_hqs = argmin −L(y|x) + (β/2s²)‖x − s z‖²` with the full model; then every stack's AdamW
 *    step on `mean‖x̂0(θ_s) − x_hqs[slab]/s‖²` through the VJP graph.
 * 2. Every stack's DDIM step with its adapted network (`dds`: x̂0 replaced by the slabs of one
 *    3-D x-step towards the combined x̂0, as PET-DDS does per stack).
 *
 * So the data term couples the stacks through the oblique lines of response, and the cost of
 * the x-step is paid once per iteration for the whole volume rather than once per stack. Each
 * stack keeps its own LoRA state (fresh from the base model), noise stream
 * (`subSeed(seed, "ddip-stack-<centre>")`) and `x_t`. Seeded: bit-identical reruns on one
 * adapter.
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
import type { ReconCallback } from "../callbacks.ts";
import { callbackDue } from "../callbacks.ts";
import { PenalisedEmStep } from "../xstep.ts";
import { disagreementOptionsOf, restrictToDisagreement } from "./residual.ts";
import { type DdipConfig, ddipConfig, type DdipConfigInput, hqsBeta } from "./config.ts";
import { autoScale } from "./scale.ts";
import {
  type DdipIterationState,
  type DdipTimings,
  finishTimings,
  mlemInit,
  zeroDdipTimings,
} from "./stack.ts";
import { volumeStackCentres } from "./volume.ts";

/** A whole volume and its full (3-D) data model. */
export interface DdipJointProblem {
  /** Data and forward model on the volume `[nx, ny, nz]` (activity units). */
  likelihood: PoissonLikelihood;
  /** The volume's grid. */
  grid: ImageGrid;
  /** MR on the grid, on the prior's scale (divided by its volume max). */
  mr: Float32Array;
}

/** Phases a run goes through (for progress from the first second). */
export type DdipPhase = "mlem" | "scale" | "steps" | "done";

/** Options of {@linkcode ddipJoint}. */
export interface DdipJointOptions {
  /** The constants (defaults: {@linkcode DDIP_DEFAULTS}). */
  config?: DdipConfigInput;
  /** "ddip-hqs" (default) or "dds". */
  method?: "ddip-hqs" | "dds";
  /** Feed the MR channels (default true). */
  useMr?: boolean;
  /** Distance between stack centres (1, 2 or 3; default 1). */
  stackStride?: number;
  /** Activity per prior unit; chosen from the MLEM volume when omitted. */
  scale?: number;
  /** The MLEM initialisation (computed when omitted). */
  init?: Float32Array;
  /** Seed override (default `config.seed`). */
  seed?: number;
  /** Called when a phase starts (with a short description). */
  onPhase?: (phase: DdipPhase, detail: string) => void | Promise<void>;
  /**
   * Progress observers, one call per reverse step; `timeLeftMs` is the median step time so far
   * times the steps left (the first step's warm-up does not skew it after 3 steps).
   */
  callbacks?: readonly ReconCallback[];
  /** Stops between steps when aborted. */
  signal?: AbortSignal;
}

/** Result of {@linkcode ddipJoint}. */
export interface DdipJointResult {
  /** `s · clip(x̂0, 0, 1)` of the last step, combined over the stacks, `[nx, ny, nz]`. */
  image: Float32Array;
  /** The MLEM initialisation. */
  init: Float32Array;
  scale: number;
  scaleSource: "auto" | "given";
  /** Stack centres (slice indices). */
  centres: number[];
  logLikelihood: { init: number; final: number };
  /** Mean fine-tuning loss over the stacks, per AdamW iteration. */
  losses: number[];
  /** Wall-clock split (not deterministic; keep out of outputs compared for bit identity). */
  timings: DdipTimings;
  /** Milliseconds per reverse step. */
  stepMs: number[];
  method: "ddip-hqs" | "dds";
  useMr: boolean;
  config: DdipConfig;
  seed: number;
  /**
   * The disagreement image (the final iterations' in-plane smoothed change in robust standard
   * deviations, `residual.ts`) when they ran with `finalEmRegion: "disagreement"`.
   */
  disagreement?: Float32Array;
}

/**
 * Per slice, which stacks supply it and with what weight: the stack centred on the slice if
 * there is one (the first/last stack for the end slices), otherwise an equal average of the
 * stacks that cover it.
 *
 * @example
 * ```ts
 * import { sliceSources, volumeStackCentres } from "@petrel/petrel";
 * const sources = sliceSources(8, volumeStackCentres(8, 3)); // centres [1, 4, 6]
 * sources[0]; // [{ stack: 0, offset: 0, weight: 1 }]: the end slice from the first stack
 * sources[4]; // [{ stack: 1, offset: 1, weight: 1 }]: the centre of the stack on slice 4
 * sources[5]; // ½ from stack 1 (offset 2) and ½ from stack 2 (offset 0): no stack is centred on it
 * ```
 */
export function sliceSources(
  nz: number,
  centres: readonly number[],
): { stack: number; offset: number; weight: number }[][] {
  const out: { stack: number; offset: number; weight: number }[][] = [];
  for (let z = 0; z < nz; z++) {
    const owner = z === 0 ? 0 : z === nz - 1 ? centres.length - 1 : centres.indexOf(z);
    if (owner >= 0 && Math.abs(centres[owner] - z) <= 1) {
      out.push([{ stack: owner, offset: z - centres[owner] + 1, weight: 1 }]);
      continue;
    }
    const cover = centres.flatMap((c, s) => Math.abs(c - z) <= 1 ? [s] : []);
    if (!cover.length) throw new RangeError(`slice ${z} is covered by no stack`);
    out.push(
      cover.map((s) => ({ stack: s, offset: z - centres[s] + 1, weight: 1 / cover.length })),
    );
  }
  return out;
}

function median(v: readonly number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * DDIP-HQS (or DDS) on a whole volume with a fully 3-D forward model; see the module notes.
 *
 * @example
 * ```ts
 * import { DDIP_CPU_PRESET, ddipJoint, defaultContext, loadPrior, PoissonLikelihood, readImage, readSinogram, ringForwardModel } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * // span-1 multi-ring data with oblique segments, and the reconstruction grid of the μ-map
 * const { data: prompts, scanner } = await readSinogram("in/prompts.npy");
 * const { data: additive } = await readSinogram("in/randoms_scatter.npy");
 * const { data: muMap, grid } = await readImage("in/mu.nii"); // 1/mm
 * const { data: t1 } = await readImage("in/mr.nii"); // on the same grid
 * const t1Max = t1.reduce((a, b) => Math.max(a, b), 0);
 * const model = ringForwardModel(ctx, scanner, { grid, muMap, additive });
 * const prior = await loadPrior("models/fdg_prior", { adapter: ctx.adapter });
 * const r = await ddipJoint(prior, {
 *   likelihood: new PoissonLikelihood(model, prompts),
 *   grid,
 *   mr: t1.map((v) => v / t1Max), // on the prior's scale
 * }, { config: DDIP_CPU_PRESET });
 * ```
 */
export async function ddipJoint(
  prior: ScorePrior,
  problem: DdipJointProblem,
  options: DdipJointOptions = {},
): Promise<DdipJointResult> {
  const config = ddipConfig(options.config);
  const method = options.method ?? "ddip-hqs";
  if (method !== "ddip-hqs" && method !== "dds") {
    throw new RangeError(`ddipJoint runs "ddip-hqs" or "dds", got "${method}"`);
  }
  const useMr = options.useMr ?? true;
  const { likelihood, grid } = problem;
  const ctx = likelihood.model.ctx;
  const shape = likelihood.model.imageShape;
  const [nx, ny, nz] = grid.shape;
  if (shape.length !== 3 || shape.some((n, a) => n !== grid.shape[a])) {
    throw new RangeError(
      `the forward model's image ${JSON.stringify(shape)} is not the grid's ${
        JSON.stringify(grid.shape)
      }`,
    );
  }
  const c = prior.channels;
  if (c !== 3 || prior.meta.channels.mr !== 3) {
    throw new RangeError(`ddipJoint needs a 2.5D prior with 3 PET and 3 MR channels`);
  }
  const plane = nx * ny;
  const n = plane * nz;
  if (problem.mr.length !== n) {
    throw new RangeError(`mr has ${problem.mr.length} voxels, expected ${n} (the grid's)`);
  }
  if (config.startT > prior.schedule.T) {
    throw new RangeError(`startT ${config.startT} exceeds the prior's T = ${prior.schedule.T}`);
  }
  const fineTune = method === "ddip-hqs" && config.fineTuneIterations > 0;
  if (fineTune && !prior.canFineTune) {
    throw new Error(`method "${method}" fine-tunes the prior, but ${prior.fineTuneNote}`);
  }
  const centres = volumeStackCentres(nz, options.stackStride ?? 1);
  const sources = sliceSources(nz, centres);
  const seed = options.seed ?? config.seed;
  const callOpts = { shape: [nx, ny, 3] as [number, number, number] };
  const stackSlab = (v: Float32Array, s: number) =>
    v.slice((centres[s] - 1) * plane, (centres[s] + 2) * plane);
  const mrStacks = centres.map((_, s) =>
    useMr ? stackSlab(problem.mr, s) : new Float32Array(3 * plane)
  );
  const combine = (stacks: readonly Float32Array[]): Float32Array => {
    const out = new Float32Array(n);
    for (let z = 0; z < nz; z++) {
      const dst = z * plane;
      for (const { stack, offset, weight } of sources[z]) {
        const src = stacks[stack];
        const o = offset * plane;
        for (let t = 0; t < plane; t++) out[dst + t] += weight * src[o + t];
      }
    }
    return out;
  };
  const callbacks = options.callbacks ?? [];
  const tStart = performance.now();
  const stats0 = { ...prior.stats };
  const timings = zeroDdipTimings();
  const x = ctx.array(shape);
  const zDev = ctx.array(shape);
  const ll = ctx.array([1]);
  const step = new PenalisedEmStep(likelihood);
  const logLikelihood = async (img: Float32Array): Promise<number> => {
    x.write(img);
    ctx.run((rec) => likelihood.recordLogLikelihood(rec, x, ll));
    return (await ll.read())[0] + likelihood.constant;
  };
  try {
    await options.onPhase?.("mlem", `${config.initIterations} MLEM iterations (3-D model)`);
    const t0 = performance.now();
    const init = options.init ?? await mlemInit(likelihood, config.initIterations);
    if (init.length !== n) throw new RangeError(`init has ${init.length} voxels, expected ${n}`);
    await options.onPhase?.("scale", "intensity scale");
    const scaleSource = options.scale !== undefined ? "given" : "auto";
    const s = options.scale ?? await autoScale(ctx, [{
      grid,
      init,
      planes: [centres[0], centres[centres.length - 1] - centres[0] + 1],
    }], config);
    if (!(s > 0) || !Number.isFinite(s)) {
      throw new RangeError(`scale must be a finite number > 0, got ${s}`);
    }
    timings.initMs = performance.now() - t0;
    const llInit = await logLikelihood(init);
    const sched = prior.schedule;
    const steps = sched.reverseSteps(config.startT, config.steps);
    // (β/2)‖x/s − z‖² = (β/(2s²))‖x − s z‖²; β goes geometrically to betaEnd along the chain
    const betaAt = (i: number): number => hqsBeta(config, i, steps.length) / (s * s);
    const rngs = centres.map((cz) => new Rng(subSeed(seed, `ddip-stack-${cz}`)));
    const params: LoraState[] = centres.map(() => prior.createParams());
    const initPrior = Float32Array.from(init, (v) => v / s);
    let xt = centres.map((_, k) =>
      noiseTo(stackSlab(initPrior, k), sched.alphaBar(steps[0][0]), rngs[k])
    );
    let x0: Float32Array[] = centres.map((_, k) => stackSlab(initPrior, k));
    const losses: number[] = [];
    const stepMs: number[] = [];

    // one 3-D x-step towards `zAct` (activity units), started from max(zAct, 0)
    const xStepAct = async (
      zAct: Float32Array,
      betaAct: number,
      iterations: number,
      orderedSubsets = config.xStepOrderedSubsets,
    ): Promise<Float32Array> => {
      const te = performance.now();
      zDev.write(zAct);
      ctx.run((rec) => {
        step.record(rec, x, zDev, {
          beta: betaAct,
          iterations,
          initFromTarget: true,
          orderedSubsets,
        });
      });
      const out = await x.read();
      timings.emMs += performance.now() - te;
      timings.xSteps++;
      return out;
    };
    // the same towards a combined estimate in prior units, result in prior units
    const xStep = async (zPrior: Float32Array, i: number): Promise<Float32Array> => {
      const out = await xStepAct(
        Float32Array.from(zPrior, (v) => v * s),
        betaAt(i),
        config.emIterations,
      );
      for (let k = 0; k < out.length; k++) out[k] /= s;
      return out;
    };

    await options.onPhase?.(
      "steps",
      `${steps.length} reverse steps × ${centres.length} stacks (t = ${steps[0][0]} … 0)`,
    );
    for (let i = 0; i < steps.length; i++) {
      if (options.signal?.aborted) throw options.signal.reason ?? new Error("DDIP aborted");
      const tStep = performance.now();
      const [t, tPrev] = steps[i];
      const ab = sched.alphaBar(t);
      let lastLoss = NaN;
      if (fineTune && i % config.fineTuneEvery === 0) {
        // a fresh optimiser per stack and step; the LoRA weights carry over
        const opts = centres.map(() =>
          new AdamW({ lr: config.lr, weightDecay: config.weightDecay, clipNorm: config.clipNorm })
        );
        for (let k = 0; k < config.fineTuneIterations; k++) {
          const zs: Float32Array[] = [];
          for (let sk = 0; sk < centres.length; sk++) {
            const eps = await prior.eps(xt[sk], t, mrStacks[sk], params[sk], callOpts);
            zs.push(tweedie(xt[sk], eps, ab));
          }
          const target = await xStep(combine(zs), i);
          let lossSum = 0;
          for (let sk = 0; sk < centres.length; sk++) {
            const g = tweedieLossGrad(zs[sk], stackSlab(target, sk), ab);
            lossSum += g.loss;
            const { grads } = await prior.vjp(
              xt[sk],
              t,
              mrStacks[sk],
              params[sk],
              g.gradEps,
              callOpts,
            );
            const ta = performance.now();
            opts[sk].step(params[sk], grads);
            timings.adamMs += performance.now() - ta;
          }
          lastLoss = lossSum / centres.length;
          losses.push(lastLoss);
        }
      }
      const eps: Float32Array[] = [];
      for (let sk = 0; sk < centres.length; sk++) {
        eps.push(await prior.eps(xt[sk], t, mrStacks[sk], params[sk], callOpts));
        x0[sk] = tweedie(xt[sk], eps[sk], ab);
      }
      if (method === "dds") {
        const anchored = await xStep(combine(x0), i);
        x0 = centres.map((_, sk) => stackSlab(anchored, sk));
      }
      xt = centres.map((_, sk) =>
        ddimStep(x0[sk], eps[sk], {
          alphaBarPrev: sched.alphaBar(tPrev),
          eta: config.eta,
          rng: rngs[sk],
        })
      );
      timings.steps++;
      stepMs.push(performance.now() - tStep);

      const it = i + 1;
      const due = callbacks.filter((cb) => callbackDue(cb, it, steps.length));
      if (due.length) {
        const state: DdipIterationState = {
          algorithm: `DDIP-3D(${method}${useMr ? "" : ", no MR"})`,
          iteration: it,
          iterations: steps.length,
          elapsedMs: performance.now() - tStart,
          t,
          timeLeftMs: median(stepMs) * (steps.length - it),
          loss: lastLoss,
        };
        if (due.some((cb) => cb.needsImage || cb.needsLogLikelihood)) {
          const img = clipScaled(combine(x0), s);
          if (due.some((cb) => cb.needsImage)) state.image = img;
          if (due.some((cb) => cb.needsLogLikelihood)) {
            state.logLikelihood = await logLikelihood(img);
          }
        }
        for (const cb of due) await cb.onIteration(state);
      }
    }
    let image = clipScaled(combine(x0), s);
    let disagreement: Float32Array | undefined;
    if (config.finalEmIterations > 0) {
      // optionally pulled back to the data: finalEmIterations x-step iterations towards it
      const dc = await xStepAct(
        image,
        config.finalBeta / (s * s),
        config.finalEmIterations,
        config.finalOrderedSubsets,
      );
      if (config.finalEmRegion === "disagreement") {
        // kept only where the data disagree with the output (lesions the prior erased or filled)
        const r = await restrictToDisagreement(
          ctx,
          grid,
          image,
          dc,
          disagreementOptionsOf(config),
        );
        image = r.image;
        disagreement = r.disagreement;
      } else image = dc;
    }
    const llFinal = await logLikelihood(image);
    await options.onPhase?.("done", "");
    finishTimings(timings, prior.stats, stats0, tStart);
    return {
      image,
      init,
      scale: s,
      scaleSource,
      centres,
      logLikelihood: { init: llInit, final: llFinal },
      losses,
      timings,
      stepMs,
      method,
      useMr,
      config,
      seed,
      ...(disagreement ? { disagreement } : {}),
    };
  } finally {
    for (const a of [x, zDev, ll] as GpuArray[]) a.destroy();
    step.destroy();
  }
}

function clipScaled(v: Float32Array, s: number): Float32Array {
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = Math.min(1, Math.max(0, v[i])) * s;
  return out;
}
