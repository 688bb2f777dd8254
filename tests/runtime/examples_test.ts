// Every example recipe runs in the sandbox at small sizes; outputs are checked against
// independent references where one is cheap.
import { assert, assertEquals } from "./_assert.ts";
import {
  readManifest,
  runSandboxed,
  type SandboxResult,
  verifyManifest,
} from "../../core/runtime/mod.ts";
import { readNifti, readSinogram, writeSinogram } from "../../core/io/mod.ts";
import { defaultContext } from "../../core/gpu/mod.ts";
import { PoissonLikelihood, tofRingForwardModel } from "../../core/model/mod.ts";
import { josephForwardReference } from "../../core/projector/reference.ts";
import { ROOT } from "./_helpers.ts";
import { subSeed } from "../../core/random.ts";

const EXAMPLES = `${ROOT}/examples`;

async function runExample(
  name: string,
  outDir: string,
  options: { inputs?: string[]; params?: Record<string, unknown>; seed?: number } = {},
): Promise<SandboxResult> {
  const r = await runSandboxed({
    recipe: `${EXAMPLES}/${name}.ts`,
    inputs: options.inputs ?? [],
    outDir,
    params: options.params,
    seed: options.seed,
    timeoutMs: 120_000,
    memoryMb: 2048,
  });
  assertEquals(r.ok, true, `${name}: ${r.reason}: ${r.error}`);
  return r;
}

