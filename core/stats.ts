/**
 * Order statistics shared by the layers that need them (the DDIP intensity scale, PNG display
 * windows). A leaf module: it imports nothing.
 *
 * @module
 */

/**
 * `q`-th percentile (0–100, clamped; linear interpolation between order statistics) of values
 * already sorted ascending; 0 for an empty array.
 *
 * @example
 * ```ts
 * import { percentileOfSorted } from "./stats.ts";
 * percentileOfSorted(Float64Array.of(1, 2, 3, 4), 50); // 2.5
 * ```
 */
export function percentileOfSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  const pos = (Math.min(100, Math.max(0, q)) / 100) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}

/**
 * `q`-th percentile (0–100, linear interpolation between order statistics) of `v` (any order);
 * throws on an empty array.
 *
 * @example
 * ```ts
 * import { percentile } from "./stats.ts";
 * percentile([3, 1, 2, 4], 50); // 2.5
 * ```
 */
export function percentile(v: ArrayLike<number>, q: number): number {
  if (v.length === 0) throw new RangeError("percentile of an empty array");
  return percentileOfSorted(Float64Array.from(v).sort(), q);
}
