/**
 * Count levels: descriptors of full- and reduced-dose acquisitions. The Poisson simulation itself
 * runs through the forward model (`core/model`); this module only says how many true counts each
 * level has, which randoms and scatter fractions go with it, and which seed draws its noise.
 *
 * @module
 */

import { z } from "zod";
import { subSeed } from "../random.ts";

/**
 * The usual reduced-dose fractions: full, 1/4, 1/10, 1/20.
 *
 * @example
 * ```ts
 * import { countLevels, STANDARD_DOSE_FRACTIONS } from "@petrel/petrel";
 * // full, 1/4, 1/10 and 1/20 dose, plus 1/50
 * const levels = countLevels({ fullCounts: 1e7, fractions: [...STANDARD_DOSE_FRACTIONS, 1 / 50] });
 * ```
 */
export const STANDARD_DOSE_FRACTIONS: readonly number[] = [1, 1 / 4, 1 / 10, 1 / 20];

/** One acquisition's count level. */
export interface CountLevel {
  /** "full", "1/4", "1/10", "1/20", … */
  readonly name: string;
  /** Fraction of the full dose. */
  readonly doseFraction: number;
  /** Expected true (unscattered, attenuated) coincidences: the forward model's sinogram sum. */
  readonly trueCounts: number;
  /** Randoms as a fraction of the prompts (expected). */
  readonly randomsFraction: number;
  /** Scatter as a fraction of the prompts (expected). */
  readonly scatterFraction: number;
  /** Expected randoms counts (a flat additive background of this total). */
  readonly randomsCounts: number;
  /** Expected scatter counts (a smooth additive background of this total). */
  readonly scatterCounts: number;
  /** Seed of this level's Poisson noise (distinct per level and realisation). */
  readonly seed: number;
}

const CountLevelOptionsSchema = z.object({
  fullCounts: z.number().positive().finite(),
  fractions: z.array(z.number().positive().max(1)).min(1).optional(),
  randomsFraction: z.number().min(0).max(0.9).optional(),
  scatterFraction: z.number().min(0).max(0.9).optional(),
  seed: z.number().int().optional(),
  realisation: z.number().int().nonnegative().optional(),
});

/** Options of {@linkcode countLevels}. */
export type CountLevelOptions = z.input<typeof CountLevelOptionsSchema>;

function fractionName(f: number): string {
  if (f === 1) return "full";
  const inv = 1 / f;
  return Math.abs(inv - Math.round(inv)) < 1e-9 ? `1/${Math.round(inv)}` : `${f}`;
}

/**
 * Count levels for a full-dose number of true counts (default fractions 1, 1/4, 1/10, 1/20).
 * Randoms and scatter are given as fractions of the prompts (defaults 0.2 and 0.3, brain-like),
 * so with `T` trues: prompts `P = T / (1 − r − s)`, randoms `r·P`, scatter `s·P` — the same
 * fractions at every dose (randoms really scale with dose², but at these rates a constant fraction
 * is the common simplification; say so when it matters).
 *
 * @example
 * ```ts
 * // full dose and 1/4, 1/10, 1/20 of 1e7 trues, second noise realisation
 * const levels = countLevels({ fullCounts: 1e7, realisation: 1, seed: 1 });
 * ```
 */
export function countLevels(options: CountLevelOptions): CountLevel[] {
  const r = CountLevelOptionsSchema.safeParse(options);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new RangeError(
      `countLevels: ${issue.path.join(".") || "options"}: ${issue.message} ` +
        `(expected {fullCounts > 0, fractions in (0, 1], randomsFraction, scatterFraction in [0, 0.9]})`,
    );
  }
  const o = r.data;
  const rf = o.randomsFraction ?? 0.2;
  const sf = o.scatterFraction ?? 0.3;
  if (rf + sf >= 1) {
    throw new RangeError(
      `countLevels: randomsFraction + scatterFraction = ${
        rf + sf
      }; expected < 1 (trues must remain)`,
    );
  }
  const seed = o.seed ?? 0;
  const real = o.realisation ?? 0;
  return (o.fractions ?? STANDARD_DOSE_FRACTIONS).map((f) => {
    const trueCounts = o.fullCounts * f;
    const prompts = trueCounts / (1 - rf - sf);
    const name = fractionName(f);
    return {
      name,
      doseFraction: f,
      trueCounts,
      randomsFraction: rf,
      scatterFraction: sf,
      randomsCounts: rf * prompts,
      scatterCounts: sf * prompts,
      seed: subSeed(seed, `counts:${name}:${real}`),
    };
  });
}

/**
 * Scale that brings an expected sinogram (`sum` = its total) to `level.trueCounts`.
 *
 * @example
 * ```ts
 * import { countLevels, countScale } from "@petrel/petrel";
 * const expected = new Float32Array(129 * 224).fill(0.37); // A x of the true activity, noise-free
 * const [full] = countLevels({ fullCounts: 3e6 });
 * const s = countScale(expected.reduce((a, b) => a + b, 0), full);
 * const trues = expected.map((v) => v * s); // now sums to 3e6 counts
 * ```
 */
export function countScale(expectedSinogramSum: number, level: CountLevel): number {
  if (!(expectedSinogramSum > 0) || !Number.isFinite(expectedSinogramSum)) {
    throw new RangeError(
      `countScale: the expected sinogram sums to ${expectedSinogramSum}; expected a positive total`,
    );
  }
  return level.trueCounts / expectedSinogramSum;
}
