/**
 * Helpers shared by the benchmarks: median wall time and process CPU time of device work, the
 * scanner cases (`2d`, `stack3`, `3d`) of the projector and OSEM benchmarks, and their table title.
 *
 * @module
 */
import process from "node:process";
import type { GpuContext } from "../core/gpu/context.ts";
import { mmrLike2d, mmrLike3d, type RingScanner } from "../core/geometry/scanner.ts";

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

/** Name of a shared scanner case. */
export type ScannerCaseName = "2d" | "stack3" | "3d";

/**
 * The scanners of the shared cases: `2d` one mMR-like slice, `stack3` three direct slices, `3d`
 * 32 rings with max ring difference 7. One definition, so that rows of different benchmarks with
 * the same case name time the same geometry.
 */
export const SCANNER_CASES: Readonly<Record<ScannerCaseName, () => RingScanner>> = {
  "2d": mmrLike2d,
  stack3: () => mmrLike3d({ rings: 3, maxRingDifference: 0 }),
  "3d": () => mmrLike3d({ rings: 32, maxRingDifference: 7 }),
};

/** A benchmark case: a shared scanner case plus the benchmark's own settings `S`. */
export type ScannerCase<S> = S & { name: ScannerCaseName; scanner: () => RingScanner };

/** The shared scanner cases, each with the benchmark's own `settings`, in `2d, stack3, 3d` order. */
export function scannerCases<S extends object>(
  settings: Readonly<Record<ScannerCaseName, S>>,
): ScannerCase<S>[] {
  const names: ScannerCaseName[] = ["2d", "stack3", "3d"];
  return names.map((name) => ({ ...settings[name], name, scanner: SCANNER_CASES[name] }));
}

/**
 * The cases named in `wanted`, in the order of `cases`. An unknown name throws before anything
 * runs, rather than silently timing fewer cases than asked for.
 */
export function selectCases<C extends { name: string }>(
  cases: readonly C[],
  wanted: readonly string[],
): C[] {
  const unknown = wanted.filter((w) => !cases.some((c) => c.name === w));
  if (unknown.length) {
    throw new Error(
      `unknown case(s) ${unknown.join(", ")}; choose from ${cases.map((c) => c.name).join(", ")}`,
    );
  }
  return cases.filter((c) => wanted.includes(c.name));
}

/**
 * The title line of a benchmark table: `what` on the adapter, marked when it is the fallback
 * (software) adapter, whose times are not a GPU's.
 */
export function adapterTitle(what: string, ctx: GpuContext): string {
  return `${what} on ${ctx.adapter.description}${
    ctx.adapter.isFallback ? " (fallback adapter)" : ""
  }`;
}
