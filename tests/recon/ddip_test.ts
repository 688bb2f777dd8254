import { ok as assert, throws as assertThrows } from "node:assert/strict";
import { defaultContext, type GpuContext } from "../../core/gpu/context.ts";
import { centredGrid, type ImageGrid } from "../../core/geometry/grid.ts";
import { ringForwardModel } from "../../core/model/forward_model.ts";
import { PoissonLikelihood } from "../../core/model/likelihood.ts";
import { simulateCounts } from "../../core/model/simulate.ts";
import { tweedie, tweedieLossGrad } from "../../core/diffusion/sampler.ts";
import { Rng, subSeed } from "../../core/random.ts";
import {
  combineStacks,
  DDIP_CPU_PRESET,
  DDIP_PAPER,
  ddipConfig,
  DdipOverridesSchema,
  ddipStack,
  type DdipStackProblem,
  ddipVolume,
  directPlaneScanner,
  type DirectPlaneVolume,
  hqsBeta,
  nllLossGradEps,
  volumeStackCentres,
} from "../../core/recon/ddip/mod.ts";
import { percentile } from "../../core/stats.ts";
import { assertIdentical } from "../model/fixtures.ts";
import { discPhantom, tinyPrior } from "./_ddip.ts";
import { smallScanner } from "../_helpers.ts";

/** 16×16×3 stack of 4 mm voxels: the tiny model's VJP graph is fixed at 1×3×16×16. */
const GRID: ImageGrid = centredGrid([16, 16, 3], [4, 4, 4]);

const phantom = (grid: ImageGrid) => discPhantom(grid, 0.1);

async function problem(ctx: GpuContext): Promise<DdipStackProblem & { truth: Float32Array }> {
  const scanner = directPlaneScanner(smallScanner(), 3, 4);
  const truth = phantom(GRID);
  const mu = Float32Array.from(truth, (v) => (v > 0 ? 0.0096 : 0));
  const model = ringForwardModel(ctx, scanner, { grid: GRID, muMap: mu });
  const tx = ctx.array(GRID.shape, truth);
  const sim = await simulateCounts(model, tx, { trueCounts: 3e4, randomsFraction: 0.2, seed: 5 });
  tx.destroy();
  model.setAdditive(sim.additive);
  const likelihood = new PoissonLikelihood(model, sim.counts);
  let max = 0;
  for (const v of truth) max = Math.max(max, v);
  const mr = Float32Array.from(truth, (v) => (v > 0 ? 0.5 + 0.5 * (v / max) : 0));
  return { likelihood, grid: GRID, mr, truth };
}

// the chain alone (finalEmIterations 0): the default final step is tested on its own below
const FAST = {
  startT: 40,
  steps: 4,
  fineTuneIterations: 2,
  emIterations: 3,
  initIterations: 3,
  finalEmIterations: 0,
};

