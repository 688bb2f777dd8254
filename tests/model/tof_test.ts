import { deepStrictEqual, ok, throws } from "node:assert/strict";
import { defaultContext, type GpuContext } from "../../core/gpu/context.ts";
import type { RingScanner } from "../../core/geometry/scanner.ts";
import { type TofParameters, tofParameters } from "../../core/geometry/tof.ts";
import {
  histogramListMode,
  type ListModeEvents,
  listModeGeometry,
} from "../../core/io/listmode.ts";
import { type ForwardModel, ringForwardModel } from "../../core/model/forward_model.ts";
import { PoissonLikelihood, poissonLogLikelihood } from "../../core/model/likelihood.ts";
import {
  listModeForwardModel,
  ListModeLikelihood,
  sampleListMode,
  sinogramForwardModel,
  tofRingForwardModel,
} from "../../core/model/tof.ts";
import { mapEm, osem } from "../../core/recon/algorithms.ts";
import { NeighbourhoodPrior } from "../../core/recon/priors.ts";
import { PenalisedEmStep } from "../../core/recon/xstep.ts";
import { maxAbs, maxAbsDiff, randomArray } from "../_helpers.ts";
import { addDisc, smallGrid, smallScanner, testPhantom } from "./fixtures.ts";

// 9 bins of 16 mm cover ±72 mm along every LOR through the 64 mm grid (half diagonal 45 mm +
// 3σ = 25.5 mm), so the TOF bins of a LOR add up to its non-TOF projection.
const TOF = tofParameters({ bins: 9, binWidthMm: 16, fwhmMm: 20 });

interface Problem {
  scanner: RingScanner;
  mu: Float32Array;
  norm: Float32Array;
  truth: Float32Array;
}

function problem(): Problem {
  const scanner = smallScanner();
  const grid = smallGrid();
  const mu = addDisc(new Float32Array(32 * 32), grid, { cx: 0, cy: 0, r: 28, v: 0.0096 });
  const norm = randomArray(scanner.bins, 3).map((v) => 0.8 + 0.4 * v);
  const truth = testPhantom(grid).map((v) => Math.max(0, v));
  return { scanner, mu, norm, truth };
}

/** A TOF (or non-TOF) sinogram model of the problem, and its expected data scaled to `counts`. */
async function expectedData(
  ctx: GpuContext,
  p: Problem,
  tof: TofParameters | undefined,
  counts: number,
): Promise<{ expected: Float32Array; additive: Float32Array }> {
  const opts = { grid: smallGrid(), muMap: p.mu, multiplicative: p.norm };
  const model = tof
    ? tofRingForwardModel(ctx, p.scanner, { ...opts, tof })
    : ringForwardModel(ctx, p.scanner, opts);
  const x = ctx.array([32, 32, 1], p.truth);
  const trues = await model.expectedTrues(x);
  x.destroy();
  model.destroy();
  const total = trues.reduce((a, b) => a + b, 0);
  // 10 % randoms, uniform over bins (and TOF bins).
  const a = 0.1 * counts / trues.length;
  return {
    expected: trues.map((v) => v * counts / total + a),
    additive: new Float32Array(trues.length).fill(a),
  };
}

Deno.test("TOF sinogram model: TOF bins sum to the non-TOF model (expectation and sensitivities)", async () => {
  const ctx = await defaultContext();
  const p = problem();
  const opts = { grid: smallGrid(), muMap: p.mu, multiplicative: p.norm, subsets: 4 };
  const tofModel = tofRingForwardModel(ctx, p.scanner, { ...opts, tof: TOF });
  const model = ringForwardModel(ctx, p.scanner, opts);
  deepStrictEqual(tofModel.dataShape, [31, 32, 1, 9]);
  const x = ctx.array([32, 32, 1], p.truth);
  const t = await tofModel.expectedTrues(x);
  const ref = await model.expectedTrues(x);
  const nb = p.scanner.bins;
  const summed = new Float32Array(nb);
  for (let b = 0; b < 9; b++) for (let i = 0; i < nb; i++) summed[i] += t[i + nb * b];
  ok(maxAbsDiff(summed, ref) <= 1e-5 * maxAbs(ref), `expectation: ${maxAbsDiff(summed, ref)}`);
  for (let k = 0; k < 4; k++) {
    const s1 = await tofModel.sensitivity(k).read();
    const s0 = await model.sensitivity(k).read();
    ok(maxAbsDiff(s1, s0) <= 1e-5 * maxAbs(s0), `subset ${k} sensitivity`);
  }
  x.destroy();
  tofModel.destroy();
  model.destroy();
});

