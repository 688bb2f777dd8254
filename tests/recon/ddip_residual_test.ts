import { ok as assert, throws as assertThrows } from "node:assert/strict";
import { defaultContext } from "../../core/gpu/context.ts";
import { centredGrid } from "../../core/geometry/grid.ts";
import { josephBackReference, josephForwardReference } from "../../core/projector/reference.ts";
import { ringForwardModel } from "../../core/model/forward_model.ts";
import { PoissonLikelihood } from "../../core/model/likelihood.ts";
import { simulateCounts } from "../../core/model/simulate.ts";
import { PenalisedEmStep } from "../../core/recon/xstep.ts";
import { subSeed } from "../../core/random.ts";
import { penalisedSolve } from "../../core/model/kernels.ts";
import {
  ddipConfig,
  type DdipConfigInput,
  ddipJoint,
  ddipStack,
  directPlaneScanner,
  keepSeededRegions,
  restrictToDisagreement,
  robustSpread,
} from "../../core/recon/ddip/mod.ts";
import { Rng } from "../../core/random.ts";
import {
  addDisc,
  assertClose,
  assertIdentical,
  smallGrid,
  smallScanner,
} from "../model/fixtures.ts";
import { smallScanner as ringScanner } from "../_helpers.ts";
import { discPhantom, tinyPrior } from "./_ddip.ts";

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

/** Float64 in-plane Gaussian (3σ taps, normalised, zero padding): the filter's definition. */
function gaussianReference(v: Float64Array, nx: number, ny: number, fwhmMm: number, mm: number) {
  const sigma = fwhmMm / (2 * Math.sqrt(2 * Math.log(2))) / mm;
  const r = Math.max(1, Math.ceil(3 * sigma));
  const taps: number[] = [];
  for (let t = -r; t <= r; t++) taps.push(Math.exp(-0.5 * (t / sigma) ** 2));
  const sum = taps.reduce((a, b) => a + b, 0);
  const conv = (src: Float64Array, dx: number, dy: number) => {
    const out = new Float64Array(src.length);
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        let acc = 0;
        for (let t = -r; t <= r; t++) {
          const ii = i + t * dx, jj = j + t * dy;
          if (ii >= 0 && ii < nx && jj >= 0 && jj < ny) {
            acc += (taps[t + r] / sum) * src[ii + nx * jj];
          }
        }
        out[i + nx * j] = acc;
      }
    }
    return out;
  };
  return conv(conv(v, 1, 0), 0, 1);
}

/** Float64 penalised-EM iterations towards `z` from max(z, 0) (all views, no subsets). */
function xStepReference(
  scanner: ReturnType<typeof smallScanner>,
  grid: ReturnType<typeof smallGrid>,
  counts: Float32Array,
  additive: Float32Array,
  z: Float32Array,
  beta: number,
  iterations: number,
): Float64Array {
  const views = scanner.subsetViews(0, 1);
  const lors = scanner.lors(views);
  const bins = scanner.binIndices(views);
  const sens = josephBackReference(lors, grid, new Float64Array(bins.length).fill(1));
  let x = Float64Array.from(z, (v) => Math.max(v, 0));
  for (let it = 0; it < iterations; it++) {
    const proj = josephForwardReference(lors, grid, x);
    const q = proj.map((p, i) => {
      const yb = p + additive[bins[i]];
      return yb > 0 ? counts[bins[i]] / yb : 0;
    });
    const bp = josephBackReference(lors, grid, q);
    x = x.map((v, j) => penalisedSolve(beta, beta * z[j], sens[j], v * bp[j]));
  }
  return x;
}

/**
 * The lesion problem measured on the small scanner: counts simulated from the truth, the model with
 * their additive term, the likelihood and an x-step over it (`destroy` releases all three).
 */