Deno.test("DDIP config: tuned defaults, the paper preset, lr scaled to the AdamW steps, layers, readable errors", () => {
  // the library default: the validated 25-step chain, lr "auto" = 0.1 / 50 AdamW steps
  const c = ddipConfig();
  assert(c.startT === 200 && c.steps === 25 && c.fineTuneIterations === 2 && c.lr === 2e-3);
  assert(c.emIterations === 5 && c.beta === 0.01 && c.eta === 0.85);
  // the data-disagreement lever after the chain (issue 15); the paper runs the chain alone
  assert(c.finalEmIterations === 20 && c.finalBeta === 1e-4 && c.finalEmRegion === "disagreement");
  assert(c.disagreementFwhmMm === 8 && c.disagreementThreshold === 3);
  assert(c.xStepOrderedSubsets === false);
  assert(c.initIterations === 20 && c.clipNorm === 1 && c.fineTuneEvery === 1);
  assert(c.scaleHeadroom === 1.8 && c.scalePercentile === 99.5 && c.betaEnd === undefined);
  // the CPU preset spells out the same chain
  assert(JSON.stringify(ddipConfig(DDIP_CPU_PRESET)) === JSON.stringify(c));
  // the paper's constants: 200 steps at lr 5e-4, otherwise the same
  const paper = ddipConfig(DDIP_PAPER);
  assert(paper.steps === 200 && paper.lr === 5e-4);
  assert(
    JSON.stringify({ ...c, steps: 200, lr: 5e-4, finalEmIterations: 0 }) === JSON.stringify(paper),
  );
  // lr "auto": lrBudget / (ceil(steps / fineTuneEvery) × fineTuneIterations)
  assert(ddipConfig({ steps: 100 }).lr === 0.1 / 200);
  assert(ddipConfig({ steps: 100, fineTuneEvery: 3, fineTuneIterations: 1 }).lr === 0.1 / 34);
  assert(ddipConfig({ steps: 10, lrBudget: 0.05 }).lr === 0.05 / 20);
  // later layers win, undefined values are skipped
  const layered = ddipConfig(DDIP_PAPER, { steps: 50, lr: undefined });
  assert(layered.steps === 50 && layered.lr === 5e-4);
  // β schedule: geometric from beta to betaEnd
  const b = ddipConfig({ beta: 0.01, betaEnd: 1e-4 });
  assert(hqsBeta(b, 0, 25) === 0.01 && Math.abs(hqsBeta(b, 24, 25) - 1e-4) < 1e-15);
  assert(Math.abs(hqsBeta(b, 12, 25) - 1e-3) < 1e-15 && hqsBeta(c, 7, 25) === 0.01);
  // the overrides schema is what recipes reuse
  const recipe = DdipOverridesSchema.pick({ steps: true, lr: true });
  assert(JSON.stringify(recipe.parse({ steps: 5 })) === '{"steps":5}');
  assertThrows(() => recipe.parse({ steps: 0 }));
  assertThrows(() => ddipConfig({ steps: 300 }), /steps must be ≤ startT/);
  assertThrows(() => ddipConfig({ beta: -1 }), /invalid DDIP configuration: beta/);
  assertThrows(() => ddipConfig({ eta: 1.5 }), /eta/);
  // deno-lint-ignore no-explicit-any
  assertThrows(() => ddipConfig({ betta: 0.1 } as any), /betta|unrecognized/i);
  assert(percentile([3, 1, 2, 4], 50) === 2.5 && percentile([5], 99) === 5);
});

Deno.test("∂loss/∂ε of the image-domain loss equals a finite difference in ε and, through the VJP, in θ", async () => {
  const prior = await tinyPrior();
  const rng = new Rng(3);
  const n = 16 * 16 * 3;
  const xt = rng.normals(n);
  const mr = Float32Array.from(rng.normals(n), (v) => Math.abs(v) * 0.3);
  const target = Float32Array.from(rng.normals(n), (v) => 0.5 + 0.1 * v);
  const t = 57;
  const ab = prior.schedule.alphaBar(t);
  // the formula in ε: loss(ε) = mean‖(x_t − √(1−ᾱ)ε)/√ᾱ − target‖²
  const params = prior.createParams();
  const eps = await prior.eps(xt, t, mr, params);
  const x0 = tweedie(xt, eps, ab);
  const { loss, gradEps } = tweedieLossGrad(x0, target, ab);
  const lossOf = (e: Float64Array | Float32Array) => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      const d = (xt[i] - Math.sqrt(1 - ab) * e[i]) / Math.sqrt(ab) - target[i];
      s += d * d;
    }
    return s / n;
  };
  assert(Math.abs(lossOf(eps) - loss) < 1e-6 * Math.max(1, loss));
  for (const i of [0, 100, 700]) {
    const h = 1e-3;
    const ep = Float64Array.from(eps);
    const em = Float64Array.from(eps);
    ep[i] += h;
    em[i] -= h;
    const fd = (lossOf(ep) - lossOf(em)) / (2 * h);
    const rel = Math.abs(fd - gradEps[i]) / Math.max(Math.abs(fd), 1e-12);
    assert(rel < 1e-4, `voxel ${i}: FD ${fd} vs formula ${gradEps[i]}`);
  }
  // end to end: ⟨∇θ loss, d⟩ from the VJP vs a central difference of loss(θ ± h d)
  const base = prior.createParams();
  const dir = new Map<string, Float32Array>();
  for (const [name, v] of base.entries()) dir.set(name, rng.normals(v.length));
  // move off the zero-up point so that every factor has a gradient
  const p0 = base.plus(dir, 0.05);
  const e0 = await prior.eps(xt, t, mr, p0);
  const g0 = tweedieLossGrad(tweedie(xt, e0, ab), target, ab);
  const { grads } = await prior.vjp(xt, t, mr, p0, g0.gradEps);
  let analytic = 0;
  for (const [name, g] of grads) {
    const d = dir.get(name)!;
    for (let i = 0; i < g.length; i++) analytic += g[i] * d[i];
  }
  const h = 1e-3;
  const lossAt = async (p: typeof p0) => {
    const e = await prior.eps(xt, t, mr, p);
    return tweedieLossGrad(tweedie(xt, e, ab), target, ab).loss;
  };
  const fd = (await lossAt(p0.plus(dir, h)) - await lossAt(p0.plus(dir, -h))) / (2 * h);
  const rel = Math.abs(fd - analytic) / Math.max(Math.abs(fd), 1e-9);
  assert(rel < 2e-2, `directional derivative: FD ${fd} vs VJP ${analytic} (rel ${rel})`);
});

