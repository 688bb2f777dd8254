import { ok as assert, throws as assertThrows } from "node:assert/strict";
import { defaultContext } from "../../core/gpu/context.ts";
import { centredGrid } from "../../core/geometry/grid.ts";
import { josephBackReference, josephForwardReference } from "../../core/projector/reference.ts";
import { ringForwardModel } from "../../core/model/forward_model.ts";
import { PoissonLikelihood } from "../../core/model/likelihood.ts";
import { simulateCounts } from "../../core/model/simulate.ts";
import { loadPrior } from "../../core/diffusion/load.ts";
import type { ScorePrior } from "../../core/diffusion/prior.ts";
import { PenalisedEmStep } from "../../core/recon/xstep.ts";
import { subSeed } from "../../core/random.ts";
import {
  ddipConfig,
  ddipJoint,
  ddipStack,
  directPlaneScanner,
  disagreementImage,
  disagreementWeight,
  emRatioImage,
  restrictedDataConsistency,
  weightedEm,
} from "../../core/recon/ddip/mod.ts";
import { addDisc, assertIdentical, smallGrid, smallScanner } from "../model/fixtures.ts";
import { smallScanner as ringScanner } from "../_helpers.ts";

/** 32² phantom with an "MR-invisible" hot lesion at (−6, 12) mm, r 5 mm, ×2 (and its mask). */
function lesionProblem(grid = smallGrid()) {
  const withLesion = new Float32Array(grid.shape[0] * grid.shape[1]);
  addDisc(withLesion, grid, { cx: 0, cy: 0, r: 24, v: 1 });
  addDisc(withLesion, grid, { cx: 8, cy: -8, r: 5, v: 1 }); // a hot region the "prior" knows
  const erased = withLesion.slice();
  addDisc(withLesion, grid, { cx: -6, cy: 12, r: 5, v: 1 });
  const m = addDisc(new Float32Array(withLesion.length), grid, { cx: -6, cy: 12, r: 5, v: 1 });
  return { truth: withLesion, erased, mask: Uint8Array.from(m) };
}

function roiMean(x: ArrayLike<number>, mask: Uint8Array): number {
  let s = 0, n = 0;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i]) {
      s += x[i];
      n++;
    }
  }
  return s / n;
}

Deno.test("EM ratio image Aᵀ(m y/ȳ)/Aᵀm matches a float64 TypeScript reference (normalisation, additive)", async () => {
  const ctx = await defaultContext();
  const grid = smallGrid();
  const scanner = smallScanner();
  const norm = Float32Array.from(
    { length: scanner.bins },
    (_, i) => 0.7 + 0.6 * ((i * 7919) % 97) / 97,
  );
  const model = ringForwardModel(ctx, scanner, { grid, multiplicative: norm, subsets: 2 });
  const { truth, erased } = lesionProblem(grid);
  const tx = ctx.array(grid.shape, truth);
  const sim = await simulateCounts(model, tx, { trueCounts: 5e4, randomsFraction: 0.2, seed: 7 });
  tx.destroy();
  model.setAdditive(sim.additive);
  const lik = new PoissonLikelihood(model, sim.counts);
  try {
    const x = Float32Array.from(erased, (v) => v * sim.scale);
    const got = await emRatioImage(lik, x);
    // reference over all views: ȳ = m ⊙ A x + a, r = Aᵀ(m y/ȳ) / Aᵀ m (1 where Aᵀ m = 0)
    const views = scanner.subsetViews(0, 1);
    const lors = scanner.lors(views);
    const bins = scanner.binIndices(views);
    const proj = josephForwardReference(lors, grid, Float64Array.from(x));
    const q = new Float64Array(proj.length);
    const m = new Float64Array(proj.length);
    for (let i = 0; i < proj.length; i++) {
      const b = bins[i];
      const yb = norm[b] * proj[i] + sim.additive![b];
      q[i] = yb > 0 ? norm[b] * sim.counts[b] / yb : 0;
      m[i] = norm[b];
    }
    const bp = josephBackReference(lors, grid, q);
    const sens = josephBackReference(lors, grid, m);
    let seen = 0;
    for (let j = 0; j < got.length; j++) {
      const ref = sens[j] > 0 ? bp[j] / sens[j] : 1;
      assert(
        Math.abs(got[j] - ref) <= 2e-4 * Math.max(1, Math.abs(ref)),
        `voxel ${j}: ${got[j]} vs ${ref}`,
      );
      if (sens[j] > 0) seen++;
    }
    assert(seen > 0.5 * got.length, "most voxels are seen");
    // fwhm 0: the disagreement image is r − 1 exactly
    const d0 = await disagreementImage(lik, grid, x, 0);
    for (let j = 0; j < d0.length; j++) assert(d0[j] === Math.fround(got[j] - 1), `d at ${j}`);
    await emRatioImage(lik, new Float32Array(3)).then(
      () => assert(false, "a wrong-size image is refused"),
      (e) => assert(/voxels/.test(String(e)), String(e)),
    );
  } finally {
    lik.destroy();
    model.destroy();
  }
});

