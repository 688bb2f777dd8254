/**
 * Timing helpers shared by the benchmarks: median wall time and process CPU time of device work.
 *
 * @module
 */
import process from "node:process";
import type { GpuContext } from "../core/gpu/context.ts";

/** Wall and process CPU time of one timed operation (ms). */
export interface Timing {
  wall: number;
  cpu: number;
}

/** Median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Process CPU time (user + system, all threads) in ms. */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * Median wall time and mean process CPU time (all threads, llvmpipe's included) of `fn` plus
 * waiting for the device. CPU time is the stabler figure on a shared, loaded machine. One
 * warm-up call (pipeline compilation, first touch) runs first unless `repeats` is 1, where the
 * minutes-long runs dwarf compilation.
 */
export async function timeGpu(
  ctx: GpuContext,
  fn: () => void,
  repeats: number,
): Promise<Timing> {
  if (repeats > 1) {
    fn();
    await ctx.finish();
  }
  const times: number[] = [];
  const c0 = cpuMs();
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    fn();
    await ctx.finish();
    times.push(performance.now() - t0);
  }
  return { wall: median(times), cpu: (cpuMs() - c0) / repeats };
}
