/**
 * Image-space Gaussian resolution model: separable, zero-padded, self-adjoint.
 *
 * @module
 */

import type { GpuArray, GpuContext, KernelRecorder } from "../gpu/context.ts";
import type { ImageGrid } from "../geometry/grid.ts";
import { checkShape, type LinearOperator } from "./operator.ts";

/**
 * 1-D Gaussian taps for `fwhmMm` at `voxelMm` spacing, truncated at 3σ and normalised to sum 1.
 *
 * @example
 * ```ts
 * import { gaussianTaps } from "@petrel/petrel";
 * const taps = gaussianTaps(4, 2.086); // 4 mm FWHM on 2.086 mm voxels: σ ≈ 0.81 voxel
 * taps.length; // 7 (radius ⌈3σ⌉ = 3)
 * gaussianTaps(0, 2); // Float32Array [1]: no blur
 * ```
 */
export function gaussianTaps(fwhmMm: number, voxelMm: number): Float32Array {
  if (!(fwhmMm >= 0) || !Number.isFinite(fwhmMm)) {
    throw new RangeError(`FWHM must be a finite number ≥ 0 mm, got ${fwhmMm}`);
  }
  const sigma = fwhmMm / (2 * Math.sqrt(2 * Math.log(2))) / voxelMm;
  if (sigma === 0) return Float32Array.of(1);
  const r = Math.max(1, Math.ceil(3 * sigma));
  const taps = new Float64Array(2 * r + 1);
  let s = 0;
  for (let t = -r; t <= r; t++) s += taps[t + r] = Math.exp(-0.5 * (t / sigma) ** 2);
  return Float32Array.from(taps, (v) => v / s);
}

/**
 * Gaussian blur with FWHM per axis in mm (0 = no blur along that axis). Apply and adjoint are
 * the same separable convolution (the kernel is symmetric and the padding is zero).
 *
 * @example
 * ```ts
 * import { applyToHost, centredGrid, defaultContext, GaussianFilter } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const grid = centredGrid([64, 64, 1], [2, 2, 2]);
 * const blur = new GaussianFilter(ctx, grid, [4, 4, 0]); // FWHM in mm per axis
 * const y = await applyToHost(ctx, blur, new Float32Array(64 * 64).fill(1));
 * ```
 */
export class GaussianFilter implements LinearOperator {
  readonly inShape: readonly number[];
  readonly outShape: readonly number[];
  #passes: { axis: number; taps: GpuArray; params: GPUBuffer }[] = [];
  #scratch: GpuArray[] = [];

  constructor(
    readonly ctx: GpuContext,
    readonly grid: ImageGrid,
    readonly fwhmMm: readonly [number, number, number],
  ) {
    this.inShape = [...grid.shape];
    this.outShape = [...grid.shape];
    for (let axis = 0; axis < 3; axis++) {
      const taps = gaussianTaps(fwhmMm[axis], grid.voxelSizeMm[axis]);
      if (taps.length === 1) continue;
      const radius = (taps.length - 1) / 2;
      this.#passes.push({
        axis,
        taps: ctx.array([taps.length], taps),
        params: ctx.uniform(new Uint32Array([...grid.shape, axis, radius, 0, 0, 0])),
      });
    }
    const n = grid.shape[0] * grid.shape[1] * grid.shape[2];
    if (this.#passes.length > 1) this.#scratch.push(ctx.array([n]));
    if (this.#passes.length > 2) this.#scratch.push(ctx.array([n]));
  }

  /** Records `out = G x`. */
  apply(rec: KernelRecorder, x: GpuArray, out: GpuArray): void {
    checkShape("GaussianFilter input", x, this.inShape);
    checkShape("GaussianFilter output", out, this.outShape);
    const n = x.length;
    if (this.#passes.length === 0) {
      rec.copy(x, out);
      return;
    }
    // Ping-pong through scratch buffers so that the last pass writes `out`.
    let src = x;
    this.#passes.forEach((p, i) => {
      const last = i === this.#passes.length - 1;
      const dst = last ? out : this.#scratch[i % this.#scratch.length];
      rec.dispatch1d("gaussian", "convolve_axis", [p.params, dst, src, p.taps], n);
      src = dst;
    });
  }

  /** Records `out = Gᵀ y` (= G y). */
  adjoint(rec: KernelRecorder, y: GpuArray, out: GpuArray): void {
    this.apply(rec, y, out);
  }

  /** Frees the taps and scratch arrays. */
  destroy(): void {
    for (const p of this.#passes) p.taps.destroy();
    for (const s of this.#scratch) s.destroy();
  }
}
