/**
 * The tracer-transfer experiment as a petrel recipe: its settings are the zod schema
 * {@linkcode params} (the one source of their defaults), its outputs go through the
 * `RecipeContext`. Inputs: the BrainWeb label folder (`--in`; without one, the procedural brain
 * phantom stands in and the results say so); models: the prior folder (`--models`, needed by the
 * diffusion methods only). The experiment's seed is the run's seed (`--seed`; the published
 * figures use {@linkcode EXPERIMENT_SEED}).
 *
 *   deno task experiment --quick     # in-process through cli.ts (flags map onto params)
 *   petrel run experiments/tracer_transfer/recipe.ts --in ../shared/data/brainweb \
 *     --models models/fdg_prior --seed 2026 --out out/tt --set quick=true --set provider=wasm
 *
 * Writes `rows.jsonl` (every finished condition at once, its figure images to `fig/*.npy`),
 * `results.{json,md}` and one PNG per tracer. `rows.jsonl` and `results.*` hold wall-clock
 * seconds, so they are declared nondeterministic (`petrel verify` compares the figures).
 *
 * @module
 */

import { z } from "zod";
import { defineRecipe, type RecipeContext, RecipeInputError } from "../../core/runtime/recipe.ts";
import { loadPrior } from "../../core/diffusion/load.ts";
import { PRIOR_PROVIDERS, type PriorProvider } from "../../core/diffusion/provider.ts";
import type { ScorePrior } from "../../core/diffusion/prior.ts";
import {
  DDIP_CPU_PRESET,
  type DdipConfigInput,
  DdipOverridesSchema,
} from "../../core/recon/ddip/mod.ts";
import { encodePng, renderMontage } from "../../core/io/png.ts";
import { encodeNpy, readNpy } from "../../core/io/npy.ts";
import {
  diffusionMethods,
  type ExperimentSettings,
  type FineCache,
  loadSubject,
  runCondition,
  SIMULATORS,
} from "./condition.ts";
import { conditionKey, readRows, type Row, table } from "./report.ts";

/** The base seed of the published runs (`deno task experiment` uses it unless `--seed`). */
export const EXPERIMENT_SEED = 2026;

/** Every method the experiment knows; those after "ddip-hqs" are ablations and levers. */
export const METHODS = [
  "osem",
  "map-rdp",
  "dds",
  "ddip-hqs",
  "ddip-hqs-nomr",
  "ddip-nll",
  "ddip-hqs-chain",
  "ddip-hqs-dc",
  "ddip-hqs-late",
  "ddip-hqs-dd",
] as const;
const ABLATIONS: readonly string[] = METHODS.slice(METHODS.indexOf("ddip-hqs") + 1);

const F = DdipOverridesSchema.shape;

