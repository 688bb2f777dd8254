// The lesion-evidence diagnostic's statistic against finite differences of the Poisson
// log-likelihood, and its order statistics.
import { assert, assertEquals } from "../runtime/_assert.ts";
import { scoreStatistic, summarise } from "../../experiments/tracer_transfer/lesion_evidence.ts";
import { Rng } from "../../core/random.ts";

/** Poisson log-likelihood up to its constant, float64. */
function logLik(y: ArrayLike<number>, ybar: ArrayLike<number>): number {
  let l = 0;
  for (let i = 0; i < y.length; i++) l += y[i] * Math.log(ybar[i]) - ybar[i];
  return l;
}

Deno.test("scoreStatistic: U = dL/da and I = E[−d²L/da²] by finite differences; z ≈ N(0, 1) at the truth", () => {
  const rng = new Rng(11);
  const n = 400;
  const ybar = Float64Array.from({ length: n }, () => 5 + 20 * rng.uniform());
  const p = Float64Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 2 * rng.uniform() : 0));
  const y = Float64Array.from(ybar, (m) => rng.poisson(m));
  const { u, fisher, z } = scoreStatistic(p, y, ybar);
  const h = 1e-4;
  const at = (a: number) => logLik(y, Float64Array.from(ybar, (m, i) => m + a * p[i]));
  const du = (at(h) - at(-h)) / (2 * h);
  assert(Math.abs(u - du) < 1e-5 * Math.max(1, Math.abs(du)), `U ${u} vs finite difference ${du}`);
  // at y = ybar the observed information equals the expected one
  const atMean = (a: number) => logLik(ybar, Float64Array.from(ybar, (m, i) => m + a * p[i]));
  const d2 = -(atMean(h) - 2 * atMean(0) + atMean(-h)) / (h * h);
  assert(Math.abs(fisher - d2) < 1e-3 * fisher, `I ${fisher} vs −d²L/da² ${d2}`);
  assertEquals(z, u / Math.sqrt(fisher));
  // over noise realisations at the true expectation z has mean ≈ 0 and sd ≈ 1
  const zs: number[] = [];
  for (let r = 0; r < 400; r++) {
    const yr = Float64Array.from(ybar, (m) => rng.poisson(m));
    zs.push(scoreStatistic(p, yr, ybar).z);
  }
  const mean = zs.reduce((a, b) => a + b, 0) / zs.length;
  const sd = Math.sqrt(zs.reduce((a, b) => a + (b - mean) ** 2, 0) / (zs.length - 1));
  assert(Math.abs(mean) < 0.15 && Math.abs(sd - 1) < 0.1, `z mean ${mean}, sd ${sd}`);
  // a deficit of the image along the template: z ≈ its noise-free value a·√I
  const a = 0.5;
  const yDef = Float64Array.from(ybar, (m, i) => m + a * p[i]);
  const zDef = scoreStatistic(p, yDef, ybar).z;
  assert(Math.abs(zDef - a * Math.sqrt(fisher)) < 1e-9 * zDef, `${zDef}`);
  // bins without expected counts are skipped
  assertEquals(scoreStatistic([1, 1], [3, 9], [0, 9]).z, 0);
});

Deno.test("summarise: median, 90th percentile, maximum, rank", () => {
  const zs = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  assertEquals(summarise(zs, 7.5), { median: 5, p90: 9, max: 9, rank: 0.8 });
  assertEquals(summarise([3, -1, 2], -2).rank, 0);
});
