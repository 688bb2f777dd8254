/**
 * AdamW with global gradient-norm clipping for {@linkcode LoraState} parameters, matching
 * `torch.nn.utils.clip_grad_norm_` followed by `torch.optim.AdamW.step()` (decoupled weight
 * decay, bias-corrected moments; the moments are kept in float32 as PyTorch keeps them).
 *
 * @module
 */

import { z } from "zod";
import type { LoraState } from "./lora.ts";

/**
 * zod schema of the AdamW options (all optional; defaults are the DDIP-HQS reference).
 *
 * @example
 * ```ts
 * import { AdamWOptionsSchema } from "@petrel/petrel";
 * AdamWOptionsSchema.parse({ lr: 2e-3 }); // { lr: 0.002, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, clipNorm: 1 }
 * AdamWOptionsSchema.safeParse({ lr: -1 }).success; // false
 * ```
 */
export const AdamWOptionsSchema = z.object({
  /** Learning rate (reference 5e-4). */
  lr: z.number().positive().default(5e-4),
  beta1: z.number().min(0).lt(1).default(0.9),
  beta2: z.number().min(0).lt(1).default(0.999),
  eps: z.number().positive().default(1e-8),
  /** Decoupled weight decay λ (PyTorch's AdamW default 0.01). */
  weightDecay: z.number().min(0).default(0.01),
  /** Maximum global L2 norm of the gradient (reference 1.0); `Infinity` disables clipping. */
  clipNorm: z.number().positive().default(1.0),
});

/** AdamW options. */
export type AdamWOptions = z.input<typeof AdamWOptionsSchema>;

/** What one step did. */
export interface AdamWStepReport {
  /** Global L2 norm of the gradient before clipping. */
  gradNorm: number;
  /** Factor the gradient was multiplied by (1 when not clipped). */
  clipScale: number;
  /** Step count after this step (1 after the first). */
  step: number;
}

/**
 * The AdamW optimiser; create a new one (or call {@linkcode AdamW.reset}) to drop the moments.
 *
 * @example
 * ```ts
 * import { AdamW, LoraState } from "@petrel/petrel";
 * const params = new LoraState([{ name: "p.w", shape: [2] }], new Map([["p.w", Float32Array.of(1, 1)]]));
 * const opt = new AdamW({ lr: 2e-3, weightDecay: 0.01, clipNorm: 1 });
 * // grads from prior.vjp(xt, t, mr, params, gradEps) in DDIP; here a fixed one
 * const report = opt.step(params, new Map([["p.w", Float32Array.of(3, 4)]])); // in place
 * report.gradNorm; // 5 (clipped to norm 1: clipScale ≈ 0.2)
 * params.get("p.w"); // ≈ [0.99798, 0.99798]: the first Adam step moves each entry by ≈ lr
 * ```
 */
export class AdamW {
  readonly options: Readonly<z.output<typeof AdamWOptionsSchema>>;
  #m = new Map<string, Float32Array>();
  #v = new Map<string, Float32Array>();
  #step = 0;

  constructor(options: AdamWOptions = {}) {
    const parsed = AdamWOptionsSchema.safeParse(options);
    if (!parsed.success) {
      throw new RangeError(
        `invalid AdamW options: ${
          parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")
        }`,
      );
    }
    this.options = parsed.data;
  }

  /** Number of steps taken. */
  get stepCount(): number {
    return this.#step;
  }

  /** Drops the moment estimates and the step count. */
  reset(): void {
    this.#m.clear();
    this.#v.clear();
    this.#step = 0;
  }

  /**
   * Updates `params` in place from `grads` (one array per parameter name, same lengths). The
   * gradient is first scaled so its global L2 norm is at most `clipNorm`
   * (`scale = clipNorm / (norm + 1e-6)` when that is < 1, as PyTorch does); `grads` are not
   * modified.
   */
  step(params: LoraState, grads: ReadonlyMap<string, Float32Array>): AdamWStepReport {
    const { lr, beta1, beta2, eps, weightDecay, clipNorm } = this.options;
    for (const [name, p] of params.entries()) {
      const g = grads.get(name);
      if (!g) throw new Error(`AdamW.step: no gradient for parameter "${name}"`);
      if (g.length !== p.length) {
        throw new RangeError(
          `AdamW.step: gradient of "${name}" has ${g.length} elements, expected ${p.length}`,
        );
      }
    }
    let sq = 0;
    for (const [name] of params.entries()) {
      const g = grads.get(name)!;
      for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
    }
    const gradNorm = Math.sqrt(sq);
    if (!Number.isFinite(gradNorm)) {
      throw new RangeError(`AdamW.step: the gradient is not finite (norm ${gradNorm})`);
    }
    const coef = clipNorm / (gradNorm + 1e-6);
    const clipScale = Number.isFinite(clipNorm) && coef < 1 ? Math.fround(coef) : 1;
    this.#step++;
    const t = this.#step;
    const bc1 = 1 - beta1 ** t;
    const bc2Sqrt = Math.sqrt(1 - beta2 ** t);
    const stepSize = lr / bc1;
    const decay = 1 - lr * weightDecay;
    for (const [name, p] of params.entries()) {
      const g = grads.get(name)!;
      let m = this.#m.get(name);
      let v = this.#v.get(name);
      if (!m || !v) {
        m = new Float32Array(p.length);
        v = new Float32Array(p.length);
        this.#m.set(name, m);
        this.#v.set(name, v);
      }
      for (let i = 0; i < p.length; i++) {
        const gi = Math.fround(g[i] * clipScale);
        const mi = (m[i] = beta1 * m[i] + (1 - beta1) * gi);
        const vi = (v[i] = beta2 * v[i] + (1 - beta2) * gi * gi);
        const pi = Math.fround(p[i] * decay);
        p[i] = pi - (stepSize * mi) / (Math.sqrt(vi) / bc2Sqrt + eps);
      }
    }
    params.touch();
    return { gradNorm, clipScale, step: t };
  }
}
