/**
 * The automatic intensity scale of DDIP (activity per prior unit), shared by single stacks and
 * whole volumes: the configured percentile of the in-plane Gaussian-filtered MLEM initialisation,
 * times the headroom (`DdipConfig.scalePercentile`, `scaleFilterFwhmMm`, `scaleHeadroom`).
 *
 * @module
 */

import type { GpuContext } from "../../gpu/context.ts";
import type { ImageGrid } from "../../geometry/grid.ts";
import { percentile } from "../../stats.ts";
import { gaussianPostFilter } from "../filter.ts";
import type { DdipConfig } from "./config.ts";

/** One MLEM image the scale is read from. */
export interface ScaleSample {
  /** The image's grid (the filter's voxel sizes). */
  grid: ImageGrid;
  /** The MLEM initialisation on `grid`, activity units. */
  init: Float32Array;
  /**
   * The planes of the filtered image that count, `[first, count]` (default all): a volume counts
   * only each stack's centre plane.
   */
  planes?: readonly [number, number];
}

/**
 * The automatic intensity scale (activity per prior unit) of one or more MLEM images: the
 * configured percentile over the counted planes of every in-plane Gaussian-filtered image
 * (filtered on the device), times the headroom.
 *
 * @example
 * ```ts
 * import { autoScale, centredGrid, ddipConfig, defaultContext } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const grid = centredGrid([128, 128, 3], [2.086, 2.086, 2.086]);
 * const init = new Float32Array(128 * 128 * 3).fill(2); // the MLEM initialisation (mlemInit)
 * // one stack: every plane counts; a volume passes each stack's centre plane instead
 * const s = await autoScale(ctx, [{ grid, init }], ddipConfig()); // ≈ 3.6 = 2 × headroom 1.8
 * ```
 */
export async function autoScale(
  ctx: GpuContext,
  samples: readonly ScaleSample[],
  config: DdipConfig,
): Promise<number> {
  const parts: Float32Array[] = [];
  for (const { grid, init, planes } of samples) {
    let v = init;
    if (config.scaleFilterFwhmMm > 0) {
      const x = ctx.array(grid.shape, init);
      const f = gaussianPostFilter(ctx, grid, x, config.scaleFilterFwhmMm);
      x.destroy();
      v = await f.read();
      f.destroy();
    }
    if (planes) {
      const plane = grid.shape[0] * grid.shape[1];
      v = v.slice(planes[0] * plane, (planes[0] + planes[1]) * plane);
    }
    parts.push(v);
  }
  const p = percentile(concat(parts), config.scalePercentile) * config.scaleHeadroom;
  if (!(p > 0) || !Number.isFinite(p)) {
    throw new RangeError(
      `automatic intensity scale is ${p}: the MLEM initialisation has no positive activity at the ${config.scalePercentile}th percentile; pass options.scale`,
    );
  }
  return p;
}

function concat(parts: readonly Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