/** The experiment's parameters (the CLI's flags map onto them one to one, see cli.ts). */
export const params = z.object({
  quick: z.boolean().default(false).describe("small run for a 2-core CPU (< 15 min)"),
  subjects: z.array(z.string().min(1)).min(1).default(["51", "52", "53"]).describe(
    "held-out subjects (quick: the first only)",
  ),
  tracers: z.array(z.enum(["fdg", "amyloid_neg"])).min(1).default(["fdg", "amyloid_neg"])
    .describe("tracers"),
  counts: z.array(z.number().positive().finite()).min(1).default([300000, 100000]).describe(
    "true counts per slice",
  ),
  realisations: z.number().int().positive().optional().describe(
    "noise realisations (default: quick 1, full 2)",
  ),
  stacks: z.number().int().positive().default(1).describe(
    "stacks per subject, one per hot lesion, largest first",
  ),
  simulators: z.array(z.enum(SIMULATORS)).min(1).default(["fine"]).describe(
    "fine (independent of the reconstruction operator) and/or operator (the inverse crime)",
  ),
  methods: z.array(z.enum(METHODS)).min(1)
    .default(["osem", "map-rdp", "dds", "ddip-hqs", "ddip-hqs-nomr", "ddip-nll"]).describe(
      "methods",
    ),
  steps: F.steps.describe(
    `DDIP reverse steps, strided from startT (default: quick 5, full ${DDIP_CPU_PRESET.steps})`,
  ),
  startT: F.startT.describe("DDIP start time of the chain (of T = 1000; default: the library's)"),
  fineTune: F.fineTuneIterations.describe(
    "fine-tuning iterations per step (default: quick 1, full 2)",
  ),
  lr: F.lr.describe("AdamW learning rate (default: the library's lr auto)"),
  nllLr: z.number().positive().finite().default(1e-4).describe(
    "learning rate of the NLL ablation (tuned on subject 50)",
  ),
  beta: F.beta.describe("HQS coupling β (default: the library's)"),
  scaleHeadroom: F.scaleHeadroom.describe("intensity-scale headroom (default: the library's)"),
  emIterations: F.emIterations.describe(
    "penalised-EM iterations per x-step (default: the library's)",
  ),
  psf: z.number().min(0).finite().default(0).describe(
    "in-plane FWHM (mm) of the reconstruction model's image-space resolution model, all methods (0: none)",
  ),
  xStepSubsets: z.boolean().default(false).describe(
    "DDIP x-steps over the ordered subsets of the forward model (xStepOrderedSubsets)",
  ),
  nllSteps: F.steps.describe("reverse steps of the NLL ablation (default: as steps)"),
  dcIterations: z.number().int().min(0).default(10).describe(
    "ddip-hqs-dc: final data-consistency EM iterations",
  ),
  dcBeta: z.number().positive().finite().default(1e-4).describe(
    "ddip-hqs-dc: coupling of the final iterations",
  ),
  betaEnd: z.number().positive().finite().default(1e-3).describe(
    "ddip-hqs-late: β at the last reverse step",
  ),
  ddIterations: z.number().int().min(0).default(20).describe(
    "ddip-hqs-dd: final EM iterations where data disagree",
  ),
  ddBeta: z.number().positive().finite().default(1e-4).describe(
    "ddip-hqs-dd: coupling of those iterations",
  ),
  ddFwhm: z.number().min(0).finite().default(8).describe(
    "ddip-hqs-dd: FWHM of the disagreement filter (mm)",
  ),
  ddThreshold: z.number().min(0).finite().default(3).describe(
    "ddip-hqs-dd: disagreement threshold τ (robust σ)",
  ),
  ddOrderedSubsets: z.boolean().default(false).describe(
    "ddip-hqs-dd: final EM iterations over the ordered subsets (finalOrderedSubsets)",
  ),
  ddSeedThreshold: z.number().min(0).finite().default(0).describe(
    "ddip-hqs-dd: hysteresis seed (robust σ; 0: off; disagreementSeedThreshold)",
  ),
  ddBlend: z.enum(["replace", "smoothed-change"]).default("replace").describe(
    "ddip-hqs-dd: how flagged voxels take the final iterations (disagreementBlend)",
  ),
  ddBlendFwhm: z.number().min(0).finite().default(3).describe(
    "ddip-hqs-dd: FWHM of the smoothed change (mm; disagreementBlendFwhmMm)",
  ),
  samples: z.number().int().min(1).max(64).default(1).describe(
    "DDIP-HQS chains per condition (≥ 2: the row still scores chain 0; the mean and the voxel-wise std are extra fields and figure panels)",
  ),
  provider: z.enum(["auto", ...PRIOR_PROVIDERS]).default("auto").describe(
    "prior runtime (native needs FFI: not in the sandbox)",
  ),
  threads: z.number().int().positive().default(1).describe("onnxruntime-web wasm threads"),
  ablationsAllLevels: z.boolean().default(false).describe(
    "run the ablations and levers in every condition (default: the lowest count, last tracer)",
  ),
  resume: z.boolean().default(false).describe(
    "keep the rows already in <out>/rows.jsonl and run only what is missing",
  ),
});

/** The validated parameters. */
export type Params = z.output<typeof params>;