Deno.test("sinogramForwardModel: the TOF model with tof, the non-TOF one without (same expectations)", async () => {
  const ctx = await defaultContext();
  const p = problem();
  const opts = { grid: smallGrid(), muMap: p.mu, multiplicative: p.norm, subsets: 2 };
  const x = ctx.array([32, 32, 1], p.truth);
  for (const tof of [TOF, undefined]) {
    const a = sinogramForwardModel(ctx, p.scanner, { ...opts, tof });
    const b = tof
      ? tofRingForwardModel(ctx, p.scanner, { ...opts, tof })
      : ringForwardModel(ctx, p.scanner, opts);
    deepStrictEqual(a.dataShape, b.dataShape);
    deepStrictEqual(await a.expectedTrues(x), await b.expectedTrues(x));
    a.destroy();
    b.destroy();
  }
  x.destroy();
});

Deno.test("sampled events histogram back to their Poisson counts; the draw is seeded", () => {
  const p = problem();
  const counts = randomArray(p.scanner.bins * 9, 4).map((v) => Math.floor(4 * v * v));
  const ev = sampleListMode(p.scanner, counts, { seed: 5, tof: TOF, counts: true });
  ok(ev.count === counts.reduce((a, b) => a + b, 0));
  const c = ev.crystals!;
  // Both orientations occur (a reversed event has its TOF bin mirrored).
  ok(c.crystal1.some((_, e) => c.crystal1[e] > c.crystal2[e]));
  ok(c.crystal1.some((_, e) => c.crystal1[e] < c.crystal2[e]));
  const h = histogramListMode(p.scanner, ev, { tof: TOF });
  deepStrictEqual(h.data, counts);
  ok(h.dropped === 0);
  // Non-TOF histogram: the TOF bins summed.
  const h0 = histogramListMode(p.scanner, ev);
  const nb = p.scanner.bins;
  ok(
    h0.data.every((v, i) =>
      v === Array.from({ length: 9 }, (_, t) => counts[i + nb * t]).reduce((a, b) => a + b)
    ),
  );
  deepStrictEqual(sampleListMode(p.scanner, counts, { seed: 5, tof: TOF, counts: true }), ev);
  throws(
    () => sampleListMode(p.scanner, counts.subarray(1), { seed: 1, tof: TOF }),
    /expected has/,
  );
  // Delayed coincidences: flagged prompt = 0, a uniform TOF bin; each selection histograms back.
  const delayed = randomArray(p.scanner.bins, 6).map((v) => Math.floor(3 * v));
  const ev2 = sampleListMode(p.scanner, counts, {
    seed: 5,
    tof: TOF,
    counts: true,
    delayeds: delayed,
  });
  deepStrictEqual(histogramListMode(p.scanner, ev2, { tof: TOF }).data, counts);
  deepStrictEqual(histogramListMode(p.scanner, ev2, { select: "delayeds" }).data, delayed);
  ok(ev2.count === ev.count + delayed.reduce((a, b) => a + b, 0));
  ok(ev2.tofBin!.every((t) => t >= 0 && t < 9));
});

Deno.test("continuous TOF positions map to fractional bins, mirrored for reversed events", () => {
  const scanner = smallScanner();
  const [a, b] = scanner.crystalPair(10, 3);
  const ev: ListModeEvents = {
    count: 2,
    crystals: {
      crystal1: Int32Array.of(a, b),
      ring1: Int32Array.of(0, 0),
      crystal2: Int32Array.of(b, a),
      ring2: Int32Array.of(0, 0),
    },
    tofMm: Float32Array.of(13, 13),
  };
  const g = listModeGeometry(scanner, ev, TOF);
  // bin of width 16 mm centred at 13 mm: u = 13/16 + 4; the reversed event sits at −13 mm
  ok(
    Math.abs(g.tofBins![0] - (13 / 16 + 4)) < 1e-6 &&
      Math.abs(g.tofBins![1] - (-13 / 16 + 4)) < 1e-6,
  );
  deepStrictEqual(Array.from(g.reversed), [0, 1]);
  const h = histogramListMode(scanner, ev, { tof: TOF }).data;
  const bin = 10 + 31 * 3;
  ok(h[bin + scanner.bins * 5] === 1 && h[bin + scanner.bins * 3] === 1);
});

/** The list-mode and sinogram likelihoods of one noisy data set (events and their histogram). */
async function pair(ctx: GpuContext, tof: TofParameters | undefined) {
  const p = problem();
  const { expected, additive } = await expectedData(ctx, p, tof, 20000);
  const events: ListModeEvents = sampleListMode(p.scanner, expected, { seed: 9, tof });
  const hist = histogramListMode(p.scanner, events, { tof }).data;
  const opts = { grid: smallGrid(), muMap: p.mu, subsets: 4 };
  const sinoModel: ForwardModel = tof
    ? tofRingForwardModel(ctx, p.scanner, { ...opts, tof, multiplicative: p.norm, additive })
    : ringForwardModel(ctx, p.scanner, { ...opts, multiplicative: p.norm, additive });
  const lmModel = listModeForwardModel(ctx, p.scanner, events, {
    ...opts,
    tof,
    normalisation: p.norm,
    additiveSinogram: additive,
  });
  ok(lmModel.droppedEvents === 0 && lmModel.binCount === events.count);
  return {
    p,
    sino: new PoissonLikelihood(sinoModel, hist),
    lm: new ListModeLikelihood(lmModel),
    hist,
    sinoModel,
  };
}