Deno.test("measurement-domain (NLL) gradient matches a finite difference of −L(s·x̂0)/ΣY", async () => {
  const ctx = await defaultContext();
  const p = await problem(ctx);
  const s = 2;
  const n = p.truth.length;
  const x0 = Float32Array.from(p.truth, (v) => 0.2 + 0.3 * v);
  const xa = Float32Array.from(x0, (v) => v * s);
  const xg = ctx.array(GRID.shape, xa);
  const bpArr = ctx.array(GRID.shape);
  ctx.run((rec) => p.likelihood.recordFullEmBackprojection(rec, xg, bpArr));
  const bp = await bpArr.read();
  const sens = await p.likelihood.model.totalSensitivity().read();
  const ab = 0.9;
  const g = nllLossGradEps(bp, sens, {
    scale: s,
    totalCounts: p.likelihood.totalCounts,
    alphaBar: ab,
  });
  const c = -Math.sqrt(1 - ab) / Math.sqrt(ab);
  for (const i of [8 * 16 + 8, 16 * 16 + 5 * 16 + 7, 2 * 256 + 130]) {
    const h = 0.05;
    const f = async (dx: number) => {
      const v = Float32Array.from(xa);
      v[i] += s * dx;
      xg.write(v);
      return -(await p.likelihood.logLikelihood(xg)) / p.likelihood.totalCounts;
    };
    const fd = ((await f(h)) - (await f(-h))) / (2 * h) * c;
    const rel = Math.abs(fd - g[i]) / Math.max(Math.abs(fd), 1e-12);
    assert(rel < 2e-2, `voxel ${i}: FD ${fd} vs formula ${g[i]}`);
  }
  assert(g.length === n);
  for (const a of [xg, bpArr]) a.destroy();
  p.likelihood.destroy();
  p.likelihood.model.destroy();
});