/**
 * The settings of a run: the parameters with their quick/full defaults resolved, and where the
 * run reads and writes (the BrainWeb folder, the prior, the output folder) and its seed.
 */
export function experimentSettings(
  p: Params,
  where: { model: string; brainweb: string; out: string; seed: number },
): ExperimentSettings {
  const quick = p.quick;
  const steps = p.steps ?? (quick ? 5 : DDIP_CPU_PRESET.steps!);
  const ddip: DdipConfigInput = {
    steps,
    fineTuneIterations: p.fineTune ?? (quick ? 1 : 2),
    ...(p.lr !== undefined ? { lr: p.lr } : {}),
    ...(p.beta !== undefined ? { beta: p.beta } : {}),
    ...(p.startT !== undefined ? { startT: p.startT } : {}),
    ...(p.scaleHeadroom !== undefined ? { scaleHeadroom: p.scaleHeadroom } : {}),
    ...(p.emIterations !== undefined ? { emIterations: p.emIterations } : {}),
    ...(p.xStepSubsets ? { xStepOrderedSubsets: true } : {}),
  };
  return {
    quick,
    model: where.model,
    brainweb: where.brainweb,
    subjects: quick ? p.subjects.slice(0, 1) : p.subjects,
    tracers: p.tracers,
    counts: p.counts,
    realisations: p.realisations ?? (quick ? 1 : 2),
    stacks: p.stacks,
    simulators: p.simulators,
    methods: p.methods,
    seed: where.seed,
    ddip,
    // the NLL ablation gets its own learning rate: on validation subject 50 it did best at 1e-4
    // (25.7 dB) and degraded at 5e-4 (20.8) and 2e-3 (16.0), see docs/results.md
    nll: { ...ddip, ...(p.nllSteps !== undefined ? { steps: p.nllSteps } : {}), lr: p.nllLr },
    levers: {
      dc: { finalEmIterations: p.dcIterations, finalBeta: p.dcBeta, finalEmRegion: "all" },
      late: { betaEnd: p.betaEnd },
      dd: {
        finalEmIterations: p.ddIterations,
        finalBeta: p.ddBeta,
        finalEmRegion: "disagreement",
        disagreementFwhmMm: p.ddFwhm,
        disagreementThreshold: p.ddThreshold,
        finalOrderedSubsets: p.ddOrderedSubsets,
        disagreementSeedThreshold: p.ddSeedThreshold,
        disagreementBlend: p.ddBlend,
        disagreementBlendFwhmMm: p.ddBlendFwhm,
      },
    },
    samples: p.samples,
    osem: { subsets: 8, iterations: quick ? 8 : 12, fwhmMm: [0, 3, 5, 7, 9] },
    psfMm: p.psf,
    rdp: { betas: quick ? [1, 3, 10] : [0.3, 1, 3, 10, 30], iterations: quick ? 6 : 10 },
    ablationsAllLevels: p.ablationsAllLevels,
    out: where.out,
    resume: p.resume,
    provider: p.provider,
    threads: p.threads,
  };
}

/** The methods a condition runs: the ablations only where asked (quick: one condition). */
function methodsFor(s: ExperimentSettings, tracer: string, counts: number): string[] {
  return s.methods.filter((k) =>
    !ABLATIONS.includes(k) || s.ablationsAllLevels ||
    (counts === Math.min(...s.counts) && tracer === s.tracers[s.tracers.length - 1])
  );
}

/**
 * Runs the experiment with the context's parameters, inputs and seed: every missing condition,
 * then the tables and figures. `options.prior` replaces loading the prior from `ctx.modelsDir`;
 * `options.command` is the command line recorded in the results.
 */
