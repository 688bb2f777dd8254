import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { defaultContext } from "../../core/gpu/context.ts";
import { josephBackReference, josephForwardReference } from "../../core/projector/reference.ts";
import { ringForwardModel } from "../../core/model/forward_model.ts";
import { PoissonLikelihood } from "../../core/model/likelihood.ts";
import { penalisedSolve, recordXStepUpdate } from "../../core/model/kernels.ts";
import { simulateCounts } from "../../core/model/simulate.ts";
import { mlem } from "../../core/recon/algorithms.ts";
import { PenalisedEmStep } from "../../core/recon/xstep.ts";
import { Rng } from "../../core/random.ts";
import { assert, assertClose, smallGrid, smallScanner, testPhantom } from "../model/fixtures.ts";

/** argmin over x > 0 of −(c log x − s x − (a/2) x² + bz x) by golden-section search (float64). */
function bruteMinimiser(a: number, bz: number, s: number, c: number): number {
  const f = (x: number) => -(c * Math.log(x) - s * x - 0.5 * a * x * x + bz * x);
  let lo = 0;
  let hi = 1;
  while (f(hi * 2) < f(hi) || hi < 1e3) hi *= 2;
  const g = (Math.sqrt(5) - 1) / 2;
  for (let it = 0; it < 400; it++) {
    const m1 = hi - g * (hi - lo);
    const m2 = lo + g * (hi - lo);
    if (f(m1) <= f(m2)) hi = m2;
    else lo = m1;
  }
  return 0.5 * (lo + hi);
}

function cases(): { a: number; z: number; s: number; c: number }[] {
  const rng = new Rng(21);
  const out = [];
  for (let i = 0; i < 200; i++) {
    const s = i % 17 === 0 ? 0 : 0.1 + 50 * rng.uniform();
    const c = i % 13 === 0 ? 0 : 100 * rng.uniform() ** 2;
    const z = 4 * rng.uniform() - 1; // includes negative targets
    const a = 10 ** (-3 + 5 * rng.uniform());
    out.push({ a, z, s, c });
  }
  return out;
}

Deno.test("penalised-EM closed form (TS and WGSL x-step kernel) matches brute-force minimisation of its surrogate", async () => {
  const ctx = await defaultContext();
  const cs = cases();
  // device: x = 1 so that c = x · bp = bp; z as target, β = a
  for (const c0 of cs) {
    const ts = penalisedSolve(c0.a, c0.a * c0.z, c0.s, c0.c);
    if (c0.c === 0) {
      // maximiser of −s x − (a/2)x² + a z x on x ≥ 0: max(z − s/a, 0)
      assertClose(ts, Math.max(c0.z - c0.s / c0.a, 0), 1e-9 + 1e-6 * Math.abs(c0.z), "c = 0");
    } else {
      const ref = bruteMinimiser(c0.a, c0.a * c0.z, c0.s, c0.c);
      assertClose(ts, ref, 1e-6 * Math.max(1, ref), `case ${JSON.stringify(c0)}`);
    }
  }
  // the kernel uses one β per dispatch: group the cases by β
  for (const c0 of cs.slice(0, 40)) {
    const x = ctx.array([1], [1]);
    const bp = ctx.array([1], [c0.c]);
    const s = ctx.array([1], [c0.s]);
    const z = ctx.array([1], [c0.z]);
    ctx.run((rec) => recordXStepUpdate(rec, x, { bp, sens: s, z, beta: c0.a }));
    const got = (await x.read())[0];
    const want = penalisedSolve(c0.a, c0.a * c0.z, c0.s, c0.c);
    assertClose(got, want, 2e-5 * Math.max(1, Math.abs(want)), `kernel ${JSON.stringify(c0)}`);
    for (const arr of [x, bp, s, z]) arr.destroy();
  }
});