function sum(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

Deno.test("example project_phantom matches the float64 reference projector", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "petrel-ex-" });
  try {
    await runExample("project_phantom", `${tmp}/out`, { params: { size: 16, crystals: 32 } });
    const image = await readNifti(`${tmp}/out/phantom.nii`);
    const sino = await readSinogram(`${tmp}/out/projection.npy`);
    const ref = josephForwardReference(sino.scanner.lors(), image.grid, image.data);
    let maxErr = 0;
    let maxRef = 0;
    for (let i = 0; i < ref.length; i++) {
      maxErr = Math.max(maxErr, Math.abs(sino.data[i] - ref[i]));
      maxRef = Math.max(maxRef, Math.abs(ref[i]));
    }
    assert(maxRef > 0 && maxErr / maxRef < 1e-4, `projection differs: ${maxErr} of ${maxRef}`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("examples simulate_study → osem / map_rdp: counts, activity recovery, bit-identical rerun", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "petrel-ex-" });
  try {
    const trueCounts = 1e5;
    const randomsFraction = 0.25;
    const sim = await runExample("simulate_study", `${tmp}/sim`, {
      params: { size: 16, voxelMm: 8, crystals: 48, trueCounts, randomsFraction },
      seed: 5,
    });
    const prompts = await readSinogram(`${tmp}/sim/prompts.npy`);
    const additive = await readSinogram(`${tmp}/sim/additive.npy`);
    // E[prompts] = trues + randoms = trueCounts / (1 − f); Poisson sd = sqrt(mean).
    const mean = trueCounts / (1 - randomsFraction);
    assert(
      Math.abs(sum(prompts.data) - mean) < 5 * Math.sqrt(mean),
      `prompts ${sum(prompts.data)}`,
    );
    const perBin = (randomsFraction / (1 - randomsFraction)) * trueCounts / additive.data.length;
    assert(additive.data.every((v) => Math.abs(v - perBin) < 1e-3 * perBin));
    const truth = await readNifti(`${tmp}/sim/truth.nii`);

    const verify = await verifyManifest(sim.manifestPath!, { outDir: `${tmp}/sim_rerun` });
    assertEquals(verify.bitIdentical, true, JSON.stringify(verify.outputs));

    const common = { size: 16, voxelMm: 8, subsets: 2 };
    await runExample("osem", `${tmp}/osem`, {
      inputs: [`${tmp}/sim`],
      params: { ...common, iterations: 6 },
    });
    await runExample("map_rdp", `${tmp}/map`, {
      inputs: [`${tmp}/sim`],
      params: { ...common, iterations: 6, beta: 0.1 },
    });
    for (const f of ["osem/osem.nii", "map/map_rdp.nii"]) {
      const x = await readNifti(`${tmp}/${f}`);
      assertEquals(x.shape, truth.shape);
      assert(x.data.every((v) => v >= 0), `${f}: negative values`);
      // Emission recovery: the reconstruction's total activity is within 10% of the truth.
      const rel = Math.abs(sum(x.data) - sum(truth.data)) / sum(truth.data);
      assert(rel < 0.1, `${f}: total activity off by ${(100 * rel).toFixed(1)}%`);
      // Beside the NIfTI: the PNG figure and metrics.json, scored against the truth in --in.
      const dir = `${tmp}/${f.split("/")[0]}`;
      const png = await Deno.readFile(`${dir}/${f.split("/")[1].replace(".nii", ".png")}`);
      assertEquals([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
      const m = JSON.parse(await Deno.readTextFile(`${dir}/metrics.json`));
      assert(Number.isFinite(m.logLikelihood), `${f}: log-likelihood ${m.logLikelihood}`);
      assertEquals(m.reference.name, "truth.nii");
      let lo = Infinity, hi = -Infinity;
      for (const v of truth.data) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
      let se = 0;
      for (let i = 0; i < x.data.length; i++) se += (x.data[i] - truth.data[i]) ** 2;
      const psnrHere = 10 * Math.log10((hi - lo) ** 2 / (se / x.data.length));
      assert(
        Math.abs(m.reference.psnrDb - psnrHere) < 1e-6,
        `${m.reference.psnrDb} vs ${psnrHere}`,
      );
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("example custom_scanner: octagonal two-ring scanner reconstructs its disk", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "petrel-ex-" });
  try {
    await runExample("custom_scanner", `${tmp}/out`, {
      params: { sides: 8, crystals: 48, size: 16, iterations: 4 },
    });
    const spec = JSON.parse(await Deno.readTextFile(`${tmp}/out/scanner.json`));
    assertEquals([spec.sides, spec.rings, spec.sinogramShape], [8, 2, [23, 24, 4]]);
    const x = await readNifti(`${tmp}/out/recon.nii`);
    const n = 16;
    let inside = 0, nIn = 0, outside = 0, nOut = 0;
    for (let i = 0; i < x.data.length; i++) {
      const r = Math.hypot((i % n) - n / 2 + 0.5, (((i / n) | 0) % n) - n / 2 + 0.5);
      if (r < n / 4 - 1) (inside += x.data[i], nIn++);
      else if (r > n / 4 + 1) (outside += x.data[i], nOut++);
    }
    assert(
      inside / nIn > 10 * (outside / nOut),
      `disk contrast ${inside / nIn} vs ${outside / nOut}`,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("example ddip: DDIP-HQS on a simulated 5-slice volume (3 stacks) with the tiny test prior; verify", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "petrel-ex-" });
  try {
    const study = { size: 16, voxelMm: 4, crystals: 48, rings: 5, trueCounts: 5e4 };
    await runExample("simulate_study", `${tmp}/sim`, { params: study, seed: 2 });
    const r = await runSandboxed({
      recipe: `${EXAMPLES}/ddip.ts`,
      inputs: [`${tmp}/sim`],
      models: [`${ROOT}/tests/fixtures/prior`],
      outDir: `${tmp}/ddip`,
      params: {
        steps: 3,
        startT: 6,
        initIterations: 2,
        emIterations: 2,
        fineTuneIterations: 1,
      },
      seed: 4,
      timeoutMs: 300_000,
      memoryMb: 3072,
    });
    assertEquals(r.ok, true, `${r.reason}: ${r.error}`);
    const x = await readNifti(`${tmp}/ddip/ddip.nii`);
    assertEquals(x.shape, [16, 16, 5]); // the whole volume, grid from mu.nii
    const info = JSON.parse(await Deno.readTextFile(`${tmp}/ddip/ddip.json`));
    assertEquals([info.method, info.losses.length, info.stackCentres], ["ddip-hqs", 3, [1, 2, 3]]);
    assertEquals(info.gridSource, "mu.nii");
    assertEquals(info.resolutionFwhmMm, null); // no resolution model unless asked for
    const timings = JSON.parse(await Deno.readTextFile(`${tmp}/ddip/timings.json`));
    // 3 reverse steps with 1 x-step each, then the default final data-consistency x-step
    assertEquals([timings.steps, timings.xSteps, timings.stepMs.length], [3, 4, 3]);
    // The chain's result is s · clip(x̂0, 0, 1); the default final step (issue 15) changes it only
    // where the data disagree by more than τ = 3 robust σ, so there it stays bounded by the scale.
    const d = await readNifti(`${tmp}/ddip/ddip_disagreement.nii`);
    assertEquals(d.shape, [16, 16, 5]);
    assert(x.data.every((v) => Number.isFinite(v) && v >= 0));
    assert(x.data.every((v, i) => Math.abs(d.data[i]) > 3 || v <= info.scale * (1 + 1e-6)));
    assert(sum(x.data) > 0);
    // Wall-clock timings are declared nondeterministic: verify skips them, everything else is
    // reproduced bit for bit (the test prior lies outside the default roots: allowed here).
    assertEquals((await readManifest(r.manifestPath!)).nondeterministicOutputs, ["timings.json"]);
    const v = await verifyManifest(r.manifestPath!, {
      outDir: `${tmp}/ddip_rerun`,
      allowRoots: [`${ROOT}/tests/fixtures/prior`],
    });
    assertEquals(v.rerun.ok, true, v.rerun.error);
    assertEquals(
      v.outputs.filter((o) => o.status !== "identical").map((o) => [o.path, o.status]),
      [["timings.json", "not-compared"]],
    );
    assertEquals(v.bitIdentical, true);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("example ddip samples=2: ddip.nii is the mean and ddip_std.nii the std of the two single chains", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "petrel-ex-" });
  try {
    const study = { size: 16, voxelMm: 4, crystals: 48, rings: 3, trueCounts: 5e4 };
    await runExample("simulate_study", `${tmp}/sim`, { params: study, seed: 2 });
    const ddip = async (out: string, seed: number, samples: number) => {
      const r = await runSandboxed({
        recipe: `${EXAMPLES}/ddip.ts`,
        inputs: [`${tmp}/sim`],
        models: [`${ROOT}/tests/fixtures/prior`],
        outDir: `${tmp}/${out}`,
        params: { steps: 2, startT: 6, initIterations: 2, emIterations: 2, samples },
        seed,
        timeoutMs: 300_000,
        memoryMb: 3072,
      });
      assertEquals(r.ok, true, `${r.reason}: ${r.error}`);
      return (await readNifti(`${tmp}/${out}/ddip.nii`)).data;
    };
    // The chains' seeds are seed and subSeed(seed, "sample-1"): run each alone as the reference.
    const a = await ddip("a", 4, 1);
    const b = await ddip("b", subSeed(4, "sample-1"), 1);
    const mean = await ddip("m", 4, 2);
    const std = (await readNifti(`${tmp}/m/ddip_std.nii`)).data;
    assert(a.some((v, i) => v !== b[i]), "the two chains differ");
    for (let i = 0; i < a.length; i++) {
      const m = (a[i] + b[i]) / 2, sd = Math.abs(a[i] - b[i]) / Math.SQRT2;
      assert(Math.abs(mean[i] - m) <= 1e-6 * Math.max(1, Math.abs(m)), `mean at ${i}`);
      assert(Math.abs(std[i] - sd) <= 1e-5 * Math.max(1, sd), `std at ${i}: ${std[i]} vs ${sd}`);
    }
    const info = JSON.parse(await Deno.readTextFile(`${tmp}/m/ddip.json`));
    assertEquals(info.samples, 2);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("example ddip on TOF prompts: the TOF model (its log-likelihood of ddip.nii recomputed here), norm.npy as one non-TOF sinogram", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "petrel-ex-" });
  try {
    const study = { size: 16, voxelMm: 4, crystals: 48, rings: 3, trueCounts: 5e4 };
    await runExample("simulate_study", `${tmp}/sim`, {
      params: { ...study, tofFwhmPs: 300, tofBins: 5 },
      seed: 2,
    });
    // a non-TOF normalisation beside the TOF prompts (what a scanner's norm file is)
    const prompts = await readSinogram(`${tmp}/sim/prompts.npy`);
    const nb = prompts.scanner.bins;
    const norm = Float32Array.from({ length: nb }, (_, i) => 0.9 + 0.2 * ((i * 7) % 11) / 10);
    await writeSinogram(`${tmp}/sim/norm.npy`, {
      data: norm,
      scanner: prompts.scanner,
      quantity: "normalisation-factors",
    });
    const r = await runSandboxed({
      recipe: `${EXAMPLES}/ddip.ts`,
      inputs: [`${tmp}/sim`],
      models: [`${ROOT}/tests/fixtures/prior`],
      outDir: `${tmp}/ddip`,
      params: { steps: 2, startT: 6, initIterations: 2, emIterations: 2, finalEmIterations: 0 },
      seed: 4,
      timeoutMs: 300_000,
      memoryMb: 3072,
    });
    assertEquals(r.ok, true, `${r.reason}: ${r.error}`);
    const info = JSON.parse(await Deno.readTextFile(`${tmp}/ddip/ddip.json`));
    assertEquals(info.tof.bins, 5);
    // the reference: the TOF model built here from the same files, its log-likelihood of ddip.nii
    const x = await readNifti(`${tmp}/ddip/ddip.nii`);
    const mu = await readNifti(`${tmp}/sim/mu.nii`);
    const additive = await readSinogram(`${tmp}/sim/additive.npy`);
    const ctx = await defaultContext();
    const model = tofRingForwardModel(ctx, prompts.scanner, {
      grid: mu.grid,
      tof: prompts.tof!,
      muMap: mu.data,
      additive: additive.data,
      multiplicative: norm,
    });
    const lik = new PoissonLikelihood(model, prompts.data);
    const xd = ctx.array(mu.grid.shape, x.data);
    const ll = await lik.logLikelihood(xd);
    xd.destroy();
    model.destroy();
    const recorded = info.logLikelihood.final;
    assert(
      Math.abs(ll - recorded) <= 1e-5 * Math.abs(ll),
      `log-likelihood of ddip.nii: ${ll} here, ${recorded} in ddip.json`,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("example ddip finalEmRegion=disagreement: ddip_disagreement.nii, and where it is below τ the plain chain's image", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "petrel-ex-" });
  try {
    const study = { size: 16, voxelMm: 4, crystals: 48, rings: 3, trueCounts: 5e4 };
    await runExample("simulate_study", `${tmp}/sim`, { params: study, seed: 2 });
    const ddip = async (out: string, extra: Record<string, unknown>) => {
      const r = await runSandboxed({
        recipe: `${EXAMPLES}/ddip.ts`,
        inputs: [`${tmp}/sim`],
        models: [`${ROOT}/tests/fixtures/prior`],
        outDir: `${tmp}/${out}`,
        params: { steps: 2, startT: 6, initIterations: 2, emIterations: 2, ...extra },
        seed: 4,
        timeoutMs: 300_000,
        memoryMb: 3072,
      });
      assertEquals(r.ok, true, `${r.reason}: ${r.error}`);
      return (await readNifti(`${tmp}/${out}/ddip.nii`)).data;
    };
    const plain = await ddip("plain", { finalEmIterations: 0 }); // the chain alone
    const tau = 1;
    const kept = await ddip("dd", {
      finalEmIterations: 3,
      finalBeta: 1e-4,
      finalEmRegion: "disagreement",
      disagreementThreshold: tau,
    });
    const d = await readNifti(`${tmp}/dd/ddip_disagreement.nii`);
    assertEquals(d.shape, [16, 16, 3]);
    let same = 0, changed = 0;
    for (let i = 0; i < plain.length; i++) {
      if (Math.abs(d.data[i]) <= tau) {
        assert(kept[i] === plain[i], `voxel ${i} (|d| ${Math.abs(d.data[i])} ≤ τ) changed`);
        same++;
      } else if (kept[i] !== plain[i]) changed++;
    }
    assert(same > 0 && changed > 0, `${same} kept, ${changed} changed`);
    const info = JSON.parse(await Deno.readTextFile(`${tmp}/dd/ddip.json`));
    assertEquals([info.config.finalEmRegion, info.config.finalEmIterations], ["disagreement", 3]);
    assert(!(await Deno.stat(`${tmp}/plain/ddip_disagreement.nii`).then(() => true, () => false)));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("example tracer_comparison: metrics.json agrees with an independent NRMSE", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "petrel-ex-" });
  try {
    await runExample("tracer_comparison", `${tmp}/out`, {
      params: { tracers: ["fdg", "tau"], size: 24, iterations: 3, trueCounts: 2e5 },
    });
    const rows = JSON.parse(await Deno.readTextFile(`${tmp}/out/metrics.json`));
    assertEquals(rows.map((r: { tracer: string; method: string }) => `${r.tracer}/${r.method}`), [
      "fdg/osem",
      "fdg/map_rdp",
      "tau/osem",
      "tau/map_rdp",
    ]);
    const mask = (await readNifti(`${tmp}/out/brain_mask.nii`)).data;
    for (const r of rows) {
      const truth = (await readNifti(`${tmp}/out/${r.tracer}_truth.nii`)).data;
      const x = (await readNifti(`${tmp}/out/${r.tracer}_${r.method}.nii`)).data;
      let se = 0, ss = 0, n = 0;
      for (let i = 0; i < x.length; i++) {
        if (!mask[i]) continue;
        se += (x[i] - truth[i]) ** 2;
        ss += truth[i] ** 2;
        n++;
      }
      const expected = Math.sqrt(se / n) / Math.sqrt(ss / n);
      assert(Math.abs(r.nrmse - expected) < 1e-6 * expected, `${r.nrmse} vs ${expected}`);
      assert(r.nrmse < 0.5 && r.ssim > 0.5, JSON.stringify(r));
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("example simulate_study phantom=brain: mMR-like span-1 3-D study on the prior's grid", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "petrel-ex-" });
  try {
    await runExample("simulate_study", `${tmp}/sim`, {
      params: { phantom: "brain", rings: 2, trueCounts: 2e5 },
      seed: 3,
    });
    const y = await readSinogram(`${tmp}/sim/prompts.npy`);
    assertEquals(y.scanner.spec.crystalsPerRing, 448);
    assertEquals(y.scanner.spec.maxRingDifference, 1); // every oblique segment of 2 rings
    assertEquals(y.shape, [129, 224, 4]);
    // prompts = trues / (1 − randoms fraction) in expectation, Poisson: within 5 sd
    const expected = 2e5 / 0.8;
    assert(Math.abs(sum(y.data) - expected) < 5 * Math.sqrt(expected), `${sum(y.data)}`);
    for (const f of ["mu.nii", "mr.nii", "truth.nii"]) {
      const im = await readNifti(`${tmp}/sim/${f}`);
      assertEquals(im.shape, [128, 128, 3]);
      assertEquals(im.grid.voxelSizeMm.map((v) => +v.toFixed(4)), [2.086, 2.086, 2.0313]);
    }
    const norm = await readSinogram(`${tmp}/sim/norm.npy`);
    assertEquals(norm.sidecar.quantity, "normalisation-factors");
    let logSum = 0;
    for (const v of norm.data) logSum += Math.log(v);
    // product of two lognormal efficiencies (sd 0.1 each): mean log ≈ 0
    assert(Math.abs(logSum / norm.data.length) < 0.05, `${logSum / norm.data.length}`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