async function lesionStudy(trueCounts: number, randomsFraction: number, seed: number) {
  const ctx = await defaultContext();
  const grid = smallGrid();
  const scanner = smallScanner();
  const model = ringForwardModel(ctx, scanner, { grid });
  const problem = lesionProblem(grid);
  const tx = ctx.array(grid.shape, problem.truth);
  const sim = await simulateCounts(model, tx, { trueCounts, randomsFraction, seed });
  tx.destroy();
  model.setAdditive(sim.additive);
  const lik = new PoissonLikelihood(model, sim.counts);
  const step = new PenalisedEmStep(lik);
  const destroy = () => {
    step.destroy();
    lik.destroy();
    model.destroy();
  };
  /** `iterations` x-step iterations towards `image` at β 1e-4 (the final step's coupling), from it. */
  const dataConsistent = async (image: Float32Array, iterations = 20) => {
    const z = ctx.array(grid.shape, image);
    const x = ctx.array(grid.shape);
    const beta = 1e-4 / (2 * sim.scale) ** 2;
    ctx.run((rec) => step.record(rec, x, z, { beta, iterations, initFromTarget: true }));
    try {
      return await x.read();
    } finally {
      z.destroy();
      x.destroy();
    }
  };
  return { ctx, grid, scanner, model, ...problem, sim, lik, step, dataConsistent, destroy };
}

Deno.test("robust spread: 1.4826 × MAD over the support, outliers ignored", () => {
  const v = Float32Array.of(1, 2, 3, 4, 100, -50);
  // support without the −50: median 3, |v − 3| = 2 1 0 1 97 → MAD 1
  assertClose(robustSpread(v, Uint8Array.of(1, 1, 1, 1, 1, 0)), 1.4826, 1e-12);
  // even count: median (2 + 3)/2 = 2.5, deviations 1.5 .5 .5 1.5 → MAD 1
  assertClose(robustSpread(v, Uint8Array.of(1, 1, 1, 1, 0, 0)), 1.4826, 1e-12);
  assert(robustSpread(v, new Uint8Array(6)) === 0);
});

Deno.test("disagreement image, weight and result match a float64 TypeScript reference (x-step, filter, MAD)", async () => {
  const study = await lesionStudy(1e5, 0.2, 7);
  const { ctx, grid, scanner, erased, sim, step } = study;
  try {
    const image = Float32Array.from(erased, (v) => v * sim.scale);
    const beta = 1e-4 / (2 * sim.scale) ** 2;
    const z = ctx.array(grid.shape, image);
    const x = ctx.array(grid.shape);
    ctx.run((rec) => step.record(rec, x, z, { beta, iterations: 3, initFromTarget: true }));
    const dc = await x.read();
    z.destroy();
    x.destroy();
    const dcRef = xStepReference(scanner, grid, sim.counts, sim.additive!, image, beta, 3);
    let maxRef = 0;
    for (const v of dcRef) maxRef = Math.max(maxRef, v);
    for (let j = 0; j < dc.length; j++) {
      assert(
        Math.abs(dc[j] - dcRef[j]) <= 1e-4 * maxRef,
        `x-step voxel ${j}: ${dc[j]} vs ${dcRef[j]}`,
      );
    }
    const opts = { fwhmMm: 6, threshold: 2 };
    const got = await restrictToDisagreement(ctx, grid, image, dc, opts);
    // reference: G ∗ (dc − image) in float64, σ = 1.4826 MAD over image > 10 % of its max
    const diff = Float64Array.from(dc, (v, j) => v - image[j]);
    const g = gaussianReference(diff, 32, 32, 6, grid.voxelSizeMm[0]);
    let max = 0;
    for (const v of image) max = Math.max(max, v);
    const sup = [...g].filter((_, j) => image[j] > 0.1 * max).sort((a, b) => a - b);
    const med = (xs: number[]) =>
      xs.length % 2 ? xs[(xs.length - 1) / 2] : 0.5 * (xs[xs.length / 2 - 1] + xs[xs.length / 2]);
    const m0 = med(sup);
    const sigma = 1.4826 * med(sup.map((v) => Math.abs(v - m0)).sort((a, b) => a - b));
    assertClose(got.spread, sigma, 1e-5 * sigma);
    let flagged = 0;
    for (let j = 0; j < image.length; j++) {
      const d = g[j] / sigma;
      assert(Math.abs(got.disagreement[j] - d) <= 1e-4 * Math.max(1, Math.abs(d)), `d at ${j}`);
      const w = Math.min(1, Math.max(0, Math.abs(d) - 2));
      assert(Math.abs(got.weight[j] - w) <= 1e-4, `w at ${j}: ${got.weight[j]} vs ${w}`);
      const ref = w * dc[j] + (1 - w) * image[j];
      assert(Math.abs(got.image[j] - ref) <= 1e-4 * Math.max(1, ref), `image at ${j}`);
      if (got.weight[j] === 0) assert(got.image[j] === image[j], `kept at ${j}`);
      if (got.weight[j] === 1) assert(got.image[j] === dc[j], `taken at ${j}`);
      if (got.weight[j] > 0) flagged++;
    }
    assert(flagged > 0 && flagged < image.length / 2, `${flagged} voxels flagged`);
    await restrictToDisagreement(ctx, grid, image, dc.subarray(1), opts).then(
      () => assert(false, "a size mismatch is refused"),
      (e) => assert(/differ/.test(String(e)), String(e)),
    );
  } finally {
    study.destroy();
  }
});

