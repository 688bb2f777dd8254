/**
 * Element-wise pieces of the reverse diffusion chain on host arrays: the Tweedie estimate, the
 * DDS-style DDIM step with η used by DDIP-HQS, forward noising `q(x_t | x_0)` and seeded
 * Gaussian noise. The arrays are small (one 3-slice 128² stack = 49 152 floats), so these run in
 * TypeScript beside the network, in float64 arithmetic rounded to float32 on store.
 *
 * @module
 */

import type { Rng } from "../random.ts";

function sameLength(what: string, a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) {
    throw new RangeError(
      `${what}: arrays have ${a.length} and ${b.length} elements, expected equal`,
    );
  }
}

function checkAlphaBar(what: string, ab: number): void {
  if (!(ab > 0 && ab <= 1)) throw new RangeError(`${what} must be in (0, 1], got ${ab}`);
}

/**
 * Tweedie estimate of the clean image, `x̂0 = (x_t − √(1−ᾱ_t) ε) / √ᾱ_t`, written to `out`
 * (a new array by default).
 *
 * @example
 * ```ts
 * import { DdpmSchedule, noiseTo, tweedie } from "@petrel/petrel";
 * const ab = new DdpmSchedule().alphaBar(199);
 * const clean = new Float32Array(128 * 128 * 3).fill(0.5); // one stack on the prior's scale
 * const eps = new Float32Array(clean.length).fill(1); // the true noise, or prior.eps(xt, 199, mr, params)
 * const xt = noiseTo(clean, ab, eps); // √ᾱ x0 + √(1−ᾱ) ε
 * const x0 = tweedie(xt, eps, ab); // (x_t − √(1−ᾱ) ε)/√ᾱ ≈ 0.5 everywhere
 * ```
 */
export function tweedie(
  xt: Float32Array,
  eps: Float32Array,
  alphaBar: number,
  out: Float32Array = new Float32Array(xt.length),
): Float32Array {
  sameLength("tweedie", xt, eps);
  sameLength("tweedie (out)", xt, out);
  checkAlphaBar("tweedie: ᾱ_t", alphaBar);
  const a = Math.sqrt(alphaBar);
  const s = Math.sqrt(1 - alphaBar);
  for (let i = 0; i < xt.length; i++) out[i] = (xt[i] - s * eps[i]) / a;
  return out;
}

/**
 * The gradient of `mean‖x̂0 − target‖²` with respect to ε, given x̂0 (from {@linkcode tweedie}):
 * `∂/∂ε = −(2/N) √(1−ᾱ_t)/√ᾱ_t · (x̂0 − target)`. Returns `{loss, gradEps}`.
 *
 * @example
 * ```ts
 * import { DdpmSchedule, tweedieLossGrad } from "@petrel/petrel";
 * const ab = new DdpmSchedule().alphaBar(199);
 * const x0 = Float32Array.of(0.4, 0.6); // Tweedie estimate x̂0
 * const xHqs = Float32Array.of(0.5, 0.5); // the x-step result on the prior's scale
 * const { loss, gradEps } = tweedieLossGrad(x0, xHqs, ab);
 * loss; // ≈ 0.01 = mean‖x̂0 − x_hqs‖²
 * // feed gradEps to prior.vjp(xt, t, mr, params, gradEps) for the LoRA gradients
 * ```
 */
export function tweedieLossGrad(
  x0: Float32Array,
  target: Float32Array,
  alphaBar: number,
): { loss: number; gradEps: Float32Array } {
  sameLength("tweedieLossGrad", x0, target);
  checkAlphaBar("tweedieLossGrad: ᾱ_t", alphaBar);
  const n = x0.length;
  const c = (-2 / n) * Math.sqrt(1 - alphaBar) / Math.sqrt(alphaBar);
  const gradEps = new Float32Array(n);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const d = x0[i] - target[i];
    loss += d * d;
    gradEps[i] = c * d;
  }
  return { loss: loss / n, gradEps };
}