Deno.test("DDIP-HQS, DDS and DDIP-NLL on a tiny stack: finite, data fit above the initialisation, bit-identical reruns", async () => {
  const ctx = await defaultContext();
  const prior = await tinyPrior();
  const p = await problem(ctx);
  try {
    const steps: number[] = [];
    // The tiny model has random weights: a crude start (1 MLEM iteration) and an aggressive
    // learning rate make the pull of the fine-tuning towards the x-step visible in 4 steps.
    const cfg = { ...FAST, initIterations: 1, lr: 2e-2, fineTuneIterations: 4, seed: 11 };
    const hqs = await ddipStack(prior, p, {
      config: cfg,
      callbacks: [{
        needsLogLikelihood: true,
        onIteration(s) {
          steps.push(s.iteration);
          assert(Number.isFinite(s.logLikelihood!));
        },
      }],
    });
    assert(steps.join() === "1,2,3,4", `progress calls ${steps}`);
    assert(hqs.image.every(Number.isFinite) && hqs.image.some((v) => v > 0));
    assert(hqs.scaleSource === "auto" && hqs.scale > 0);
    assert(hqs.losses.length === 16 && hqs.losses.every(Number.isFinite));
    assert(hqs.timings.networkCalls === 4 * 5 && hqs.timings.vjpCalls === 16);
    assert(hqs.timings.xSteps === 16);
    assert(
      hqs.logLikelihood.final > hqs.logLikelihood.init,
      `L final ${hqs.logLikelihood.final} vs init ${hqs.logLikelihood.init}`,
    );
    const again = await ddipStack(prior, p, { config: cfg });
    assertIdentical(again.image, hqs.image, "rerun");
    const other = await ddipStack(prior, p, { config: { ...cfg, seed: 12 } });
    assert(other.image.some((v, i) => v !== hqs.image[i]), "another seed gives another chain");

    const dds = await ddipStack(prior, p, { config: FAST, method: "dds" });
    assert(dds.image.every(Number.isFinite) && dds.losses.length === 0);
    assert(dds.timings.vjpCalls === 0 && dds.timings.xSteps === 4);
    assert(dds.logLikelihood.final > dds.logLikelihood.init);

    const nll = await ddipStack(prior, p, {
      config: { ...FAST, fineTuneEvery: 2 },
      method: "ddip-nll",
      useMr: false,
    });
    // fine-tuning on steps 1 and 3 of 4 only: 2 × 2 VJPs
    assert(nll.image.every(Number.isFinite) && nll.timings.vjpCalls === 4);
    assert(nll.timings.xSteps === 0 && !nll.useMr);

    await assertRejects(
      () => ddipStack(prior, { ...p, mr: new Float32Array(10) }, { config: FAST }),
      /mr has 10 values/,
    );
  } finally {
    p.likelihood.destroy();
    p.likelihood.model.destroy();
  }
});

async function assertRejects(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  let err: unknown = null;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert(err instanceof Error && re.test(err.message), `expected rejection ${re}, got ${err}`);
}

Deno.test("DDIP levers and uncertainty: final data-consistency EM raises L, samples give the mean and std of the seeded chains", async () => {
  const ctx = await defaultContext();
  const prior = await tinyPrior();
  const p = await problem(ctx);
  try {
    const cfg = { ...FAST, steps: 2, fineTuneIterations: 1, seed: 4 };
    const plain = await ddipStack(prior, p, { config: cfg });
    // penalised EM started at the chain's output never lowers L(x) − (β/2)‖x − z‖², which is L(z)
    // at the start, so the final image's likelihood is at least the plain chain's
    const dc = await ddipStack(prior, p, {
      config: { ...cfg, finalEmIterations: 3, finalBeta: 1e-4, finalEmRegion: "all" },
    });
    assert(dc.logLikelihood.final > plain.logLikelihood.final, "final EM raises L");
    assert(dc.timings.xSteps === plain.timings.xSteps + 1);
    const late = await ddipStack(prior, p, { config: { ...cfg, betaEnd: 1e-4 } });
    assert(late.image.some((v, i) => v !== plain.image[i]), "a β schedule changes the chain");

    // 3 chains: chain 0 is the plain run, chain k the run seeded subSeed(4, "sample-k") from the
    // same initialisation and scale; mean and std (N − 1) recomputed here in float64
    const ens = await ddipStack(prior, p, { config: cfg, samples: 3 });
    const runs = [plain.image];
    for (const k of [1, 2]) {
      const r = await ddipStack(prior, p, {
        config: cfg,
        seed: subSeed(4, `sample-${k}`),
        init: plain.init,
        scale: plain.scale,
      });
      runs.push(r.image);
    }
    assert(ens.samples === 3 && ens.std !== undefined && ens.std.length === plain.image.length);
    let spread = 0;
    for (let v = 0; v < plain.image.length; v++) {
      const m = (runs[0][v] + runs[1][v] + runs[2][v]) / 3;
      const sd = Math.sqrt(runs.reduce((a, r) => a + (r[v] - m) ** 2, 0) / 2);
      assert(Math.abs(ens.image[v] - m) <= 1e-6 * Math.max(1, m), `mean at ${v}`);
      assert(Math.abs(ens.std[v] - sd) <= 1e-6 * Math.max(1, sd), `std at ${v}`);
      spread += sd;
    }
    assert(spread > 0, "different seeds spread");
    // each chain's image comes back, chain 0 bit-identical to the single-seed run
    assert(ens.sampleImages?.length === 3 && plain.sampleImages === undefined);
    ens.sampleImages.forEach((im, k) => assertIdentical(im, runs[k], `chain ${k}`));
    assert(ens.timings.steps === 3 * plain.timings.steps);
    await assertRejects(() => ddipStack(prior, p, { config: cfg, samples: 0 }), /samples/);
  } finally {
    p.likelihood.destroy();
    p.likelihood.model.destroy();
  }
});

