/**
 * Exact box averaging from a fine grid onto a coarser one: each output voxel is the
 * volume-weighted mean of the fine voxels it overlaps (fractional overlaps included), so the
 * total activity `Σ value · voxel volume` is conserved for everything inside the output grid.
 *
 * @module
 */

import type { ImageGrid } from "../geometry/grid.ts";

/**
 * Overlap weights of the fine voxels along one axis with a coarser output axis. Fine voxel `i`
 * adds `w0[i]` of its value to padded output slot `slot[i]` and `w1[i]` to `slot[i] + 1`, where
 * padded slot `p` is output voxel `p − 1` (slots 0 and `n + 1` are discard bins).
 */
export interface AxisWeights {
  readonly slot: Int32Array;
  readonly w0: Float32Array;
  readonly w1: Float32Array;
  /** Number of output voxels along the axis. */
  readonly n: number;
}

/**
 * Overlap weights along one axis: `nf` fine voxels of `df` mm with the first centred at `of`,
 * onto `no` output voxels of `dOut` mm with the first centred at `oo`. Weight = overlap / `dOut`.
 * The fine voxels must not be larger than the output voxels.
 *
 * @example
 * ```ts
 * import { axisWeights } from "@petrel/petrel";
 * // BrainWeb's 362 fine voxels of 0.5 mm (first centred at −90.25 mm) onto 128 of 2.086 mm
 * const wx = axisWeights({ n: 362, origin: -90.25, size: 0.5 }, { n: 128, origin: -132.461, size: 2.086 });
 * ```
 */
export function axisWeights(
  fine: { n: number; origin: number; size: number },
  out: { n: number; origin: number; size: number },
): AxisWeights {
  const { n: nf, origin: of, size: df } = fine;
  const { n: no, origin: oo, size: dOut } = out;
  if (df > dOut * (1 + 1e-9)) {
    throw new RangeError(
      `box averaging needs fine voxels no larger than the output voxels (fine ${df} mm, output ${dOut} mm)`,
    );
  }
  const slot = new Int32Array(nf);
  const w0 = new Float32Array(nf);
  const w1 = new Float32Array(nf);
  const edge0 = oo - dOut / 2;
  for (let i = 0; i < nf; i++) {
    const a = of + i * df - df / 2;
    const b = a + df;
    const q = Math.floor((a - edge0) / dOut);
    const boundary = edge0 + (q + 1) * dOut;
    let v0 = (Math.min(b, boundary) - a) / dOut;
    let v1 = Math.max(0, b - boundary) / dOut;
    if (q < 0 || q >= no) v0 = 0;
    if (q + 1 < 0 || q + 1 >= no) v1 = 0;
    // Padded slot of q, clamped to the discard bins.
    const s = Math.min(Math.max(q + 1, 0), no);
    slot[i] = s;
    w0[i] = v0;
    w1[i] = v1;
  }
  return { slot, w0, w1, n: no };
}

/**
 * Axis weights for the three axes of `fine` (shifted by `shiftMm`) onto `out`.
 *
 * @example
 * ```ts
 * import { centredGrid, gridWeights } from "@petrel/petrel";
 * const fine = centredGrid([362, 434, 362], [0.5, 0.5, 0.5]);
 * const [wx, wy, wz] = gridWeights(fine, centredGrid([128, 128, 87], [2.086, 2.086, 2.086]));
 * ```
 */
export function gridWeights(
  fine: ImageGrid,
  out: ImageGrid,
  shiftMm: readonly [number, number, number] = [0, 0, 0],
): [AxisWeights, AxisWeights, AxisWeights] {
  return [0, 1, 2].map((a) =>
    axisWeights(
      { n: fine.shape[a], origin: fine.originMm[a] + shiftMm[a], size: fine.voxelSizeMm[a] },
      { n: out.shape[a], origin: out.originMm[a], size: out.voxelSizeMm[a] },
    )
  ) as [AxisWeights, AxisWeights, AxisWeights];
}

/**
 * Box-averages a whole fine volume onto `out` (plain reference implementation, three separable
 * passes). `shiftMm` is added to the fine grid's coordinates.
 *
 * @example
 * ```ts
 * import { boxAverage, centredGrid } from "@petrel/petrel";
 * const fine = centredGrid([512, 512, 1], [0.5, 0.5, 2.086]);
 * const values = new Float32Array(512 * 512).fill(1);
 * // 1 inside the fine grid's 256 mm; the output spans 128 × 2.086 = 267 mm, so its outer
 * // voxels are partly covered (fractions below 1) or not at all (0)
 * const coarse = boxAverage(values, fine, centredGrid([128, 128, 1], [2.086, 2.086, 2.086]));
 * ```
 */
export function boxAverage(
  values: Float32Array,
  fine: ImageGrid,
  out: ImageGrid,
  shiftMm: readonly [number, number, number] = [0, 0, 0],
): Float32Array {
  const [fx, fy, fz] = fine.shape;
  if (values.length !== fx * fy * fz) {
    throw new RangeError(
      `boxAverage: ${values.length} values for a fine grid of ${fx * fy * fz} voxels`,
    );
  }
  const [wx, wy, wz] = gridWeights(fine, out, shiftMm);
  const [ox, oy, oz] = out.shape;
  // x pass: [fx, fy, fz] → [ox+2, fy, fz]
  const px = ox + 2, py = oy + 2, pz = oz + 2;
  const a = new Float64Array(px * fy * fz);
  for (let r = 0; r < fy * fz; r++) {
    for (let i = 0; i < fx; i++) {
      const v = values[r * fx + i];
      a[r * px + wx.slot[i]] += v * wx.w0[i];
      a[r * px + wx.slot[i] + 1] += v * wx.w1[i];
    }
  }
  const b = new Float64Array(px * py * fz);
  for (let k = 0; k < fz; k++) {
    for (let j = 0; j < fy; j++) {
      const src = (k * fy + j) * px;
      const d0 = (k * py + wy.slot[j]) * px;
      const d1 = d0 + px;
      for (let i = 0; i < px; i++) {
        b[d0 + i] += a[src + i] * wy.w0[j];
        b[d1 + i] += a[src + i] * wy.w1[j];
      }
    }
  }
  const c = new Float64Array(px * py * pz);
  for (let k = 0; k < fz; k++) {
    const d0 = wz.slot[k] * px * py;
    const d1 = d0 + px * py;
    for (let t = 0; t < px * py; t++) {
      c[d0 + t] += b[k * px * py + t] * wz.w0[k];
      c[d1 + t] += b[k * px * py + t] * wz.w1[k];
    }
  }
  const res = new Float32Array(ox * oy * oz);
  for (let k = 0; k < oz; k++) {
    for (let j = 0; j < oy; j++) {
      for (let i = 0; i < ox; i++) {
        res[i + ox * (j + oy * k)] = c[(i + 1) + px * ((j + 1) + py * (k + 1))];
      }
    }
  }
  return res;
}
