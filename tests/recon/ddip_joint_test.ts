import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { defaultContext, type GpuContext } from "../../core/gpu/context.ts";
import { centredGrid, type ImageGrid } from "../../core/geometry/grid.ts";
import { RingScanner } from "../../core/geometry/scanner.ts";
import { ringForwardModel } from "../../core/model/forward_model.ts";
import { PoissonLikelihood } from "../../core/model/likelihood.ts";
import { simulateCounts } from "../../core/model/simulate.ts";
import { subSeed } from "../../core/random.ts";
import {
  type DdipIterationState,
  ddipJoint,
  ddipStack,
  directPlaneScanner,
  sliceSources,
  volumeStackCentres,
} from "../../core/recon/ddip/mod.ts";
import { assertIdentical } from "../model/fixtures.ts";
import { discPhantom, tinyPrior } from "./_ddip.ts";
import { smallScanner } from "../_helpers.ts";

/** Discs whose activity changes from slice to slice (so oblique rays see different slices). */
const phantom = (grid: ImageGrid) => discPhantom(grid, 0.2);

async function study(ctx: GpuContext, scanner: RingScanner, grid: ImageGrid) {
  const truth = phantom(grid);
  const mu = Float32Array.from(truth, (v) => (v > 0 ? 0.0096 : 0));
  const norm = Float32Array.from(
    { length: scanner.bins },
    (_, i) => 0.8 + 0.4 * ((i * 7919) % 97) / 97,
  );
  const model = ringForwardModel(ctx, scanner, { grid, muMap: mu, multiplicative: norm });
  const tx = ctx.array(grid.shape, truth);
  const sim = await simulateCounts(model, tx, { trueCounts: 4e4, randomsFraction: 0.2, seed: 3 });
  tx.destroy();
  model.setAdditive(sim.additive);
  const likelihood = new PoissonLikelihood(model, sim.counts);
  const mr = Float32Array.from(truth, (v) => (v > 0 ? 0.5 + 0.1 * v : 0));
  return { likelihood, mr, model };
}

const CONFIG = {
  steps: 2,
  startT: 40,
  fineTuneIterations: 1,
  emIterations: 2,
  initIterations: 3,
  finalEmIterations: 0, // the chain alone; the levers are tested below and in ddip_residual_test
};

Deno.test("sliceSources: each slice from the stack centred on it, ends from the first/last, gaps averaged", () => {
  assertEquals(volumeStackCentres(5, 1), [1, 2, 3]);
  const s1 = sliceSources(5, [1, 2, 3]);
  assertEquals(s1.map((s) => s.map((x) => [x.stack, x.offset, x.weight])), [
    [[0, 0, 1]],
    [[0, 1, 1]],
    [[1, 1, 1]],
    [[2, 1, 1]],
    [[2, 2, 1]],
  ]);
  // stride 3 on 8 slices: centres 1, 4, 6; slice 2 only in stack 0, slice 5 in stacks 1 and 2
  const c3 = volumeStackCentres(8, 3);
  assertEquals(c3, [1, 4, 6]);
  const s3 = sliceSources(8, c3);
  assertEquals(s3[2], [{ stack: 0, offset: 2, weight: 1 }]);
  assertEquals(s3[5], [{ stack: 1, offset: 2, weight: 0.5 }, { stack: 2, offset: 0, weight: 0.5 }]);
  for (const row of s3) assert(Math.abs(row.reduce((a, x) => a + x.weight, 0) - 1) < 1e-12);
});

Deno.test("ddipJoint on one direct-plane stack equals ddipStack (same seed stream, scale, init)", async () => {
  const ctx = await defaultContext();
  const prior = await tinyPrior();
  const grid = centredGrid([16, 16, 3], [4, 4, 4]);
  const { likelihood, mr, model } = await study(
    ctx,
    directPlaneScanner(smallScanner(), 3, 4),
    grid,
  );
  try {
    const joint = await ddipJoint(prior, { likelihood, grid, mr }, {
      config: CONFIG,
      seed: 11,
      scale: 2.5,
    });
    const stack = await ddipStack(prior, { likelihood, grid, mr }, {
      config: CONFIG,
      seed: subSeed(11, "ddip-stack-1"),
      scale: 2.5,
      init: joint.init,
    });
    assertIdentical(joint.image, stack.image);
    assertEquals(joint.losses, stack.losses);
    assertEquals(joint.logLikelihood, stack.logLikelihood);
    // the same with house's levers: β falling along the chain, a final pull back to the data
    const levers = { ...CONFIG, betaEnd: 0.001, finalEmIterations: 2, finalBeta: 0.02 };
    const j2 = await ddipJoint(prior, { likelihood, grid, mr }, {
      config: levers,
      seed: 11,
      scale: 2.5,
      init: joint.init,
    });
    const s2 = await ddipStack(prior, { likelihood, grid, mr }, {
      config: levers,
      seed: subSeed(11, "ddip-stack-1"),
      scale: 2.5,
      init: joint.init,
    });
    assertIdentical(j2.image, s2.image);
    assert(j2.image.some((v, i) => v !== joint.image[i]));
  } finally {
    likelihood.destroy();
    model.destroy();
  }
});

Deno.test("ddipJoint on 3-ring span-1 data with oblique segments: 3 stacks, one 3-D x-step per iteration, reproducible", async () => {
  const ctx = await defaultContext();
  const prior = await tinyPrior();
  const scanner = new RingScanner({
    name: "3-ring test",
    radiusMm: 60,
    crystalsPerRing: 64,
    rings: 3,
    ringSpacingMm: 8,
    radialBins: 33,
    maxRingDifference: 2,
  });
  assertEquals(scanner.planes.length, 9);
  const grid = centredGrid([16, 16, 5], [4, 4, 4]); // slices at half the ring pitch
  const { likelihood, mr, model } = await study(ctx, scanner, grid);
  try {
    const phases: string[] = [];
    const etas: number[] = [];
    const run = () =>
      ddipJoint(prior, { likelihood, grid, mr }, {
        config: CONFIG,
        seed: 4,
        onPhase: (p) => void phases.push(p),
        callbacks: [{
          onIteration: (s) => void etas.push((s as DdipIterationState).timeLeftMs),
        }],
      });
    const a = await run();
    assertEquals(a.centres, [1, 2, 3]);
    assertEquals(phases, ["mlem", "scale", "steps", "done"]);
    // per step: 1 x-step per fine-tuning iteration (whole volume), eps per stack and iteration + 1
    assertEquals(a.timings.xSteps, CONFIG.steps * CONFIG.fineTuneIterations);
    assertEquals(a.timings.networkCalls, CONFIG.steps * 3 * (CONFIG.fineTuneIterations + 1));
    assertEquals(a.timings.vjpCalls, CONFIG.steps * 3 * CONFIG.fineTuneIterations);
    assertEquals(a.stepMs.length, CONFIG.steps);
    assertEquals(etas[etas.length - 1], 0);
    assert(a.image.every((v) => v >= 0 && v <= a.scale && Number.isFinite(v)));
    // the reported log-likelihood is that of the image under the full 3-D model
    const x = ctx.array(grid.shape, a.image);
    const ll = await likelihood.logLikelihood(x);
    x.destroy();
    assert(
      Math.abs(ll - a.logLikelihood.final) <= 1e-6 * Math.abs(ll),
      `${ll} vs ${a.logLikelihood.final}`,
    );
    const b = await run();
    assertIdentical(b.image, a.image);
    assertEquals(b.losses, a.losses);
  } finally {
    likelihood.destroy();
    model.destroy();
  }
});
