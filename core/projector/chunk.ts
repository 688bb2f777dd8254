/**
 * The per-LOR records of one dispatch chunk on the device, shared by the Joseph projectors
 * (`joseph.ts`, `tof.ts`), which split their LORs into chunks that fit one storage binding.
 *
 * @module
 */

import type { GpuContext } from "../gpu/context.ts";

/**
 * A storage buffer holding records `first … first + count − 1` of `data`, `width` floats each
 * (at least 16 bytes: WebGPU refuses an empty binding).
 */
export function chunkBuffer(
  ctx: GpuContext,
  data: Float32Array,
  first: number,
  count: number,
  width: number,
): GPUBuffer {
  const buf = ctx.device.createBuffer({
    size: Math.max(16, count * width * 4),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
  });
  ctx.device.queue.writeBuffer(
    buf,
    0,
    data as Float32Array<ArrayBuffer>,
    first * width,
    count * width,
  );
  return buf;
}