export async function runExperiment(
  ctx: RecipeContext<Params>,
  options: { prior?: ScorePrior | null; command?: string } = {},
): Promise<{ rows: Row[]; markdown: string }> {
  const log = (m: string) => ctx.log(m);
  const t0 = performance.now();
  const s = experimentSettings(ctx.params, {
    model: ctx.modelsDir ?? "",
    brainweb: ctx.inDir ?? "",
    out: ctx.outDir,
    seed: ctx.seed,
  });
  // wall-clock seconds are in the rows and the tables; the figures are reproducible
  ctx.nondeterministic("rows.jsonl", "results.json", "results.md");
  const gpu = await ctx.gpu();
  const diffusion = diffusionMethods(s);
  const needsPrior = s.methods.some((m) => m in diffusion);
  let prior = options.prior ?? null;
  if (!prior && needsPrior) {
    if (!ctx.modelsDir) {
      throw new RecipeInputError(
        `methods ${
          s.methods.filter((m) => m in diffusion).join(", ")
        } need a prior: pass its folder as a model (--models models/fdg_prior)`,
      );
    }
    prior = await loadPrior(ctx.modelsDir, {
      adapter: gpu.adapter,
      numThreads: s.threads,
      provider: s.provider as PriorProvider | "auto",
    });
  }
  const fallback = !ctx.inDir;
  if (fallback) {
    log(
      "NOTE: no BrainWeb folder among the inputs: using the procedural brain phantom instead of BrainWeb 51–53",
    );
  }
  log(
    `DDIP ${JSON.stringify(s.ddip)}; simulators ${s.simulators.join(",")}; subjects ${
      s.subjects.join(",")
    }; tracers ${s.tracers.join(",")}; counts/slice ${
      s.counts.join(",")
    }; realisations ${s.realisations}`,
  );
  const rowsPath = `${s.out}/rows.jsonl`;
  const rows: Row[] = s.resume ? await readRows(rowsPath, log) : [];
  if (s.resume) log(`resuming: ${rows.length} rows already in ${rowsPath}`);
  // rewritten whole and atomically after every condition: a stopped run keeps every finished one
  const saveRows = () =>
    ctx.writeOutput("rows.jsonl", rows.map((x) => JSON.stringify(x) + "\n").join(""));
  await saveRows();
  const total = s.subjects.length * s.stacks * s.simulators.length * s.tracers.length *
    s.counts.length * s.realisations;
  let done = 0;
  ctx.progress(0, total);
  const figureTracers = new Set<string>();
  for (const id of s.subjects) {
    const ts = performance.now();
    const subject = await loadSubject(s, id, fallback);
    const study = subject.study;
    log(
      `subject ${id}: simulated in ${
        ((performance.now() - ts) / 1000).toFixed(1)
      } s, ${study.lesions.length} lesions`,
    );
    const nz = study.grid.shape[2];
    const dz = study.grid.voxelSizeMm[2];
    // hot lesions, largest first (CRC of a 3 mm sphere on 2 mm voxels says little)
    const hot = study.lesions.filter((l) => l.petFactor > 1).sort((a, b) =>
      b.radiusMm - a.radiusMm
    );
    const chosen = hot.slice(0, s.stacks);
    if (chosen.length === 0) throw new Error(`subject ${id} has no hot lesion`);
    const cache: FineCache = new Map();
    for (const lesion of chosen) {
      const k = Math.round((lesion.centreMm[2] - study.grid.originMm[2]) / dz);
      const centre = Math.min(nz - 2, Math.max(1, k));
      for (const simulator of s.simulators) {
        for (const tracer of s.tracers) {
          for (const counts of s.counts) {
            for (let r = 0; r < s.realisations; r++) {
              const info = { subject, lesion, centre, tracer, counts, realisation: r, simulator };
              const key = conditionKey({ ...info, subject: id });
              const finished = new Set(
                rows.filter((x) => conditionKey(x) === key).map((x) => x.method),
              );
              const todo = methodsFor(s, tracer, counts).filter((m) => !finished.has(m));
              const figKey = `${simulator}.${tracer}`;
              const isFigure = !figureTracers.has(figKey) && counts === Math.min(...s.counts) &&
                r === 0;
              if (isFigure) figureTracers.add(figKey);
              if (todo.length === 0) {
                ctx.progress(++done, total);
                continue;
              }
              const fig = isFigure ? new Map<string, Float32Array>() : null;
              const fresh = await runCondition(gpu, prior, s, info, todo, log, cache, fig);
              rows.push(...fresh);
              await saveRows();
              for (const [k, img] of fig ?? []) {
                await ctx.writeOutput(
                  `fig/${figKey}.${k}.npy`,
                  encodeNpy({ data: img, shape: [128, 128, 3] }),
                );
              }
              ctx.progress(++done, total);
            }
          }
        }
      }
    }
  }
  await figures(ctx, s, figureTracers);
  const minutes = (performance.now() - t0) / 60000;
  const labels: Record<string, string> = {
    "osem": "OSEM + filter (best)",
    "map-rdp": "MAP-EM RDP (best β)",
    ...Object.fromEntries(Object.entries(diffusion).map(([k, v]) => [k, v.label])),
  };
  const cmd = options.command ?? "petrel run experiments/tracer_transfer/recipe.ts";
  const md = `# Tracer transfer (${s.quick ? "quick" : "full"})\n\nCommand: \`${cmd}\`\n\n` +
    `Prior: \`${s.model}\`${
      fallback ? " — PROCEDURAL PHANTOM (BrainWeb absent)" : ""
    }; DDIP config ${JSON.stringify(s.ddip)}; prior on ${
      prior?.provider ?? "—"
    }; OSEM ${s.osem.subsets} subsets × ${s.osem.iterations} its, FWHM ${
      s.osem.fwhmMm.join("/")
    } mm; MAP-RDP β ${
      s.rdp.betas.join("/")
    } (activity in counts), ${s.rdp.iterations} its (8 subsets); resolution model ${
      s.psfMm > 0 ? `${s.psfMm} mm FWHM in-plane, every method` : "none"
    }.\n` +
    `Wall time ${minutes.toFixed(1)} min.\n` + table(rows, labels);
  await ctx.writeOutput("results.md", md);
  await ctx.writeOutput(
    "results.json",
    JSON.stringify({ command: cmd, settings: s, provider: prior?.provider, rows }, null, 1),
  );
  if (!options.prior) await prior?.release();
  return { rows, markdown: md };
}