Deno.test("restricted to the disagreement, the final iterations recover an erased lesion and leave agreeing voxels alone", async () => {
  const study = await lesionStudy(2e5, 0.1, 3);
  const { ctx, grid, truth, erased, mask, sim } = study;
  try {
    const t = Float32Array.from(truth, (v) => v * sim.scale);
    // the "prior's" image: right everywhere except that the lesion is erased
    const prior = Float32Array.from(erased, (v) => v * sim.scale);
    const dc = await study.dataConsistent(prior);
    const r = await restrictToDisagreement(ctx, grid, prior, dc, { fwhmMm: 8, threshold: 3 });
    const rec = (img: Float32Array) => roiMean(img, mask) / roiMean(t, mask);
    // flagged (the data want more activity there) and taken from the data-consistent image
    assert(roiMean(r.disagreement, mask) > 4, `d in the lesion ${roiMean(r.disagreement, mask)}`);
    assert(rec(r.image) > rec(prior) + 0.2, `recovery ${rec(prior)} → ${rec(r.image)}`);
    assert(Math.abs(rec(r.image) - rec(dc)) < 0.05, "as much as the unrestricted iterations");
    let kept = 0;
    for (let j = 0; j < prior.length; j++) if (r.image[j] === prior[j]) kept++;
    assert(kept > 0.8 * prior.length, `${kept} of ${prior.length} voxels kept`);
    // outside the lesion the restricted image stays closer to the truth than the unrestricted one
    const errOut = (img: Float32Array) => {
      let e = 0;
      for (let j = 0; j < img.length; j++) if (!mask[j]) e += (img[j] - t[j]) ** 2;
      return e;
    };
    assert(errOut(r.image) < 0.5 * errOut(dc), `outside error ${errOut(r.image)} vs ${errOut(dc)}`);
  } finally {
    study.destroy();
  }
});

/**
 * A tiny DDIP problem (16² × 3 disc, the fixture prior, `subsets` ordered subsets in the model):
 * `p` is what `ddipStack` takes; `destroy` releases the likelihood and the model.
 */
async function tinyDdipProblem(subsets = 1) {
  const ctx = await defaultContext();
  const prior = await tinyPrior();
  const grid = centredGrid([16, 16, 3], [4, 4, 4]);
  const scanner = directPlaneScanner(ringScanner(), 3, 4);
  const truth = discPhantom(grid, 0);
  const model = ringForwardModel(ctx, scanner, { grid, subsets });
  const tx = ctx.array(grid.shape, truth);
  const sim = await simulateCounts(model, tx, { trueCounts: 3e4, randomsFraction: 0.2, seed: 5 });
  tx.destroy();
  model.setAdditive(sim.additive);
  const likelihood = new PoissonLikelihood(model, sim.counts);
  const mr = Float32Array.from(truth, (v) => (v > 0 ? 0.5 : 0));
  const destroy = () => {
    likelihood.destroy();
    model.destroy();
  };
  // a 2-step chain without the final x-step, the base the lever tests add their options to
  const chainConfig = {
    startT: 40,
    steps: 2,
    fineTuneIterations: 1,
    emIterations: 2,
    initIterations: 3,
    finalEmIterations: 0,
  };
  return { ctx, prior, grid, likelihood, p: { likelihood, grid, mr }, chainConfig, destroy };
}

