/**
 * DDPM noise schedules: linear betas, ᾱ_t = ∏_{s ≤ t} (1 − β_s), and the descending timestep
 * lists the samplers walk. Everything is computed in float64 (as the PyTorch reference does with
 * `torch.linspace(..., dtype=float64)` and `cumprod`), so ᾱ agrees with the training code to
 * rounding.
 *
 * Timesteps are integer indices `0 … T−1`; the network receives the same index as a float.
 * `alphaBar(-1) = 1` is the "clean" end of the chain (the value DDIM uses after the last step).
 *
 * @module
 */

import { z } from "zod";

/**
 * zod schema of a schedule description (the `schedule` block of the model metadata).
 *
 * @example
 * ```ts
 * import { ScheduleSpecSchema } from "@petrel/petrel";
 * ScheduleSpecSchema.parse({ kind: "linear", T: 1000, beta_start: 1e-4, beta_end: 0.02 });
 * ScheduleSpecSchema.safeParse({ kind: "linear", T: 1000, beta_start: 0.02, beta_end: 1e-4 }).success; // false
 * ```
 */
export const ScheduleSpecSchema = z.object({
  kind: z.literal("linear"),
  T: z.number().int().positive(),
  beta_start: z.number().positive().lt(1),
  beta_end: z.number().positive().lt(1),
}).refine((s) => s.beta_end >= s.beta_start, {
  message: "beta_end must be ≥ beta_start",
});

/** A schedule description as stored in the model metadata. */
export type ScheduleSpec = z.infer<typeof ScheduleSpecSchema>;

/**
 * The reference schedule: T = 1000, linear betas 1e-4 → 0.02.
 *
 * @example
 * ```ts
 * import { DdpmSchedule, REFERENCE_SCHEDULE } from "@petrel/petrel";
 * const s = new DdpmSchedule(REFERENCE_SCHEDULE); // also the default
 * s.alphaBar(199); // ≈ 0.659: where DDIP's reverse chain starts
 * ```
 */
export const REFERENCE_SCHEDULE: ScheduleSpec = {
  kind: "linear",
  T: 1000,
  beta_start: 1e-4,
  beta_end: 0.02,
};

/**
 * A discrete DDPM schedule with precomputed betas and cumulative products (float64).
 *
 * @example
 * ```ts
 * import { DdpmSchedule } from "@petrel/petrel";
 * const s = new DdpmSchedule({ kind: "linear", T: 1000, beta_start: 1e-4, beta_end: 0.02 });
 * s.reverseSteps(200, 25); // [[199, 191], …, [0, -1]]
 * ```
 */
export class DdpmSchedule {
  /** Number of diffusion steps T. */
  readonly T: number;
  readonly #betas: Float64Array;
  readonly #alphaBars: Float64Array;

  constructor(readonly spec: ScheduleSpec = REFERENCE_SCHEDULE) {
    const parsed = ScheduleSpecSchema.safeParse(spec);
    if (!parsed.success) {
      throw new RangeError(
        `invalid diffusion schedule ${JSON.stringify(spec)}: ${
          parsed.error.issues.map((i) => `${i.path.join(".") || "schedule"}: ${i.message}`).join(
            "; ",
          )
        } (expected {kind: "linear", T, beta_start, beta_end})`,
      );
    }
    const { T, beta_start: b0, beta_end: b1 } = parsed.data;
    this.T = T;
    this.#betas = new Float64Array(T);
    this.#alphaBars = new Float64Array(T);
    let prod = 1;
    for (let t = 0; t < T; t++) {
      // torch.linspace: start + t * step, step = (end - start) / (T - 1)
      const beta = T === 1 ? b0 : b0 + (t * (b1 - b0)) / (T - 1);
      this.#betas[t] = beta;
      prod *= 1 - beta;
      this.#alphaBars[t] = prod;
    }
  }

  #check(t: number, allowMinusOne: boolean): void {
    if (!Number.isInteger(t) || t < (allowMinusOne ? -1 : 0) || t >= this.T) {
      throw new RangeError(
        `timestep must be an integer in [${allowMinusOne ? -1 : 0}, ${this.T - 1}], got ${t}`,
      );
    }
  }

  /** β_t for t in 0 … T−1. */
  beta(t: number): number {
    this.#check(t, false);
    return this.#betas[t];
  }

  /** α_t = 1 − β_t. */
  alpha(t: number): number {
    return 1 - this.beta(t);
  }

  /** ᾱ_t = ∏_{s=0..t} (1 − β_s); ᾱ_{−1} = 1. */
  alphaBar(t: number): number {
    this.#check(t, true);
    return t < 0 ? 1 : this.#alphaBars[t];
  }

  /**
   * The descending timesteps of a (sub-sampled) reverse chain that starts at `start` (exclusive
   * upper bound, e.g. 200) and takes `steps` steps: pairs `[t, tPrev]` from t = start−1 down to
   * t = 0, the last `tPrev` being −1. With `steps === start` this is `start−1, …, 0` (the
   * reference's 200 steps from t = 200); fewer steps space the timesteps evenly.
   */
  reverseSteps(start: number, steps: number): Array<[number, number]> {
    if (!Number.isInteger(start) || start < 1 || start > this.T) {
      throw new RangeError(`start must be an integer in [1, ${this.T}], got ${start}`);
    }
    if (!Number.isInteger(steps) || steps < 1 || steps > start) {
      throw new RangeError(`steps must be an integer in [1, start = ${start}], got ${steps}`);
    }
    // evenly spaced integers from start−1 down to 0 (strictly decreasing since steps ≤ start)
    const ts: number[] = [];
    for (let i = 0; i < steps; i++) {
      ts.push(steps === 1 ? start - 1 : Math.round(((start - 1) * (steps - 1 - i)) / (steps - 1)));
    }
    const out: Array<[number, number]> = [];
    for (let i = 0; i < steps; i++) out.push([ts[i], i + 1 < steps ? ts[i + 1] : -1]);
    return out;
  }
}