Deno.test("DDIP volume: overlapping stacks cover every slice, volume scale, reproducible", async () => {
  assert(volumeStackCentres(5).join() === "1,2,3");
  assert(volumeStackCentres(7, 3).join() === "1,4,5");
  const ctx = await defaultContext();
  const prior = await tinyPrior();
  const nz = 5;
  const grid = centredGrid([16, 16, nz], [4, 4, 4]);
  const scanner = directPlaneScanner(smallScanner(), nz, 4);
  const truth = phantom(grid);
  const model = ringForwardModel(ctx, scanner, { grid });
  const tx = ctx.array(grid.shape, truth);
  const sim = await simulateCounts(model, tx, { trueCounts: 5e4, randomsFraction: 0.1, seed: 2 });
  tx.destroy();
  model.destroy();
  const vol: DirectPlaneVolume = {
    grid,
    scanner,
    counts: sim.counts,
    additive: sim.additive,
    mr: Float32Array.from(truth, (v) => v / 3.4),
  };
  const cfg = { ...FAST, steps: 2, fineTuneIterations: 1 };
  const a = await ddipVolume(ctx, prior, vol, { config: cfg, stackStride: 3 });
  assert(a.centres.join() === "1,3" && a.image.length === truth.length);
  assert(a.image.every(Number.isFinite) && a.scale > 0);
  for (let k = 0; k < nz; k++) {
    let s = 0;
    for (let t = k * 256; t < (k + 1) * 256; t++) s += a.image[t];
    assert(s > 0, `slice ${k} is empty`);
  }
  const b = await ddipVolume(ctx, prior, vol, { config: cfg, stackStride: 3 });
  assertIdentical(a.image, b.image, "volume rerun");
  // two stacks at a time: each stack bit-identical, so the volume too (3 stacks: the queue runs dry)
  const one = await ddipVolume(ctx, prior, vol, { config: cfg, stackStride: 1 });
  const order: number[] = [];
  const two = await ddipVolume(ctx, prior, vol, {
    config: cfg,
    stackStride: 1,
    concurrency: 2,
    onStack: ({ centre }) => void order.push(centre),
  });
  assertIdentical(one.image, two.image, "concurrency 2 vs 1");
  assertIdentical(one.init, two.init, "concurrency 2 vs 1 (init)");
  assert(order.sort().join() === "1,2,3" && two.timings.steps === one.timings.steps);
  assert(two.timings.networkCalls === one.timings.networkCalls, "per-chain network tally");
  await assertRejects(
    () => ddipVolume(ctx, prior, vol, { config: cfg, concurrency: 3 }),
    /concurrency must be 1 or 2/,
  );
  await assertRejects(
    () => ddipVolume(ctx, prior, vol, { config: cfg, concurrency: 2, loraScope: "volume" }),
    /needs loraScope "stack"/,
  );
  // the spread over 2 seeds, combined like the image
  const u = await ddipVolume(ctx, prior, vol, { config: cfg, stackStride: 3, samples: 2 });
  assert(u.std !== undefined && u.std.length === truth.length && u.std.every((v) => v >= 0));
  assert(u.std.some((v) => v > 0) && a.std === undefined);
});

