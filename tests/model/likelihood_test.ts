import {
  assert,
  assertClose as assertAlmostEquals,
  assertIdentical as assertEquals,
} from "./fixtures.ts";
import { defaultContext } from "../../core/gpu/context.ts";
import { josephBackReference, josephForwardReference } from "../../core/projector/reference.ts";
import { ringForwardModel } from "../../core/model/forward_model.ts";
import { PoissonLikelihood, poissonLogLikelihood } from "../../core/model/likelihood.ts";
import { simulateCounts } from "../../core/model/simulate.ts";
import { Rng } from "../../core/random.ts";
import { addDisc, smallGrid, smallScanner, testPhantom } from "./fixtures.ts";

function rel(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-30);
}

/** Host float64 forward model m ⊙ P x + a with m = norm · exp(−P μ). */
function hostExpected(
  x: ArrayLike<number>,
  parts: { mu: Float32Array; norm: Float32Array; add: Float32Array },
): Float64Array {
  const scanner = smallScanner();
  const grid = smallGrid();
  const lors = scanner.lors();
  const px = josephForwardReference(lors, grid, x);
  const pmu = josephForwardReference(lors, grid, parts.mu);
  return px.map((v, i) => parts.norm[i] * Math.exp(-pmu[i]) * v + parts.add[i]);
}

function problem(): { mu: Float32Array; norm: Float32Array; add: Float32Array; x: Float32Array } {
  const scanner = smallScanner();
  const grid = smallGrid();
  const rng = new Rng(7);
  const mu = addDisc(new Float32Array(32 * 32), grid, { cx: 0, cy: 0, r: 26, v: 0.0096 });
  const norm = Float32Array.from({ length: scanner.bins }, () => 0.8 + 0.4 * rng.uniform());
  const add = Float32Array.from({ length: scanner.bins }, () => 0.5 + 0.1 * rng.uniform());
  const x = testPhantom(grid).map((v) => v + 0.05);
  return { mu, norm, add, x };
}

Deno.test("forward model (attenuation, normalisation, additive, 4 subsets) matches the float64 reference", async () => {
  const ctx = await defaultContext();
  const p = problem();
  const model = ringForwardModel(ctx, smallScanner(), {
    grid: smallGrid(),
    subsets: 4,
    muMap: p.mu,
    multiplicative: p.norm,
    additive: p.add,
  });
  const x = ctx.array([32, 32, 1], p.x);
  const dev = await model.expected(x);
  const ref = hostExpected(p.x, p);
  let maxRel = 0;
  for (let i = 0; i < ref.length; i++) maxRel = Math.max(maxRel, rel(dev[i], ref[i]));
  assert(maxRel < 2e-5, `max relative error ${maxRel}`);
  x.destroy();
  model.destroy();
});

Deno.test("sensitivities: subsets sum to the full-data sensitivity Pᵀ m (float64 reference)", async () => {
  const ctx = await defaultContext();
  const p = problem();
  const model = ringForwardModel(ctx, smallScanner(), {
    grid: smallGrid(),
    subsets: 4,
    muMap: p.mu,
    multiplicative: p.norm,
  });
  const lors = smallScanner().lors();
  const pmu = josephForwardReference(lors, smallGrid(), p.mu);
  const m = Array.from(pmu, (v, i) => p.norm[i] * Math.exp(-v));
  const ref = josephBackReference(lors, smallGrid(), m);
  const total = await model.totalSensitivity().read();
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(total[i] - ref[i]));
    maxRef = Math.max(maxRef, ref[i]);
  }
  assert(maxErr / maxRef < 2e-5, `sensitivity error ${maxErr / maxRef}`);
  // split/merge round trip keeps every bin where it was
  const full = Float32Array.from({ length: model.binCount }, (_, i) => i);
  const parts = await Promise.all(model.split(full).map((a) => a.read()));
  assertEquals(model.merge(parts), full);
  model.destroy();
});

Deno.test("log-likelihood matches the float64 reference and its gradient matches finite differences", async () => {
  const ctx = await defaultContext();
  const p = problem();
  const scanner = smallScanner();
  const model = ringForwardModel(ctx, scanner, {
    grid: smallGrid(),
    subsets: 2,
    muMap: p.mu,
    multiplicative: p.norm,
    additive: p.add,
  });
  const ybar = hostExpected(p.x, p);
  const rng = new Rng(3);
  const y = Float32Array.from(ybar, (v) => rng.poisson(v * 1.3));
  const lik = new PoissonLikelihood(model, y);
  const x = ctx.array([32, 32, 1], p.x);
  const L = await lik.logLikelihood(x);
  const Lref = poissonLogLikelihood(y, ybar);
  assert(rel(L, Lref) < 1e-6, `L ${L} vs reference ${Lref}`);

  const g = await lik.gradient(x);
  // central differences of the float64 reference likelihood (it is linear-in-x inside log, so
  // a relative step of 1e-3 is plenty accurate)
  for (const j of [16 + 32 * 16, 10 + 32 * 20, 24 + 32 * 9, 3 + 32 * 16]) {
    const h = 1e-3;
    const xp = Float64Array.from(p.x);
    const xm = Float64Array.from(p.x);
    xp[j] += h;
    xm[j] -= h;
    const fd = (poissonLogLikelihood(y, hostExpected(xp, p)) -
      poissonLogLikelihood(y, hostExpected(xm, p))) / (2 * h);
    assertAlmostEquals(g[j], fd, 2e-3 * Math.max(1, Math.abs(fd)), `voxel ${j}: ${g[j]} vs ${fd}`);
  }
  lik.destroy();
  x.destroy();
  model.destroy();
});

Deno.test("simulateCounts: scaled to the requested trues, randoms fraction, reproducible by seed", async () => {
  const ctx = await defaultContext();
  const grid = smallGrid();
  const model = ringForwardModel(ctx, smallScanner(), { grid, subsets: 2 });
  const truth = ctx.array([32, 32, 1], testPhantom(grid));
  const a = await simulateCounts(model, truth, { trueCounts: 1e5, randomsFraction: 0.2, seed: 11 });
  const b = await simulateCounts(model, truth, { trueCounts: 1e5, randomsFraction: 0.2, seed: 11 });
  const c = await simulateCounts(model, truth, { trueCounts: 1e5, randomsFraction: 0.2, seed: 12 });
  assertEquals(a.counts, b.counts);
  assert(a.counts.some((v, i) => v !== c.counts[i]), "different seeds give different counts");
  let exp = 0;
  let add = 0;
  let cnt = 0;
  for (let i = 0; i < a.expected.length; i++) {
    exp += a.expected[i];
    add += a.additive[i];
    cnt += a.counts[i];
  }
  assertAlmostEquals(exp - add, 1e5, 1); // trues
  assertAlmostEquals(add / exp, 0.2, 1e-6); // randoms fraction of prompts
  assert(Math.abs(cnt - exp) < 5 * Math.sqrt(exp), `Poisson total ${cnt} vs mean ${exp}`);
  assert(a.counts.every((v) => Number.isInteger(v) && v >= 0));
  truth.destroy();
  model.destroy();
});
