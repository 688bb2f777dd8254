/**
 * The deterministic back projection shared by the Joseph projectors (`joseph.ts`, `tof.ts`):
 * the scatter kernels add to 64-bit fixed-point accumulators (one per voxel) scaled by max |y|,
 * and a resolve pass turns them into floats (`shaders/joseph_common.wgsl`). Integer addition is
 * associative, so the result does not depend on the order in which threads add.
 *
 * @module
 */

import type { GpuArray, GpuContext, KernelRecorder } from "../gpu/context.ts";
import { recordMaxAbs } from "../gpu/ops.ts";

/** The accumulators of one image grid and the max-|y| word of a deterministic back projection. */
export class FixedPointBack {
  /** Two u32 words per voxel (binding 5 of the scatter and resolve kernels). */
  readonly accum: GPUBuffer;
  /** Bit pattern of max |y| as an f32 (binding 6). */
  readonly maxBits: GpuArray;

  constructor(ctx: GpuContext, voxels: number) {
    this.accum = ctx.device.createBuffer({
      size: Math.max(16, voxels * 8),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    this.maxBits = ctx.array([1], undefined, "u32");
  }

  /**
   * Records `out = Pᵀ y`: clears the accumulators, records max |y|, lets `scatter` record the
   * kernels that add to {@linkcode FixedPointBack.accum}, then `shader`'s `resolve` entry (its
   * uniform parameters `resolveParams`) into `out`.
   */
  record(
    rec: KernelRecorder,
    shader: "joseph" | "joseph_tof",
    resolveParams: GPUBuffer,
    y: GpuArray,
    out: GpuArray,
    scatter: () => void,
  ): void {
    rec.clear(this.accum);
    rec.clear(this.maxBits);
    recordMaxAbs(rec, this.maxBits, y);
    scatter();
    rec.dispatch1d(shader, "resolve", [
      resolveParams,
      null,
      null,
      null,
      null,
      null,
      this.maxBits,
      null,
      null,
      this.accum,
      out,
    ], out.length);
  }

  /** Frees the device buffers. */
  destroy(): void {
    this.accum.destroy();
    this.maxBits.destroy();
  }
}