/** Options of {@linkcode ddimStep}. */
export interface DdimStepOptions {
  /** ᾱ of the previous (less noisy) timestep; 1 after the last step. */
  alphaBarPrev: number;
  /** Stochasticity η in [0, 1] (reference 0.85). */
  eta: number;
  /** Source of the fresh noise u (needed when η > 0 unless `noise` is given). */
  rng?: Rng;
  /** The fresh noise u itself (overrides `rng`). */
  noise?: Float32Array;
  /** Clip x̂0 to [lo, hi] first (default [0, 1], as in DDS); `null` disables it. */
  clip?: readonly [number, number] | null;
  /** Output array (a new one by default). */
  out?: Float32Array;
}

/**
 * One DDS-style DDIM step:
 * `x_{t_prev} = √ᾱ_prev·clip(x̂0, 0, 1) + η√(1−ᾱ_prev)·u + √(1−η²)√(1−ᾱ_prev)·ε`, `u ~ N(0, I)`.
 * Draws u from `rng` in index order, rounded to float32 (so `rng` and `noise: rng.normals(n)`
 * give the same result and the same seed gives the same chain).
 *
 * @example
 * ```ts
 * import { DdpmSchedule, ddimStep, Rng } from "@petrel/petrel";
 * const schedule = new DdpmSchedule();
 * const n = 128 * 128 * 3;
 * const x0 = new Float32Array(n).fill(0.5); // x̂0 at t = 199 (Tweedie, or the x-step result in DDS)
 * const eps = new Rng(7).normals(n); // ε_θ(x_t, 199, mr) in DDIP
 * const rng = new Rng(1); // the chain's noise stream
 * const xPrev = ddimStep(x0, eps, { alphaBarPrev: schedule.alphaBar(191), eta: 0.85, rng });
 * ```
 */
export function ddimStep(
  x0: Float32Array,
  eps: Float32Array,
  options: DdimStepOptions,
): Float32Array {
  const { alphaBarPrev, eta, rng, noise, clip = [0, 1] } = options;
  sameLength("ddimStep", x0, eps);
  checkAlphaBar("ddimStep: ᾱ_prev", alphaBarPrev);
  if (!(eta >= 0 && eta <= 1)) throw new RangeError(`ddimStep: η must be in [0, 1], got ${eta}`);
  const out = options.out ?? new Float32Array(x0.length);
  sameLength("ddimStep (out)", x0, out);
  if (noise) sameLength("ddimStep (noise)", x0, noise);
  if (eta > 0 && !noise && !rng) {
    throw new Error("ddimStep: η > 0 needs fresh noise: pass `rng` or `noise`");
  }
  const a = Math.sqrt(alphaBarPrev);
  const c1 = eta * Math.sqrt(1 - alphaBarPrev);
  const c2 = Math.sqrt(1 - eta * eta) * Math.sqrt(1 - alphaBarPrev);
  const lo = clip ? clip[0] : -Infinity;
  const hi = clip ? clip[1] : Infinity;
  for (let i = 0; i < x0.length; i++) {
    const x = Math.min(hi, Math.max(lo, x0[i]));
    const u = c1 === 0 ? 0 : noise ? noise[i] : Math.fround(rng!.normal());
    out[i] = a * x + c1 * u + c2 * eps[i];
  }
  return out;
}

/**
 * Forward noising to timestep t: `x_t = √ᾱ_t x0 + √(1−ᾱ_t) n`, `n ~ N(0, I)` from `rng` (or the
 * given `noise`).
 *
 * @example
 * ```ts
 * import { DdpmSchedule, noiseTo, Rng } from "@petrel/petrel";
 * const schedule = new DdpmSchedule();
 * const init = new Float32Array(128 * 128 * 3).fill(0.5); // MLEM initialisation / scale
 * const xt = noiseTo(init, schedule.alphaBar(199), new Rng(1)); // the start of a reverse chain
 * ```
 */
export function noiseTo(
  x0: Float32Array,
  alphaBar: number,
  source: Rng | Float32Array,
): Float32Array {
  checkAlphaBar("noiseTo: ᾱ_t", alphaBar);
  if (source instanceof Float32Array) sameLength("noiseTo (noise)", x0, source);
  const a = Math.sqrt(alphaBar);
  const s = Math.sqrt(1 - alphaBar);
  const out = new Float32Array(x0.length);
  for (let i = 0; i < x0.length; i++) {
    const n = source instanceof Float32Array ? source[i] : Math.fround(source.normal());
    out[i] = a * x0[i] + s * n;
  }
  return out;
}
