/**
 * Plain-TypeScript Joseph projector (float64): the independent reference the WGSL kernels are
 * tested and benchmarked against. Same sampling rules as `shaders/joseph.wgsl`.
 *
 * @module
 */

import type { ImageGrid } from "../geometry/grid.ts";
import type { LorSet } from "../geometry/lors.ts";

type Visit = (index: number, weight: number) => void;

function traverse(lors: LorSet, grid: ImageGrid, n: number, visit: Visit): void {
  const e = lors.endpoints;
  const p0 = [e[6 * n], e[6 * n + 1], e[6 * n + 2]];
  const d = [e[6 * n + 3] - p0[0], e[6 * n + 4] - p0[1], e[6 * n + 5] - p0[2]];
  const len = Math.hypot(d[0], d[1], d[2]);
  if (len === 0) return;
  const ad = d.map(Math.abs);
  let a = 0;
  if (ad[1] > ad[0] && ad[1] >= ad[2]) a = 1;
  if (ad[2] > ad[0] && ad[2] > ad[1]) a = 2;
  const b = (a + 1) % 3;
  const c = (a + 2) % 3;
  const u0 = p0.map((p, k) => (p - grid.originMm[k]) / grid.voxelSizeMm[k]);
  const du = d.map((x, k) => x / grid.voxelSizeMm[k]);
  const dims = grid.shape;
  const stride = [1, dims[0], dims[0] * dims[1]];
  const first = Math.max(Math.ceil(Math.min(u0[a], u0[a] + du[a])), 0);
  const last = Math.min(Math.floor(Math.max(u0[a], u0[a] + du[a])), dims[a] - 1);
  const w = (grid.voxelSizeMm[a] * len) / ad[a];
  for (let i = first; i <= last; i++) {
    const s = (i - u0[a]) / du[a];
    const ub = u0[b] + s * du[b];
    const uc = u0[c] + s * du[c];
    const jb = Math.floor(ub);
    const jc = Math.floor(uc);
    const tb = ub - jb;
    const tc = uc - jc;
    for (const [ob, wb] of [[0, 1 - tb], [1, tb]]) {
      for (const [oc, wc] of [[0, 1 - tc], [1, tc]]) {
        const kb = jb + ob;
        const kc = jc + oc;
        if (kb < 0 || kb >= dims[b] || kc < 0 || kc >= dims[c] || wb * wc === 0) continue;
        visit(i * stride[a] + kb * stride[b] + kc * stride[c], w * wb * wc);
      }
    }
  }
}

/**
 * Forward projection `P x` in float64.
 *
 * @example
 * ```ts
 * import { centredGrid, josephForwardReference, lorSet } from "@petrel/petrel";
 * const grid = centredGrid([10, 10, 1], [2, 2, 2]); // 20 mm square
 * const lors = lorSet([-100, 1, 0], [100, 1, 0]); // one LOR along x through the centres of row 5
 * const image = new Float32Array(100).fill(1);
 * josephForwardReference(lors, grid, image); // Float64Array [20]: 10 voxels × 2 mm
 * ```
 */
export function josephForwardReference(
  lors: LorSet,
  grid: ImageGrid,
  image: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(lors.count);
  for (let n = 0; n < lors.count; n++) {
    let acc = 0;
    traverse(lors, grid, n, (idx, w) => {
      acc += w * image[idx];
    });
    out[n] = acc;
  }
  return out;
}

/**
 * Back projection `Pᵀ y` in float64.
 *
 * @example
 * ```ts
 * import { centredGrid, josephBackReference, lorSet } from "@petrel/petrel";
 * const grid = centredGrid([10, 10, 1], [2, 2, 2]);
 * const lors = lorSet([-100, 1, 0], [100, 1, 0]);
 * const back = josephBackReference(lors, grid, [1]); // 2 (mm) in the 10 voxels of row 5, 0 elsewhere
 * ```
 */
export function josephBackReference(
  lors: LorSet,
  grid: ImageGrid,
  proj: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(grid.shape[0] * grid.shape[1] * grid.shape[2]);
  for (let n = 0; n < lors.count; n++) {
    const v = proj[n];
    if (v === 0) continue;
    traverse(lors, grid, n, (idx, w) => {
      out[idx] += w * v;
    });
  }
  return out;
}