/** `ddipJoint` on one direct-plane stack equals `ddipStack` (image and disagreement) with `config`. */
async function assertJointIsStack(
  { prior, p }: Awaited<ReturnType<typeof tinyDdipProblem>>,
  config: DdipConfigInput,
  scale: number,
) {
  const joint = await ddipJoint(prior, p, { config, seed: 11, scale });
  const stack = await ddipStack(prior, p, {
    config,
    seed: subSeed(11, "ddip-stack-1"),
    scale,
    init: joint.init,
  });
  assertIdentical(joint.image, stack.image, "joint = stack");
  assertIdentical(joint.disagreement!, stack.disagreement!);
}

Deno.test("finalEmRegion 'disagreement' in ddipStack and ddipJoint: off is bit-identical, on is the restricted step on the chain's output", async () => {
  const problem = await tinyDdipProblem();
  const { ctx, prior, grid, p } = problem;
  try {
    const cfg = problem.chainConfig;
    // the library default keeps its final x-step only where the data disagree (issue 15)
    assert(ddipConfig().finalEmRegion === "disagreement", "default region");
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
    const dcAll = { ...cfg, finalEmIterations: 3, finalBeta: 1e-4, finalEmRegion: "all" as const };
    const all = await ddipStack(prior, p, { config: dcAll, seed: 3 });
    const lever = {
      ...dcAll,
      finalEmRegion: "disagreement" as const,
      disagreementFwhmMm: 8,
      disagreementThreshold: 1,
    };
    const on = await ddipStack(prior, p, { config: lever, seed: 3 });
    // the chain's output and the unrestricted final iterations, combined as restrictToDisagreement does
    const ref = await restrictToDisagreement(ctx, grid, plain.image, all.image, {
      fwhmMm: 8,
      threshold: 1,
    });
    assertIdentical(on.image, ref.image, "the restriction of the final x-step");
    assertIdentical(on.disagreement!, ref.disagreement);
    assert(ref.weight.some((w) => w > 0) && ref.weight.some((w) => w === 0));
    assert(
      on.image.some((v, i) => v !== plain.image[i]) && on.image.some((v, i) => v !== all.image[i]),
    );
    assert(on.timings.xSteps === plain.timings.xSteps + 1);
    // ddipJoint on one direct-plane stack is ddipStack, with the lever too
    await assertJointIsStack(problem, lever, on.scale);
    assertThrows(() => ddipConfig({ finalEmRegion: "lesions" as "all" }), /finalEmRegion/);
    assertThrows(() => ddipConfig({ disagreementThreshold: -1 }), /disagreementThreshold/);
  } finally {
    problem.destroy();
  }
});

/**
 * Reference of the hysteresis: connected components (union-find over 6-neighbours, one sign of
 * `d`) of `w > 0`, kept where the component's max |d| reaches `seed`.
 */
function seededReference(
  w: Float64Array,
  d: ArrayLike<number>,
  [nx, ny, nz]: number[],
  seed: number,
): Float64Array {
  const n = w.length;
  const parent = Int32Array.from({ length: n }, (_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]];
    return i;
  };
  const on = (j: number) => w[j] > 0;
  for (let k = 0; k < nz; k++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const j = x + nx * (y + ny * k);
        if (!on(j)) continue;
        for (const [dx, dy, dk] of [[1, 0, 0], [0, 1, 0], [0, 0, 1]]) {
          if (x + dx >= nx || y + dy >= ny || k + dk >= nz) continue;
          const u = j + dx + nx * dy + nx * ny * dk;
          if (on(u) && Math.sign(d[u]) === Math.sign(d[j])) parent[find(u)] = find(j);
        }
      }
    }
  }
  const peak = new Float64Array(n);
  for (let j = 0; j < n; j++) if (on(j)) peak[find(j)] = Math.max(peak[find(j)], Math.abs(d[j]));
  return w.map((v, j) => (on(j) && peak[find(j)] >= seed ? v : 0));
}

