/**
 * The experiment through the recipe API, in-process (`runRecipeInProcess` with the recipe's
 * default export): every finished condition lands in rows.jsonl at once, and `resume` keeps those
 * rows and runs only the missing methods (on the procedural phantom, with the cheap classical
 * methods, so no diffusion run is needed). Lesion rows carry recovery and CRC per lesion class.
 * The command line maps each flag onto one parameter of the recipe's schema.
 */
import { DEFAULT_PRIOR_DIR } from "../../core/diffusion/default_prior.ts";
import {
  deepEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { runRecipeInProcess } from "../../core/runtime/context.ts";
import { RecipeParamsError } from "../../core/runtime/recipe.ts";
import recipe, {
  EXPERIMENT_SEED,
  experimentSettings,
  params,
} from "../../experiments/tracer_transfer/recipe.ts";
import { FLAGS, parseArgs } from "../../experiments/tracer_transfer/cli.ts";
import { lesionKind, spreadFields } from "../../experiments/tracer_transfer/condition.ts";
import { type Row, spreadTable } from "../../experiments/tracer_transfer/report.ts";
import { psnr, ssim } from "../../core/metrics/image.ts";

async function transfer(out: string, p: Record<string, unknown>) {
  const lines: string[] = [];
  const r = await runRecipeInProcess(recipe, {
    params: {
      subjects: ["51"],
      tracers: ["fdg"],
      counts: [100000],
      realisations: 1,
      simulators: ["operator"],
      ...p,
    },
    inputs: [], // no BrainWeb folder: the procedural phantom stands in
    outDir: out,
    seed: EXPERIMENT_SEED,
    log: (m) => lines.push(m),
  });
  return { log: lines.join("\n"), nondeterministic: r.nondeterministic };
}

async function rows(out: string): Promise<Record<string, unknown>[]> {
  return (await Deno.readTextFile(`${out}/rows.jsonl`)).split("\n").filter(Boolean).map((l) =>
    JSON.parse(l)
  );
}

Deno.test("tracer_transfer recipe writes rows per condition and resume runs only what is missing", async () => {
  const out = await Deno.makeTempDir({ prefix: "petrel-transfer-" });
  try {
    const first = await transfer(out, { methods: ["osem"] });
    assert(/procedural brain phantom/.test(first.log), "says it fell back to the phantom");
    assertEquals(first.nondeterministic, ["rows.jsonl", "results.json", "results.md"]);
    const one = await rows(out);
    assertEquals(one.map((r) => r.method), ["osem"]);
    assert(Number.isFinite(one[0].psnr as number) && (one[0].psnr as number) > 10);
    assert(one[0].simulator === "operator");
    // every lesion reaching into the stack is scored, the stack's own (hot) one among them
    const les = one[0].lesions as { kind: string; recovery: number; crc: number }[];
    assert(les.length >= 1 && les.every((l) => Number.isFinite(l.recovery) && l.recovery > 0));
    assert(les.some((l) => l.kind.startsWith("hot")));
    const figure = await Deno.readFile(`${out}/fig/operator.fdg.osem.npy`);

    const second = await transfer(out, { methods: ["osem", "map-rdp"], resume: true });
    assert(/resuming: 1 rows/.test(second.log), second.log);
    assert(!/ osem +PSNR/.test(second.log), "the finished OSEM condition did not run again");
    const two = await rows(out);
    assertEquals(two.map((r) => r.method), ["osem", "map-rdp"]);
    assertEquals(two[0], one[0], "the kept row is unchanged");
    const summary = JSON.parse(await Deno.readTextFile(`${out}/results.json`));
    assertEquals(summary.rows.length, 2);
    assert(summary.settings.seed === EXPERIMENT_SEED, "the run's seed is the experiment's");
    const md = await Deno.readTextFile(`${out}/results.md`);
    assert(/operator simulator/.test(md) && /lesions: recovery \(CRC\)/.test(md), md);
    assert((await Deno.stat(`${out}/operator.fdg.png`)).size > 0, "figure rebuilt from fig/*.npy");
    assertEquals(await Deno.readFile(`${out}/fig/operator.fdg.osem.npy`), figure);
    const left = [...Deno.readDirSync(out)].map((e) => e.name).filter((n) => n.includes("tmp"));
    assertEquals(left, [], "no temporary file left behind");

    // a row cut by a kill mid-write is ignored (and that condition runs again), not fatal
    await Deno.writeTextFile(`${out}/rows.jsonl`, '{"subject":"51","cen', { append: true });
    const third = await transfer(out, { methods: ["osem", "map-rdp"], resume: true });
    assert(/not a complete JSON row/.test(third.log), third.log);

    // invalid parameters are refused by the schema before anything runs
    await Deno.remove(out, { recursive: true });
    let threw: unknown;
    try {
      await transfer(out, { methods: ["osem", "fbp"] });
    } catch (e) {
      threw = e;
    }
    assert(threw instanceof RecipeParamsError && /methods/.test(threw.message), String(threw));
    assert(!(await Deno.stat(`${out}/rows.jsonl`).then(() => true, () => false)));
  } finally {
    await Deno.remove(out, { recursive: true }).catch(() => {});
  }
});

Deno.test("tracer_transfer settings: the schema's defaults, quick defaults, levers", () => {
  const where = { model: "m", brainweb: "b", out: "o", seed: 7 };
  const s = experimentSettings(params.parse({}), where);
  assertEquals(s.simulators, ["fine"]);
  assertEquals(s.subjects, ["51", "52", "53"]);
  assert(s.ddip.steps === 25 && s.ddip.lr === undefined, "lr from the library (auto)");
  assert(s.ddip.fineTuneIterations === 2 && s.realisations === 2 && s.osem.iterations === 12);
  assert(!("startT" in s.ddip), "start time from the library");
  assertEquals(experimentSettings(params.parse({ startT: 120 }), where).ddip.startT, 120);
  // no resolution model and the plain x-step unless asked for
  assert(s.psfMm === 0 && !("xStepOrderedSubsets" in s.ddip));
  const psf = experimentSettings(params.parse({ psf: 4, xStepSubsets: true }), where);
  assert(psf.psfMm === 4 && psf.ddip.xStepOrderedSubsets === true);
  assert(s.levers.dc.finalEmIterations === 10 && s.levers.late.betaEnd === 1e-3);
  assert(s.levers.dd.finalEmRegion === "disagreement" && s.levers.dd.disagreementThreshold === 3);
  // the lever's opt-in variants are off unless asked for (the library's defaults)
  assert(s.levers.dd.finalOrderedSubsets === false && s.levers.dd.disagreementSeedThreshold === 0);
  assert(s.levers.dd.disagreementBlend === "replace" && s.levers.dd.disagreementBlendFwhmMm === 3);
  const v = experimentSettings(
    params.parse({
      ddOrderedSubsets: true,
      ddSeedThreshold: 5,
      ddBlend: "smoothed-change",
      ddBlendFwhm: 4,
    }),
    where,
  );
  assert(v.levers.dd.finalOrderedSubsets === true && v.levers.dd.disagreementSeedThreshold === 5);
  assert(
    v.levers.dd.disagreementBlend === "smoothed-change" &&
      v.levers.dd.disagreementBlendFwhmMm === 4,
  );
  assert(s.nll.lr === 1e-4 && s.nll.steps === 25 && s.seed === 7);
  const q = experimentSettings(params.parse({ quick: true, nllSteps: 3, lr: "auto" }), where);
  assertEquals(q.subjects, ["51"]);
  assert(q.ddip.steps === 5 && q.ddip.fineTuneIterations === 1 && q.realisations === 1);
  assert(q.nll.steps === 3 && q.ddip.lr === "auto" && q.osem.iterations === 8);
  assert(lesionKind({ centreMm: [0, 0, 0], radiusMm: 4, petFactor: 2 }) === "hot mr-invisible");
  assert(
    lesionKind({ centreMm: [0, 0, 0], radiusMm: 4, petFactor: 0.3, mrFactor: 0.75 }) ===
      "cold mr-visible",
  );
});

Deno.test("tracer_transfer command line: one flag per parameter, readable refusals", () => {
  assertEquals(
    FLAGS.map(([, key]) => key).sort(),
    Object.keys(params.shape).sort(),
    "every parameter has its flag and every flag its parameter",
  );
  const none = parseArgs([]);
  assertEquals(none.params, {}, "absent flags leave the schema's defaults");
  assert(none.seed === EXPERIMENT_SEED && none.model === DEFAULT_PRIOR_DIR);
  const a = parseArgs([
    "--quick",
    "--simulator",
    "fine,operator",
    "--counts",
    "300000,1e5",
    "--lr",
    "auto",
    "--fine-tune",
    "3",
    "--seed",
    "5",
    "--out",
    "x",
  ]);
  assertEquals(a.params, {
    quick: true,
    simulators: ["fine", "operator"],
    counts: [300000, 100000],
    lr: "auto",
    fineTune: 3,
  });
  assert(a.seed === 5 && a.out === "x");
  assertThrows(() => parseArgs(["--simulator", "exact"]), /--simulator\[0\]/);
  assertThrows(() => parseArgs(["--provider", "cuda"]), /--provider/);
  assertThrows(() => parseArgs(["--steps", "many"]), /--steps/);
  assertEquals(parseArgs(["--start-t", "150"]).params, { startT: 150 });
  assertEquals(parseArgs(["--psf", "4", "--xstep-subsets"]).params, { psf: 4, xStepSubsets: true });
  assertThrows(() => parseArgs(["--psf", "-1"]), /--psf/);
  assertThrows(() => parseArgs(["--start-t", "0"]), /--start-t/);
  assertThrows(() => parseArgs(["--seed", "1.5"]), /--seed must be an integer/);
});

Deno.test("tracer_transfer --samples: the spread's fields and table (mean image scored, std median over the head)", () => {
  // 12 × 12 × 3: the mean image is 10 on 6 voxels (the head), 0.5 elsewhere (below 10 % of its max)
  const n = 432;
  const head = [0, 5, 170, 300, 401, 431];
  const mean = new Float32Array(n).fill(0.5);
  const std = Float32Array.from({ length: n }, (_, j) => 100 + j); // outside the head: large
  head.forEach((j, k) => {
    mean[j] = 10;
    std[j] = [3, 1, 4, 1, 5, 9][k];
  });
  const truth = Float32Array.from(mean, (v, j) => v + (j % 3) * 0.1);
  const f = spreadFields(truth, { mean, std }, [12, 12, 3]);
  // the head's std values sorted: 1 1 3 4 5 9, median (3 + 4) / 2
  assert(f.sdMedian === 3.5, `median ${f.sdMedian}`);
  assert(
    f.meanPsnr === psnr(truth, mean) && f.meanSsim === ssim(truth, mean, { shape: [12, 12, 3] }),
  );
  const sum = Array.from(std).reduce((a, b) => a + b, 0);
  assert(Math.abs(f.meanStd - sum / n) < 1e-9 * sum);
  const row: Row = {
    subject: "51",
    centre: 54,
    tracer: "amyloid_neg",
    counts: 1e5,
    realisation: 0,
    simulator: "fine",
    method: "ddip-hqs",
    setting: "",
    psnr: 30,
    ssim: 0.9,
    nrmse: 0.1,
    crc: 0.5,
    seconds: 1,
    samples: 4,
    ...f,
    lesions: [{
      kind: "hot mr-invisible",
      radiusMm: 7.8,
      recovery: 0.57,
      crc: 0,
      meanRecovery: 0.58,
      sd: 0.25,
      sdBackground: 0.5,
    }],
  };
  const md = spreadTable(
    [row, { ...row, method: "osem", samples: undefined, sdMedian: undefined }],
    {
      "ddip-hqs": "DDIP-HQS",
    },
  ).join("\n");
  assert(
    md.includes(
      "| DDIP-HQS ×4, 51 c54 r0 | hot mr-invisible 7.8 mm | 0.570 / 0.580 | 0.250 | 0.500 | 3.50 |",
    ),
    md,
  );
  assert(!md.includes("osem"), "rows without seeds are not listed");
});
