/**
 * Host-side tables shared by the ring-sinogram projectors ({@linkcode RingPlanarProjector},
 * {@linkcode RingObliqueProjector}): the views an operator covers, the per-family Joseph
 * parametrisation of the in-plane chords and the radial distance table (see
 * `shaders/joseph_ring.wgsl`). Internal: not exported from the package.
 *
 * @module
 */

import type { ImageGrid } from "../geometry/grid.ts";
import type { RingScanner } from "../geometry/scanner.ts";

/** Entries (vec4) of the family table and floats of the d table: one 64 KiB uniform each. */
export const RING_TABLE_VEC4 = 4096;

/** `views` (default all of the scanner's), checked to be views of `scanner`; `who` names the caller in errors. */
export function ringViews(
  who: string,
  scanner: RingScanner,
  views?: readonly number[],
): readonly number[] {
  const out = views ?? Array.from({ length: scanner.views }, (_, v) => v);
  for (const v of out) {
    if (!Number.isInteger(v) || v < 0 || v >= scanner.views) {
      throw new RangeError(`${who}: view ${v} is outside 0 … ${scanner.views - 1}`);
    }
  }
  return out;
}

/**
 * The family table of `views` on `grid`: per family (local view j, parity q), at vec4 2j + q,
 * ub(i) = d·A + B + i·C along axis b on plane i of axis a, and ± the in-plane path length per
 * plane step (+: a = x). Float64, rounded once. `xDominant[2j + q]` says whether a = x.
 */
export function ringFamilies(
  scanner: RingScanner,
  grid: ImageGrid,
  views: readonly number[],
): { fam: Float32Array; xDominant: boolean[] } {
  const N = scanner.spec.crystalsPerRing;
  const [ox, oy] = grid.originMm;
  const [vx, vy] = grid.voxelSizeMm;
  const fam = new Float32Array(4 * RING_TABLE_VEC4);
  const xDominant: boolean[] = [];
  views.forEach((v, j) => {
    for (let q = 0; q < 2; q++) {
      const psi = ((2 * v + q) * Math.PI) / N;
      const c = Math.cos(psi);
      const s = Math.sin(psi);
      const o = 4 * (2 * j + q);
      // a = y when the line is steeper than 45° (exactly 45°, a tie in float64 rounding, is x
      // as in JosephProjector; it matters for anisotropic voxels)
      const aIsX = !(Math.abs(c) > Math.abs(s) + 1e-9);
      xDominant.push(aIsX);
      if (!aIsX) {
        // a = y (b = x): x = (d − y sinψ) / cosψ
        fam.set([
          1 / (vx * c),
          -(oy * s) / (vx * c) - ox / vx,
          -(vy * s) / (vx * c),
          -vy / Math.abs(c),
        ], o);
      } else {
        // a = x (b = y): y = (d − x cosψ) / sinψ
        fam.set([
          1 / (vy * s),
          -(ox * c) / (vy * s) - oy / vy,
          -(vx * c) / (vy * s),
          vx / Math.abs(s),
        ], o);
      }
    }
  });
  return { fam, xDominant };
}

/** d(rs) = −R sin(rs π / N) by radial bin (rs = bin − (nr − 1)/2): the chords' signed distances. */
export function ringDistances(scanner: RingScanner): Float32Array {
  const N = scanner.spec.crystalsPerRing;
  const R = scanner.spec.radiusMm;
  const nr = scanner.radialBins;
  const dtab = new Float32Array(RING_TABLE_VEC4);
  for (let r = 0; r < nr; r++) dtab[r] = -R * Math.sin(((r - (nr - 1) / 2) * Math.PI) / N);
  return dtab;
}
