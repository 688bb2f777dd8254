/**
 * Lines of response as start/end points in mm: the only thing a projector needs to know about a
 * scanner (sinograms, list-mode events and custom geometries all reduce to this).
 *
 * @module
 */

/** A set of LORs: `endpoints[6n .. 6n+5] = x0, y0, z0, x1, y1, z1` (mm) for LOR n. */
export interface LorSet {
  /** Number of LORs. */
  readonly count: number;
  /** Packed start and end points, 6 floats per LOR, in mm. */
  readonly endpoints: Float32Array;
  /** Shape of the projection data, fastest axis first (e.g. `[radial, views, planes]`). */
  readonly shape: readonly number[];
}

/**
 * Builds a LOR set from separate start and end point arrays (3 floats per point, mm).
 * Throws when the arrays disagree or hold non-finite values.
 *
 * @example
 * ```ts
 * // one LOR along x through the origin (mm)
 * const lors = lorSet([-100, 0, 0], [100, 0, 0]);
 * ```
 */
export function lorSet(
  start: ArrayLike<number>,
  end: ArrayLike<number>,
  shape?: readonly number[],
): LorSet {
  if (start.length !== end.length || start.length % 3 !== 0) {
    throw new RangeError(
      `lorSet: start (${start.length}) and end (${end.length}) must both hold 3 coordinates per LOR`,
    );
  }
  const count = start.length / 3;
  const endpoints = new Float32Array(6 * count);
  for (let n = 0; n < count; n++) {
    for (let c = 0; c < 3; c++) {
      const s = start[3 * n + c];
      const e = end[3 * n + c];
      if (!Number.isFinite(s) || !Number.isFinite(e)) {
        throw new RangeError(
          `lorSet: LOR ${n} has a non-finite coordinate; all coordinates must be finite mm`,
        );
      }
      endpoints[6 * n + c] = s;
      endpoints[6 * n + 3 + c] = e;
    }
  }
  const sh = shape ?? [count];
  if (sh.reduce((a, b) => a * b, 1) !== count) {
    throw new RangeError(`lorSet: shape ${JSON.stringify(sh)} does not hold ${count} LORs`);
  }
  return { count, endpoints, shape: sh };
}

/**
 * Start point of LOR `n` in mm.
 *
 * @example
 * ```ts
 * import { lorStart, mmrLike2d } from "@petrel/petrel";
 * const lors = mmrLike2d().lors();
 * const [x, y, z] = lorStart(lors, 0); // crystal centre of LOR 0's first end, mm
 * ```
 */
export function lorStart(lors: LorSet, n: number): [number, number, number] {
  const e = lors.endpoints;
  return [e[6 * n], e[6 * n + 1], e[6 * n + 2]];
}

/**
 * End point of LOR `n` in mm.
 *
 * @example
 * ```ts
 * import { lorEnd, lorStart, mmrLike2d } from "@petrel/petrel";
 * const lors = mmrLike2d().lors();
 * const a = lorStart(lors, 100), b = lorEnd(lors, 100);
 * const lengthMm = Math.hypot(b[0] - a[0], b[1] - a[1], b[2] - a[2]);
 * ```
 */
export function lorEnd(lors: LorSet, n: number): [number, number, number] {
  const e = lors.endpoints;
  return [e[6 * n + 3], e[6 * n + 4], e[6 * n + 5]];
}
