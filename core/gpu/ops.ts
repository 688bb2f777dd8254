/**
 * Element-wise and reduction kernels recorded into a {@linkcode KernelRecorder}. They never read
 * back; {@linkcode sum} and {@linkcode dot} are the explicit host round trips.
 *
 * @module
 */

import type { GpuArray, GpuContext, KernelRecorder } from "./context.ts";

/** Packs a uniform block of `{n: u32, a, b, c: f32}` as used by `elementwise.wgsl`. */
function ewParams(ctx: GpuContext, n: number, a = 0, b = 0, c = 0): GPUBuffer {
  const buf = new ArrayBuffer(16);
  new Uint32Array(buf, 0, 1)[0] = n;
  new Float32Array(buf, 4, 3).set([a, b, c]);
  return ctx.uniform(new Uint32Array(buf));
}

function sameLength(op: string, ...arrays: GpuArray[]): number {
  const n = arrays[0].length;
  for (const a of arrays) {
    if (a.length !== n) {
      throw new RangeError(
        `${op}: arrays have different lengths (${arrays.map((x) => x.length).join(" vs ")})`,
      );
    }
  }
  return n;
}

/**
 * out = value
 *
 * @example
 * ```ts
 * import { defaultContext, fill } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const x = ctx.array([128, 128, 1]);
 * ctx.run((rec) => fill(rec, x, 1)); // a uniform start image for MLEM
 * ```
 */
export function fill(rec: KernelRecorder, out: GpuArray, value: number): void {
  const n = out.length;
  rec.dispatch1d("elementwise", "fill", [ewParams(rec.ctx, n, value), out], n);
}

/**
 * out = a · x (x may be `out` itself).
 *
 * @example
 * ```ts
 * import { defaultContext, scale } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const x = ctx.array([3], Float32Array.of(1, 2, 3));
 * ctx.run((rec) => scale(rec, x, x, 0.5)); // in place
 * console.log(await x.read()); // Float32Array [0.5, 1, 1.5]
 * ```
 */
export function scale(rec: KernelRecorder, out: GpuArray, x: GpuArray, a: number): void {
  const n = sameLength("scale", out, x);
  if (x === out || x.buffer === out.buffer) {
    rec.dispatch1d("elementwise", "scale_inplace", [ewParams(rec.ctx, n, a), out], n);
  } else {
    rec.dispatch1d("elementwise", "scale", [ewParams(rec.ctx, n, a), out, x], n);
  }
}

/**
 * out = a · x + b · y
 *
 * @example
 * ```ts
 * import { axpby, defaultContext } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const x = ctx.array([2], Float32Array.of(1, 2));
 * const y = ctx.array([2], Float32Array.of(10, 20));
 * const out = ctx.array([2]);
 * ctx.run((rec) => axpby(rec, out, x, y, { a: 2, b: -0.5 }));
 * console.log(await out.read()); // Float32Array [-3, -6]
 * ```
 */
export function axpby(
  rec: KernelRecorder,
  out: GpuArray,
  x: GpuArray,
  y: GpuArray,
  coefficients: { a: number; b: number },
): void {
  const n = sameLength("axpby", out, x, y);
  rec.dispatch1d(
    "elementwise",
    "axpby",
    [ewParams(rec.ctx, n, coefficients.a, coefficients.b), out, x, y],
    n,
  );
}

/**
 * out = x ⊙ y
 *
 * @example
 * ```ts
 * import { defaultContext, mul } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const proj = ctx.array([3], Float32Array.of(4, 5, 6)); // A x
 * const atten = ctx.array([3], Float32Array.of(0.5, 0.25, 1)); // exp(−P μ)
 * const out = ctx.array([3]);
 * ctx.run((rec) => mul(rec, out, proj, atten));
 * console.log(await out.read()); // Float32Array [2, 1.25, 6]
 * ```
 */
export function mul(rec: KernelRecorder, out: GpuArray, x: GpuArray, y: GpuArray): void {
  const n = sameLength("mul", out, x, y);
  rec.dispatch1d("elementwise", "mul", [ewParams(rec.ctx, n), out, x, y], n);
}

/**
 * out = x / y where y > 0, else 0.
 *
 * @example
 * ```ts
 * import { defaultContext, divSafe } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const counts = ctx.array([3], Float32Array.of(3, 2, 1));
 * const expected = ctx.array([3], Float32Array.of(1.5, 0, 4));
 * const ratio = ctx.array([3]);
 * ctx.run((rec) => divSafe(rec, ratio, counts, expected));
 * console.log(await ratio.read()); // Float32Array [2, 0, 0.25]
 * ```
 */