Deno.test("disagreement weight: 0 below τ, linear to 1 at 2τ, both signs; bad τ refused", () => {
  const w = disagreementWeight(Float32Array.of(0, 0.05, -0.05, 0.1, 0.15, -0.15, 0.2, -0.5), 0.1);
  const ref = [0, 0, 0, 0, 0.5, 0.5, 1, 1];
  for (let i = 0; i < ref.length; i++) assert(Math.abs(w[i] - ref[i]) < 1e-6, `w[${i}] = ${w[i]}`);
  assertThrows(() => disagreementWeight(new Float32Array(2), 0), /threshold/);
});

Deno.test("weighted EM: w ≡ 1 is the x-step bit for bit, w ≡ 0 keeps the image; restricted DC recovers an erased lesion and leaves agreeing voxels alone", async () => {
  const ctx = await defaultContext();
  const grid = smallGrid();
  const scanner = smallScanner();
  const model = ringForwardModel(ctx, scanner, { grid });
  const { truth, erased, mask } = lesionProblem(grid);
  const tx = ctx.array(grid.shape, truth);
  const sim = await simulateCounts(model, tx, { trueCounts: 2e5, randomsFraction: 0.1, seed: 3 });
  tx.destroy();
  model.setAdditive(sim.additive);
  const lik = new PoissonLikelihood(model, sim.counts);
  const step = new PenalisedEmStep(lik);
  try {
    const t = Float32Array.from(truth, (v) => v * sim.scale);
    // the "prior's" image: right everywhere except that the lesion is erased
    const prior = Float32Array.from(erased, (v) => v * sim.scale);
    const s = 2 * sim.scale;
    const beta = 1e-4 / (s * s);
    const n = prior.length;
    const z = ctx.array(grid.shape, prior);
    const x = ctx.array(grid.shape);
    ctx.run((rec) => step.record(rec, x, z, { beta, iterations: 4, initFromTarget: true }));
    const xStep = await x.read();
    z.destroy();
    x.destroy();
    const all = await weightedEm(lik, prior, new Float32Array(n).fill(1), { iterations: 4, beta });
    assertIdentical(all, xStep, "w ≡ 1");
    const none = await weightedEm(lik, prior, new Float32Array(n), { iterations: 4, beta });
    assertIdentical(none, prior, "w ≡ 0");

    const dc = await restrictedDataConsistency(lik, grid, prior, {
      iterations: 20,
      beta,
      fwhmMm: 6,
      threshold: 0.05,
    });
    const before = roiMean(prior, mask) / roiMean(t, mask);
    const after = roiMean(dc.image, mask) / roiMean(t, mask);
    // the lesion is flagged (the data want more activity there) and pulled towards its value
    assert(
      roiMean(dc.disagreement, mask) > 0.1,
      `d in the lesion ${roiMean(dc.disagreement, mask)}`,
    );
    assert(roiMean(dc.weight, mask) > 0.9, `w in the lesion ${roiMean(dc.weight, mask)}`);
    assert(after > before + 0.2, `recovery ${before.toFixed(3)} → ${after.toFixed(3)}`);
    // voxels where the data agree are left exactly as they were, and they are most of the image
    let kept = 0;
    for (let j = 0; j < n; j++) {
      if (dc.weight[j] === 0) {
        assert(dc.image[j] === prior[j], `voxel ${j} changed`);
        kept++;
      }
    }
    assert(kept > 0.7 * n, `${kept} of ${n} voxels kept`);
    // the unrestricted iterations recover the lesion too, but add noise everywhere: outside the
    // lesion the restricted result stays closer to the truth
    const full = await weightedEm(lik, prior, new Float32Array(n).fill(1), {
      iterations: 20,
      beta,
    });
    const errOut = (img: Float32Array) => {
      let e = 0;
      for (let j = 0; j < n; j++) if (!mask[j]) e += (img[j] - t[j]) ** 2;
      return e;
    };
    assert(errOut(dc.image) < errOut(full), `outside error ${errOut(dc.image)} vs ${errOut(full)}`);
  } finally {
    step.destroy();
    lik.destroy();
    model.destroy();
  }
});