Deno.test("x-step: large β returns max(z, 0); small β is one EM step; the HQS objective decreases", async () => {
  const ctx = await defaultContext();
  const grid = smallGrid();
  const model = ringForwardModel(ctx, smallScanner(), { grid, subsets: 2 });
  const t = testPhantom(grid);
  const tx = ctx.array([32, 32, 1], t);
  const sim = await simulateCounts(model, tx, { trueCounts: 1e5, randomsFraction: 0.1, seed: 4 });
  model.setAdditive(sim.additive);
  const lik = new PoissonLikelihood(model, sim.counts);
  const rng = new Rng(8);
  const zHost = Float32Array.from(t, (v) => v * sim.scale * (1 + 0.3 * rng.normal()) - 0.02);
  const z = ctx.array([32, 32, 1], zHost);
  const x = ctx.array([32, 32, 1]);
  const step = new PenalisedEmStep(lik);

  ctx.run((rec) => step.record(rec, x, z, { beta: 1e9, iterations: 3 }));
  const big = await x.read();
  for (let i = 0; i < big.length; i++) {
    assertClose(
      big[i],
      Math.max(zHost[i], 0),
      1e-4 * Math.max(1, Math.abs(zHost[i])),
      `voxel ${i}`,
    );
  }

  ctx.run((rec) => step.record(rec, x, z, { beta: 1e-9, iterations: 1 }));
  const small = await x.read();
  const init = ctx.array([32, 32, 1], zHost.map((v) => Math.max(v, 1e-30)));
  const em = await (await mlem(lik, { iterations: 1, initial: init })).read();
  let maxRel = 0;
  for (let i = 0; i < em.length; i++) {
    if (em[i] > 1e-3) maxRel = Math.max(maxRel, Math.abs(small[i] - em[i]) / em[i]);
  }
  assert(maxRel < 1e-3, `β → 0 x-step differs from an EM step by ${maxRel}`);

  // HQS objective −L(x) + β/2 ‖x − z‖² decreases over x-step iterations
  const sens = await model.totalSensitivity().read();
  const meanS = sens.reduce((a, b) => a + b, 0) / sens.length;
  const meanX = t.reduce((a, b) => a + b, 0) * sim.scale / t.length;
  const beta = 0.5 * meanS / meanX;
  const objective = async (): Promise<number> => {
    const xi = await x.read();
    let q = 0;
    for (let i = 0; i < xi.length; i++) q += (xi[i] - zHost[i]) ** 2;
    return -(await lik.logLikelihood(x)) + 0.5 * beta * q;
  };
  ctx.run((rec) => step.record(rec, x, z, { beta, iterations: 0 }));
  const obj = [await objective()];
  for (let it = 0; it < 5; it++) {
    ctx.run((rec) => step.record(rec, x, z, { beta, iterations: 1, initFromTarget: false }));
    obj.push(await objective());
  }
  for (let i = 1; i < obj.length; i++) {
    assert(obj[i] <= obj[i - 1] + 1e-6 * Math.abs(obj[i]), `objective rose: ${obj.join(", ")}`);
  }
  assert(obj[obj.length - 1] < obj[0], "objective decreased");
  step.destroy();
  for (const a of [tx, z, x, init]) a.destroy();
  lik.destroy();
  model.destroy();
});

Deno.test("x-step with ordered subsets matches a float64 TypeScript reference; with one subset it is the plain x-step", async () => {
  const ctx = await defaultContext();
  const grid = smallGrid();
  const scanner = smallScanner();
  const nsub = 3;
  const model = ringForwardModel(ctx, scanner, { grid, subsets: nsub });
  const t = testPhantom(grid);
  const tx = ctx.array([32, 32, 1], t);
  const sim = await simulateCounts(model, tx, { trueCounts: 1e5, randomsFraction: 0.1, seed: 5 });
  model.setAdditive(sim.additive);
  const lik = new PoissonLikelihood(model, sim.counts);
  const rng = new Rng(9);
  const zHost = Float32Array.from(t, (v) => Math.max(v, 0) * sim.scale * (1 + 0.2 * rng.normal()));
  const z = ctx.array([32, 32, 1], zHost);
  const x = ctx.array([32, 32, 1]);
  const step = new PenalisedEmStep(lik);
  const sens = await model.totalSensitivity().read();
  const meanS = sens.reduce((a, b) => a + b, 0) / sens.length;
  const beta = 0.3 * meanS / (t.reduce((a, b) => a + b, 0) * sim.scale / t.length);
  const iterations = 2;
  ctx.run((rec) => step.record(rec, x, z, { beta, iterations, orderedSubsets: true }));
  const got = await x.read();

  // reference: per subset k, x ← argmax c log x − s_k x − (β/2S) x² + (β/S) z x, c = x · A_kᵀ(y_k / ybar_k)
  let xr = Float64Array.from(zHost, (v) => Math.max(v, 0));
  for (let it = 0; it < iterations; it++) {
    for (let k = 0; k < nsub; k++) {
      const views = scanner.subsetViews(k, nsub);
      const lors = scanner.lors(views);
      const bins = scanner.binIndices(views);
      const proj = josephForwardReference(lors, grid, xr);
      const ratio = new Float64Array(proj.length);
      for (let i = 0; i < proj.length; i++) {
        const yb = proj[i] + sim.additive![bins[i]];
        const y = sim.counts[bins[i]];
        ratio[i] = y > 0 && yb > 0 ? y / yb : 0;
      }
      const bp = josephBackReference(lors, grid, ratio);
      const sk = josephBackReference(lors, grid, new Float64Array(proj.length).fill(1));
      xr = xr.map((v, j) =>
        penalisedSolve(beta / nsub, (beta / nsub) * zHost[j], sk[j], v * bp[j])
      );
    }
  }
  let maxX = 0;
  for (const v of xr) maxX = Math.max(maxX, v);
  for (let j = 0; j < got.length; j++) {
    assert(Math.abs(got[j] - xr[j]) <= 1e-4 * maxX, `voxel ${j}: ${got[j]} vs ${xr[j]}`);
  }

  // one subset: orderedSubsets changes nothing, bit for bit
  const one = ringForwardModel(ctx, scanner, { grid, additive: sim.additive });
  const lik1 = new PoissonLikelihood(one, sim.counts);
  const step1 = new PenalisedEmStep(lik1);
  ctx.run((rec) => step1.record(rec, x, z, { beta, iterations: 2 }));
  const plain = await x.read();
  ctx.run((rec) => step1.record(rec, x, z, { beta, iterations: 2, orderedSubsets: true }));
  assertEquals(await x.read(), plain);
  for (const a of [tx, z, x]) a.destroy();
  step.destroy();
  step1.destroy();
  lik.destroy();
  lik1.destroy();
  model.destroy();
  one.destroy();
});