Deno.test("keepSeededRegions matches a union-find reference (random 3-slice field) and keeps everything for a seed ≤ τ", () => {
  const rng = new Rng(17);
  const shape = [9, 7, 3];
  const n = 9 * 7 * 3;
  const d = Float32Array.from({ length: n }, () => 2.2 * rng.normal());
  const tau = 1;
  const w0 = Float32Array.from(d, (v) => Math.min(1, Math.max(0, Math.abs(v) - tau)));
  for (const seed of [2.5, 4]) {
    const w = w0.slice();
    keepSeededRegions(w, d, shape, seed);
    const ref = seededReference(Float64Array.from(w0), d, shape, seed);
    assertIdentical(w, Float32Array.from(ref), `seed ${seed}`);
    assert(w.some((v) => v > 0) && w.filter((v) => v > 0).length < w0.filter((v) => v > 0).length);
  }
  const all = w0.slice();
  keepSeededRegions(all, d, shape, tau);
  assertIdentical(all, w0, "a seed at τ keeps every region");
  // the example of the JSDoc: two regions in one row, only the second reaches the seed
  const w1 = Float32Array.of(0.5, 0, 1, 1, 1);
  keepSeededRegions(w1, Float32Array.of(1.5, 0, 2, 3.5, 2), [5, 1, 1], 3);
  assertIdentical(w1, Float32Array.of(0, 0, 1, 1, 1));
  assertThrows(() => keepSeededRegions(w1, d, [5, 1, 1], 3), /differ/);
});

Deno.test("restrictToDisagreement with a seed threshold and the smoothed-change blend matches a float64 reference; off it is the plain rule bit for bit", async () => {
  const study = await lesionStudy(2e5, 0.1, 3);
  const { ctx, grid, erased, mask, sim } = study;
  try {
    const image = Float32Array.from(erased, (v) => v * sim.scale);
    const dc = await study.dataConsistent(image);
    const base = { fwhmMm: 8, threshold: 1.5 };
    const plain = await restrictToDisagreement(ctx, grid, image, dc, base);
    // off: a seed at or below τ and the "replace" blend are the plain rule, bit for bit
    const off = await restrictToDisagreement(ctx, grid, image, dc, {
      ...base,
      seedThreshold: 1.5,
      blend: "replace",
      blendFwhmMm: 5,
    });
    assertIdentical(off.image, plain.image);
    assertIdentical(off.weight, plain.weight);
    const opts = { ...base, seedThreshold: 4, blend: "smoothed-change" as const, blendFwhmMm: 3 };
    const got = await restrictToDisagreement(ctx, grid, image, dc, opts);
    assertIdentical(got.disagreement, plain.disagreement, "the same disagreement image");
    // reference: plain weights, hysteresis by union-find, image + w · G₃ ∗ (dc − image), ≥ 0
    const wRef = seededReference(
      Float64Array.from(plain.weight),
      plain.disagreement,
      [32, 32, 1],
      4,
    );
    const change = gaussianReference(
      Float64Array.from(dc, (v, j) => v - image[j]),
      32,
      32,
      3,
      grid.voxelSizeMm[0],
    );
    let max = 0;
    for (const v of dc) max = Math.max(max, v);
    for (let j = 0; j < image.length; j++) {
      assert(got.weight[j] === wRef[j], `w at ${j}: ${got.weight[j]} vs ${wRef[j]}`);
      const ref = Math.max(0, image[j] + wRef[j] * change[j]);
      assert(
        Math.abs(got.image[j] - ref) <= 1e-5 * max,
        `image at ${j}: ${got.image[j]} vs ${ref}`,
      );
      if (wRef[j] === 0) assert(got.image[j] === image[j], `kept at ${j}`);
    }
    // the seed drops some of the plain flags and keeps the lesion's
    const nOn = (w: Float32Array) => w.filter((v) => v > 0).length;
    assert(nOn(got.weight) > 0 && nOn(got.weight) < nOn(plain.weight), "fewer flags");
    assert(roiMean(got.weight, mask) > 0.5, `lesion weight ${roiMean(got.weight, mask)}`);
    for (
      const bad of [
        { seedThreshold: -1 },
        { seedThreshold: Infinity },
        { blend: "mean" as "replace" },
        { blendFwhmMm: -2 },
      ]
    ) {
      await restrictToDisagreement(ctx, grid, image, dc, { ...base, ...bad }).then(
        () => assert(false, `${JSON.stringify(bad)} accepted`),
        (e) => assert(e instanceof RangeError, String(e)),
      );
    }
  } finally {
    study.destroy();
  }
});

