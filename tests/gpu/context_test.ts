import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { defaultContext, GpuArray } from "../../core/gpu/context.ts";
import { axpby, divSafe, dot, fill, recordMaxAbs, sum } from "../../core/gpu/ops.ts";

Deno.test("adapter report names the adapter and its limits", async () => {
  const ctx = await defaultContext();
  assert(ctx.adapter.description.length > 0);
  assert(ctx.adapter.limits.maxStorageBufferBindingSize >= 1 << 20);
  assert(ctx.adapter.limits.maxComputeWorkgroupsPerDimension >= 1024);
});

Deno.test("arrays round-trip host data and reject wrong lengths", async () => {
  const ctx = await defaultContext();
  const data = Float32Array.from({ length: 1000 }, (_, i) => i * 0.5 - 3);
  const a = ctx.array([10, 100], data);
  assertEquals(await a.read(), data);
  assert(a instanceof GpuArray);
  assertThrows(() => a.write(new Float32Array(3)), RangeError, "expected 1000");
  assertThrows(() => ctx.array([2, 2], [1, 2, 3]), RangeError, "needs 4");
  assertThrows(() => ctx.array([-1]), RangeError, "non-negative integers");
  a.destroy();
});

Deno.test("sum and dot match float64 host references and are bit-reproducible", async () => {
  const ctx = await defaultContext();
  const n = 200_003; // not a multiple of the block size
  const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i) + 0.25);
  const y = Float32Array.from({ length: n }, (_, i) => Math.cos(0.5 * i));
  let sx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sx += x[i];
    sxy += x[i] * y[i];
  }
  const gx = ctx.array([n], x);
  const gy = ctx.array([n], y);
  const s1 = await sum(gx);
  const d1 = await dot(gx, gy);
  assert(Math.abs(s1 - sx) / Math.abs(sx) < 1e-5, `sum ${s1} vs ${sx}`);
  assert(Math.abs(d1 - sxy) / Math.abs(sxy) < 1e-4, `dot ${d1} vs ${sxy}`);
  assertEquals(await sum(gx), s1);
  assertEquals(await dot(gx, gy), d1);
});

Deno.test("element-wise kernels compute what they say in one submit", async () => {
  const ctx = await defaultContext();
  const x = ctx.array([5], [1, 2, 3, 4, 5]);
  const y = ctx.array([5], [2, 0, -1, 4, 0.5]);
  const out = ctx.array([5]);
  const q = ctx.array([5]);
  const c = ctx.array([5]);
  const rec = ctx.record();
  axpby(rec, out, x, y, { a: 2, b: -1 });
  divSafe(rec, q, x, y);
  fill(rec, c, 7);
  rec.submit();
  assertEquals(Array.from(await out.read()), [0, 4, 7, 4, 9.5]);
  assertEquals(Array.from(await q.read()), [0.5, 0, 0, 1, 10]);
  assertEquals(Array.from(await c.read()), [7, 7, 7, 7, 7]);
  assertThrows(() => ctx.run((r) => axpby(r, out, x, ctx.array([4]), { a: 1, b: 1 })), RangeError);
});

Deno.test("maxabs finds the largest magnitude and flags non-finite values", async () => {
  const ctx = await defaultContext();
  const bits = ctx.array([1], undefined, "u32");
  const check = async (values: number[]) => {
    const x = ctx.array([values.length], values);
    ctx.run((rec) => {
      rec.clear(bits);
      recordMaxAbs(rec, bits, x);
    });
    return new Float32Array((await bits.readU32()).buffer)[0];
  };
  assertEquals(await check([0.5, -3, 2]), 3);
  assert(Number.isNaN(await check([1, NaN, 2])));
  assertEquals(await check([1, -Infinity]), Infinity);
});