Deno.test("combineStacks: centre and average against a plain per-slice reference", () => {
  const nx = 2, ny = 3, nz = 7, plane = nx * ny;
  // stack at first f, slice d: values 100 f + 10 d + voxel (init: the negative, std: + 0.5)
  const stack = (f: number) => ({
    first: f,
    image: Float32Array.from(
      { length: 3 * plane },
      (_, i) => 100 * f + 10 * Math.floor(i / plane) + (i % plane),
    ),
    init: Float32Array.from(
      { length: 3 * plane },
      (_, i) => -(100 * f + 10 * Math.floor(i / plane)),
    ),
    std: new Float32Array(3 * plane).fill(0.5 + f),
  });
  for (const stride of [1, 2, 3]) {
    const stacks = volumeStackCentres(nz, stride).map((c) => stack(c - 1));
    for (const combine of ["centre", "average"] as const) {
      const r = combineStacks([nx, ny, nz], stacks, combine);
      for (let k = 0; k < nz; k++) {
        const covering = stacks.filter((s) => k >= s.first && k < s.first + 3);
        // the reference: the stack centred on k (or holding an end slice) if any, else the mean
        // of the covering ones; "average": the mean of all covering stacks
        const centred = covering.find((s) => s.first + 1 === k || k === 0 || k === nz - 1);
        const used = combine === "average" || !centred ? covering : [centred];
        for (let v = 0; v < plane; v++) {
          const want = used.reduce((a, s) => a + s.image[(k - s.first) * plane + v], 0) /
            used.length;
          const wantStd = used.reduce((a, s) => a + s.std[0], 0) / used.length;
          const wantInit = used.reduce((a, s) => a + s.init[(k - s.first) * plane + v], 0) /
            used.length;
          assert(
            Math.abs(r.image[k * plane + v] - want) < 1e-4,
            `stride ${stride} ${combine} slice ${k}`,
          );
          assert(Math.abs(r.init[k * plane + v] - wantInit) < 1e-4);
          assert(Math.abs(r.std![k * plane + v] - wantStd) < 1e-6);
        }
      }
    }
  }
  // stride 3 on 7 slices: centres 1, 4, 5; slice 3 comes from the stack centred on 4
  const s3 = combineStacks(
    [nx, ny, nz],
    volumeStackCentres(nz, 3).map((c) => stack(c - 1)),
    "centre",
  );
  assert(s3.image[3 * plane] === 300, `slice 3: ${s3.image[3 * plane]}`);
  assertThrows(
    () => combineStacks([nx, ny, nz], [stack(0)], "centre"),
    /slices 3, 4, 5, 6 are covered by no stack/,
  );
  assertThrows(() => combineStacks([nx, ny, nz], [stack(5)], "average"), /does not fit 7 slices/);
});

Deno.test("DDIP xStepOrderedSubsets: bit-identical with one subset; with two, the x-steps run per subset", async () => {
  const ctx = await defaultContext();
  const prior = await tinyPrior();
  const cfg = { ...FAST, steps: 2 };
  const scanner = directPlaneScanner(smallScanner(), 3, 4);
  const truth = phantom(GRID);
  const mu = Float32Array.from(truth, (v) => (v > 0 ? 0.0096 : 0));
  const sim0 = ringForwardModel(ctx, scanner, { grid: GRID, muMap: mu });
  const tx = ctx.array(GRID.shape, truth);
  const sim = await simulateCounts(sim0, tx, { trueCounts: 3e4, randomsFraction: 0.2, seed: 5 });
  tx.destroy();
  sim0.destroy();
  const mr = Float32Array.from(truth, (v) => (v > 0 ? 0.75 : 0));
  const run = async (subsets: number, xStepOrderedSubsets: boolean) => {
    const model = ringForwardModel(ctx, scanner, {
      grid: GRID,
      muMap: mu,
      additive: sim.additive,
      subsets,
    });
    const likelihood = new PoissonLikelihood(model, sim.counts);
    const r = await ddipStack(prior, { likelihood, grid: GRID, mr }, {
      config: { ...cfg, xStepOrderedSubsets },
    });
    likelihood.destroy();
    model.destroy();
    return r.image;
  };
  assertIdentical(await run(1, true), await run(1, false));
  const all = await run(2, false);
  const os = await run(2, true);
  let diff = 0;
  let max = 0;
  for (let i = 0; i < os.length; i++) {
    assert(Number.isFinite(os[i]));
    diff = Math.max(diff, Math.abs(os[i] - all[i]));
    max = Math.max(max, Math.abs(all[i]));
  }
  assert(diff > 1e-4 * max, `ordered subsets left the result unchanged (${diff} of ${max})`);
});