Deno.test("finalOrderedSubsets, disagreementSeedThreshold and disagreementBlend in ddipStack and ddipJoint: the ordered-subset x-step on the chain's output, restricted as restrictToDisagreement does", async () => {
  const problem = await tinyDdipProblem(4);
  const { ctx, prior, grid, likelihood, p } = problem;
  const step = new PenalisedEmStep(likelihood);
  try {
    const cfg = problem.chainConfig;
    const c0 = ddipConfig();
    assert(
      c0.finalOrderedSubsets === false && c0.disagreementSeedThreshold === 0 &&
        c0.disagreementBlend === "replace",
      "the new options are off by default",
    );
    const chain = await ddipStack(prior, p, { config: cfg, seed: 3 });
    const os = {
      ...cfg,
      finalEmIterations: 2,
      finalBeta: 1e-4,
      finalEmRegion: "all" as const,
      finalOrderedSubsets: true,
    };
    const all = await ddipStack(prior, p, { config: os, seed: 3 });
    // reference: 2 ordered-subset x-step iterations (4 subsets) from the chain's output
    const z = ctx.array(grid.shape, chain.image);
    const x = ctx.array(grid.shape);
    const b = 1e-4 / (chain.scale * chain.scale);
    ctx.run((rec) =>
      step.record(rec, x, z, { beta: b, iterations: 2, initFromTarget: true, orderedSubsets: true })
    );
    const dcRef = await x.read();
    ctx.run((rec) => step.record(rec, x, z, { beta: b, iterations: 2, initFromTarget: true }));
    const plainRef = await x.read();
    z.destroy();
    x.destroy();
    assertIdentical(all.image, dcRef, "the final x-step over the subsets");
    assert(dcRef.some((v, i) => v !== plainRef[i]), "subsets change the final x-step");
    const plainAll = await ddipStack(prior, p, {
      config: { ...os, finalOrderedSubsets: false },
      seed: 3,
    });
    assertIdentical(plainAll.image, plainRef, "off: the plain final x-step");
    const lever = {
      ...os,
      finalEmRegion: "disagreement" as const,
      disagreementFwhmMm: 8,
      disagreementThreshold: 0.5,
      disagreementSeedThreshold: 1.5,
      disagreementBlend: "smoothed-change" as const,
      disagreementBlendFwhmMm: 4,
    };
    const on = await ddipStack(prior, p, { config: lever, seed: 3 });
    const ref = await restrictToDisagreement(ctx, grid, chain.image, dcRef, {
      fwhmMm: 8,
      threshold: 0.5,
      seedThreshold: 1.5,
      blend: "smoothed-change",
      blendFwhmMm: 4,
    });
    assertIdentical(on.image, ref.image, "the restriction of the final x-step");
    assertIdentical(on.disagreement!, ref.disagreement);
    await assertJointIsStack(problem, lever, on.scale);
    assertThrows(() => ddipConfig({ disagreementSeedThreshold: -1 }), /disagreementSeedThreshold/);
    assertThrows(() => ddipConfig({ disagreementBlend: "mean" as "replace" }), /disagreementBlend/);
  } finally {
    step.destroy();
    problem.destroy();
  }
});