const DIR = new URL("../fixtures/prior", import.meta.url).pathname;
let shared: Promise<ScorePrior> | null = null;
function tinyPrior(): Promise<ScorePrior> {
  shared ??= loadPrior(DIR, { provider: "wasm", numThreads: 1 });
  return shared;
}

Deno.test("finalEmRegion 'disagreement' in ddipStack and ddipJoint: off is bit-identical, on is the restricted step on the chain's output", async () => {
  const ctx = await defaultContext();
  const prior = await tinyPrior();
  const grid = centredGrid([16, 16, 3], [4, 4, 4]);
  const scanner = directPlaneScanner(ringScanner(), 3, 4);
  const truth = new Float32Array(16 * 16 * 3);
  const plane = addDisc(new Float32Array(256), centredGrid([16, 16, 1], [4, 4, 4]), {
    cx: 0,
    cy: 0,
    r: 24,
    v: 1,
  });
  addDisc(plane, centredGrid([16, 16, 1], [4, 4, 4]), { cx: 8, cy: 4, r: 6, v: 3 });
  for (let k = 0; k < 3; k++) truth.set(plane, k * 256);
  const model = ringForwardModel(ctx, scanner, { grid });
  const tx = ctx.array(grid.shape, truth);
  const sim = await simulateCounts(model, tx, { trueCounts: 3e4, randomsFraction: 0.2, seed: 5 });
  tx.destroy();
  model.setAdditive(sim.additive);
  const likelihood = new PoissonLikelihood(model, sim.counts);
  const mr = Float32Array.from(truth, (v) => (v > 0 ? 0.5 : 0));
  const p = { likelihood, grid, mr };
  try {
    const cfg = { startT: 40, steps: 2, fineTuneIterations: 1, emIterations: 2, initIterations: 3 };
    assert(ddipConfig().finalEmRegion === "all", "default region");
    const plain = await ddipStack(prior, p, { config: cfg, seed: 3 });
    // the region alone (no final iterations) and a threshold nothing reaches change nothing
    const off = await ddipStack(prior, p, {
      config: { ...cfg, finalEmRegion: "disagreement" },
      seed: 3,
    });
    assertIdentical(off.image, plain.image, "no final iterations");
    assert(off.disagreement === undefined);
    const high = await ddipStack(prior, p, {
      config: {
        ...cfg,
        finalEmIterations: 3,
        finalEmRegion: "disagreement",
        disagreementThreshold: 1e9,
      },
      seed: 3,
    });
    assertIdentical(high.image, plain.image, "threshold above every disagreement");
    const lever = {
      ...cfg,
      finalEmIterations: 3,
      finalBeta: 1e-4,
      finalEmRegion: "disagreement" as const,
      disagreementFwhmMm: 8,
      disagreementThreshold: 0.02,
    };
    const on = await ddipStack(prior, p, { config: lever, seed: 3 });
    const ref = await restrictedDataConsistency(likelihood, grid, plain.image, {
      iterations: 3,
      beta: 1e-4 / (plain.scale * plain.scale),
      fwhmMm: 8,
      threshold: 0.02,
    });
    assertIdentical(on.image, ref.image, "the restricted step on the chain's output");
    assertIdentical(on.disagreement!, ref.disagreement);
    assert(ref.weight.some((w) => w > 0) && on.image.some((v, i) => v !== plain.image[i]));
    assert(on.timings.xSteps === plain.timings.xSteps + 1);
    // ddipJoint on one direct-plane stack is ddipStack, with the lever too
    const joint = await ddipJoint(prior, p, { config: lever, seed: 11, scale: on.scale });
    const stack = await ddipStack(prior, p, {
      config: lever,
      seed: subSeed(11, "ddip-stack-1"),
      scale: on.scale,
      init: joint.init,
    });
    assertIdentical(joint.image, stack.image, "joint = stack");
    assertIdentical(joint.disagreement!, stack.disagreement!);
    assertThrows(() => ddipConfig({ finalEmRegion: "lesions" as "all" }), /finalEmRegion/);
    assertThrows(() => ddipConfig({ disagreementThreshold: 0 }), /disagreementThreshold/);
  } finally {
    likelihood.destroy();
    model.destroy();
  }
});