export function divSafe(rec: KernelRecorder, out: GpuArray, x: GpuArray, y: GpuArray): void {
  const n = sameLength("divSafe", out, x, y);
  rec.dispatch1d("elementwise", "div_safe", [ewParams(rec.ctx, n), out, x, y], n);
}

/** Elements per workgroup in the deterministic reductions. */
const REDUCE_BLOCK = 4096;

function reduceParams(ctx: GpuContext, n: number, block: number): GPUBuffer {
  return ctx.uniform(new Uint32Array([n, block, 0, 0]));
}

/**
 * Records a deterministic reduction of `x` (or of `x ⊙ y`) into `out[0]`. Fixed blocks and a
 * fixed tree order make the result bit-identical on every run.
 *
 * @example
 * ```ts
 * import { defaultContext, recordSum } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const x = ctx.array([4], Float32Array.of(1, 2, 3, 4));
 * const total = ctx.array([1]);
 * ctx.run((rec) => recordSum(rec, total, x, x)); // Σ x ⊙ x, recorded with other work
 * console.log((await total.read())[0]); // 30
 * ```
 */
export function recordSum(
  rec: KernelRecorder,
  out: GpuArray,
  x: GpuArray,
  y?: GpuArray,
): void {
  const ctx = rec.ctx;
  const n = y ? sameLength("dot", x, y) : x.length;
  const blocks = Math.max(1, Math.ceil(n / REDUCE_BLOCK));
  const max = ctx.adapter.limits.maxComputeWorkgroupsPerDimension;
  const gy = Math.ceil(blocks / max);
  const gx = Math.ceil(blocks / gy);
  // gx·gy ≥ blocks; the extra workgroups see empty blocks and write zeros.
  let count = gx * gy;
  let level = rec.temp([count]);
  rec.dispatch(
    "reduce",
    y ? "dot_partial" : "sum_partial",
    [reduceParams(ctx, n, REDUCE_BLOCK), x, y ?? null, level],
    [gx, gy],
  );
  // Further passes sum the partials block by block in the same fixed order.
  while (count > 1) {
    const next = rec.temp([Math.ceil(count / REDUCE_BLOCK)]);
    rec.dispatch("reduce", "sum_partial", [
      reduceParams(ctx, count, REDUCE_BLOCK),
      level,
      null,
      next,
    ], [next.length]);
    level = next;
    count = next.length;
  }
  rec.copy(level, out, 4);
}

/**
 * Sum of all elements, read back to the host.
 *
 * @example
 * ```ts
 * import { defaultContext, sum } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * await sum(ctx.array([3], Float32Array.of(1, 2, 3))); // 6 (deterministic block reduction)
 * ```
 */
export async function sum(x: GpuArray): Promise<number> {
  const out = x.ctx.array([1]);
  x.ctx.run((rec) => recordSum(rec, out, x));
  const v = (await out.read())[0];
  out.destroy();
  return v;
}

/**
 * Inner product ⟨x, y⟩, read back to the host.
 *
 * @example
 * ```ts
 * import { defaultContext, dot } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const x = ctx.array([3], Float32Array.of(1, 2, 3));
 * const y = ctx.array([3], Float32Array.of(4, 5, 6));
 * await dot(x, y); // 32
 * ```
 */
export async function dot(x: GpuArray, y: GpuArray): Promise<number> {
  const out = x.ctx.array([1]);
  x.ctx.run((rec) => recordSum(rec, out, x, y));
  const v = (await out.read())[0];
  out.destroy();
  return v;
}

/**
 * Records max |x| into `bits[0]` as the bit pattern of an f32 (`bits` must be zeroed first, e.g.
 * with `rec.clear`). NaN and ±Inf compare above every finite value.
 *
 * @example
 * ```ts
 * import { defaultContext, recordMaxAbs } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const x = ctx.array([3], Float32Array.of(1, -7, 3));
 * const bits = ctx.array([1], undefined, "u32");
 * ctx.run((rec) => {
 *   rec.clear(bits);
 *   recordMaxAbs(rec, bits, x);
 * });
 * const max = new Float32Array((await bits.readU32()).buffer)[0]; // 7
 * ```
 */
export function recordMaxAbs(rec: KernelRecorder, bits: GpuArray, x: GpuArray): void {
  const groups = Math.min(256, Math.max(1, Math.ceil(x.length / 64)));
  rec.dispatch(
    "reduce",
    "maxabs",
    [reduceParams(rec.ctx, x.length, 0), x, null, null, bits],
    [groups],
  );
}