function relDiff(a: Float32Array, b: Float32Array): number {
  return maxAbsDiff(a, b) / maxAbs(b);
}

for (const tof of [TOF, undefined]) {
  const name = tof ? "TOF" : "non-TOF";
  Deno.test(`${name} list-mode OSEM, MAP-RDP and x-step equal their sinogram versions on the histogrammed events (≤ 1e-4)`, async () => {
    const ctx = await defaultContext();
    const { sino, lm, sinoModel, hist } = await pair(ctx, tof);
    const xs = await osem(sino, { iterations: 3 });
    const xl = await osem(lm, { iterations: 3 });
    const [a, b] = [await xl.read(), await xs.read()];
    ok(relDiff(a, b) <= 1e-4, `OSEM: ${relDiff(a, b)}`);
    ok(maxAbs(b) > 0);
    const prior = new NeighbourhoodPrior(ctx, smallGrid(), "relative-difference", { beta: 0.5 });
    const ms = await mapEm(sino, prior, { iterations: 2 });
    const ml = await mapEm(lm, prior, { iterations: 2 });
    const [c, d] = [await ml.read(), await ms.read()];
    ok(relDiff(c, d) <= 1e-4, `MAP-RDP: ${relDiff(c, d)}`);
    // The DDIP-HQS x-step (penalised EM towards a target z), on both likelihoods.
    const z = ctx.array([32, 32, 1], b.map((v) => 0.9 * v + 0.1));
    const results = [];
    for (const lik of [lm, sino]) {
      const step = new PenalisedEmStep(lik);
      const x = ctx.array([32, 32, 1]);
      ctx.run((rec) => step.record(rec, x, z, { beta: 0.05, iterations: 3 }));
      results.push(await x.read());
      step.destroy();
      x.destroy();
    }
    ok(relDiff(results[0], results[1]) <= 1e-4, `x-step: ${relDiff(results[0], results[1])}`);
    // The list-mode log-likelihood equals the sinogram one on the histogram (Σ_i ybar_i = sᵀx + Σa).
    const exp = await sinoModel.expected(xs);
    const ref = poissonLogLikelihood(hist, exp);
    const llm = await lm.logLikelihood(xs);
    ok(Math.abs(llm - ref) <= 1e-4 * Math.abs(ref), `log-likelihood ${llm} vs ${ref}`);
    for (const v of [xs, xl, ms, ml, z]) v.destroy();
    sino.model.destroy();
    lm.model.destroy();
  });
}

Deno.test("end-point events: subsets by event order with s/K each; one subset equals the crystal-pair model", async () => {
  const ctx = await defaultContext();
  const p = problem();
  const { expected, additive } = await expectedData(ctx, p, TOF, 5000);
  const events = sampleListMode(p.scanner, expected, { seed: 2, tof: TOF });
  const g = listModeGeometry(p.scanner, events, TOF);
  const ends: ListModeEvents = {
    count: events.count,
    endpoints: g.lors.endpoints,
    tofBin: Int32Array.from(g.tofBins!),
  };
  const perEvent = Float32Array.from(
    g.sinogramBins,
    (b, e) => additive[b + p.scanner.bins * g.tofBins![e]],
  );
  const opts = { grid: smallGrid(), muMap: p.mu, tof: TOF };
  const crystal = listModeForwardModel(ctx, p.scanner, events, { ...opts, additive: perEvent });
  const byOrder1 = listModeForwardModel(ctx, p.scanner, ends, { ...opts, additive: perEvent });
  ok(byOrder1.subsetBy === "order" && crystal.subsetBy === "views");
  const a = await (await osem(new ListModeLikelihood(crystal), { iterations: 2 })).read();
  const b = await (await osem(new ListModeLikelihood(byOrder1), { iterations: 2 })).read();
  ok(relDiff(b, a) <= 1e-5, `one subset: ${relDiff(b, a)}`);
  const byOrder = listModeForwardModel(ctx, p.scanner, ends, {
    ...opts,
    additive: perEvent,
    subsets: 4,
  });
  deepStrictEqual(
    byOrder.subsets.map((s) => s.bins.length),
    [0, 1, 2, 3].map((k) => Math.floor((events.count - k + 3) / 4)),
  );
  const total = await byOrder.totalSensitivity().read();
  const s0 = await byOrder.sensitivity(0).read();
  ok(maxAbsDiff(s0.map((v) => 4 * v), total) <= 1e-6 * maxAbs(total));
  const x = await (await osem(new ListModeLikelihood(byOrder), { iterations: 1 })).read();
  ok(x.every(Number.isFinite) && maxAbs(x) > 0);
  throws(
    () => listModeForwardModel(ctx, p.scanner, ends, { ...opts, normalisation: p.norm }),
    /need subsetBy "order" and per-event additive terms/,
  );
  for (const m of [crystal, byOrder1, byOrder]) m.destroy();
});