/** Centre slice of truth, MR and each method, one shared window per tracer (MR its own). */
async function figures(
  ctx: RecipeContext<Params>,
  s: ExperimentSettings,
  keys: Set<string>,
): Promise<void> {
  for (const figKey of keys) {
    const fig = new Map<string, Float32Array>();
    const order = ["truth", "mr", ...s.methods, "ddip-hqs-std"];
    for (const k of order) {
      const path = `${ctx.outDir}/fig/${figKey}.${k}.npy`;
      if (await Deno.stat(path).then(() => true, () => false)) {
        fig.set(k, Float32Array.from((await readNpy(path)).data));
      }
    }
    if (!fig.has("truth")) continue;
    let max = 0;
    for (const v of fig.get("truth")!) max = Math.max(max, v);
    const name = figKey.startsWith("fine.") ? figKey.slice(5) : figKey;
    const raster = renderMontage(
      order.filter((k) => fig.has(k)).map((k) => ({
        data: fig.get(k)!,
        shape: [128, 128, 3],
        title: k.toUpperCase(),
        window: k === "mr" || k.endsWith("-std") ? undefined : { min: 0, max },
        colormap: k === "mr" ? "grey" as const : undefined,
      })),
      { colormap: "inferno", slices: [1], columns: 4 },
    );
    await ctx.writeOutput(`${name}.png`, encodePng(raster));
  }
}

/** The recipe (`petrel run experiments/tracer_transfer/recipe.ts`). */
export default defineRecipe({
  description:
    "DDIP-HQS tracer-transfer experiment (FDG prior → FDG and amyloid-negative): BrainWeb labels from --in (else the procedural phantom), the prior from --models.",
  params,
  run: async (ctx) => {
    await runExperiment(ctx);
  },
});
