import { equal, ok } from "node:assert/strict";
import { logFactorial, Rng } from "../core/random.ts";

Deno.test("rng: same seed → same sequence, different seed → different", () => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43);
  const sa = Array.from({ length: 100 }, () => a.nextU32());
  const sb = Array.from({ length: 100 }, () => b.nextU32());
  const sc = Array.from({ length: 100 }, () => c.nextU32());
  equal(JSON.stringify(sa), JSON.stringify(sb));
  ok(sa.some((v, i) => v !== sc[i]));
});

Deno.test("rng: uniform, normal and Poisson moments match their distributions", () => {
  const r = new Rng(7);
  const n = 200000;
  let su = 0, sn = 0, sn2 = 0;
  for (let i = 0; i < n; i++) {
    su += r.uniform();
    const z = r.normal();
    sn += z;
    sn2 += z * z;
  }
  ok(Math.abs(su / n - 0.5) < 0.005, `uniform mean ${su / n}`);
  ok(Math.abs(sn / n) < 0.01, `normal mean ${sn / n}`);
  ok(Math.abs(sn2 / n - 1) < 0.02, `normal variance ${sn2 / n}`);
  for (const lambda of [0.3, 4, 37.5, 1000]) {
    let s = 0, s2 = 0;
    const m = 50000;
    for (let i = 0; i < m; i++) {
      const k = r.poisson(lambda);
      s += k;
      s2 += k * k;
    }
    const mean = s / m, v = s2 / m - mean * mean;
    // 5 standard errors of the mean; variance within 5 %.
    ok(Math.abs(mean - lambda) < 5 * Math.sqrt(lambda / m), `Poisson(${lambda}) mean ${mean}`);
    ok(Math.abs(v / lambda - 1) < 0.05, `Poisson(${lambda}) variance ${v}`);
  }
});

Deno.test("rng: logFactorial agrees with the direct sum", () => {
  for (const k of [0, 1, 5, 200, 255, 256, 1000]) {
    let s = 0;
    for (let i = 2; i <= k; i++) s += Math.log(i);
    ok(Math.abs(logFactorial(k) - s) < 1e-9 * Math.max(1, s), `log(${k}!)`);
  }
});
