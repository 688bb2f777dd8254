/**
 * DDIP-HQS (or DDS) on a whole volume with a diffusion prior from --models (`petrel recon ddip`;
 * the CLI gives it `models/fdg_prior_v4`, the default prior, when no --models is passed).
 *
 * The grid comes from the inputs (`core/io/study.ts`): `mu.nii`'s affine (else `mr.nii`'s); an MR
 * on another grid is resampled onto it. The prior's metadata says which grids it supports
 * (`core/diffusion/grid.ts`). The data may be any span-1 ring sinogram, direct planes or fully 3-D
 * with oblique segments (`prompts.npy` + sidecar, or STIR `prompts.hs`), with `additive`,
 * `norm`/`multiplicative` and `mu` (and the resolution model `resolutionFwhmMm`, the scanner's PSF,
 * when given): the x-step uses that full model over the whole volume once per
 * iteration, the prior works on 3-slice stacks (`ddipJoint`, `core/recon/ddip/joint.ts`).
 *
 * Writes `ddip.nii`, `ddip.png` + `metrics.json` (against `truth.nii` when it is an input),
 * `ddip.json` (deterministic: scale, log-likelihoods, losses, stacks, configuration) and
 * `timings.json` (wall-clock; the one output `petrel verify` does not compare). With `samples` N > 1
 * it runs N chains (seeds `seed`, then `subSeed(seed, "sample-k")`, as `ddipStack` does), writes
 * their voxel-wise mean as `ddip.nii` and their standard deviation as `ddip_std.nii`: where that
 * spread is large, data and prior leave the image uncertain. By default (`finalEmIterations` 20,
 * `finalEmRegion=disagreement`) a final data-consistency x-step is kept only where the data
 * disagree with the chain's output (lesions the MR does not show), and that disagreement is
 * written as `ddip_disagreement.nii`; `--set finalEmIterations=0` runs the chain alone.
 */
import { z } from "zod";
import type { RecipeContext } from "../core/runtime/recipe.ts";
import { RecipeInputError } from "../core/runtime/recipe.ts";
import { findReference, writeReconResults } from "../core/runtime/results.ts";
import {
  PoissonLikelihood,
  RESOLUTION_PARAMS,
  resolutionModel,
  sinogramForwardModel,
} from "../core/model/mod.ts";
import { DDIP_DEFAULTS, DdipOverridesSchema } from "../core/recon/ddip/config.ts";
import { ddipJoint } from "../core/recon/ddip/joint.ts";
import { meanAndStd } from "../core/recon/ddip/stack.ts";
import { subSeed } from "../core/random.ts";
import { loadPrior } from "../core/diffusion/load.ts";
import { readOnnxHeader } from "../core/diffusion/onnx_proto.ts";
import { parsePriorMetadata } from "../core/diffusion/metadata.ts";
import { checkPriorGrid, priorGridSupport } from "../core/diffusion/grid.ts";
import { describeGrid, findNormalisation, readStudy, type StudyFiles } from "../core/io/study.ts";
import { writeNifti } from "../core/io/nifti.ts";

/** The fields' constraints and defaults come from `core/recon/ddip/config.ts` (not copied). */
const F = DdipOverridesSchema.shape;
const D = DDIP_DEFAULTS;

export const description =
  "DDIP-HQS on a whole volume: prompts (+ additive, norm, mu, mr) from --in, prior from --models; grid from mu.nii/mr.nii.";
export const params = z.object({
  method: z.enum(["ddip-hqs", "dds"]).default("ddip-hqs"),
  useMr: z.boolean().default(true).describe("feed the MR channels (needs mr.nii)"),
  steps: F.steps.unwrap().default(D.steps).describe("reverse steps (the paper: 200)"),
  lr: F.lr.unwrap().default(D.lr).describe(
    'AdamW learning rate, or "auto" (lrBudget / AdamW steps: 2e-3 at 25 steps)',
  ),
  beta: F.beta.unwrap().default(D.beta).describe("HQS coupling on the prior's scale"),
  eta: F.eta.unwrap().default(D.eta).describe("DDIM stochasticity"),
  scaleHeadroom: F.scaleHeadroom.unwrap().default(D.scaleHeadroom).describe(
    "automatic intensity scale: headroom over the filtered 99.5th percentile",
  ),
  startT: F.startT.unwrap().default(D.startT),
  fineTuneIterations: F.fineTuneIterations.unwrap().default(D.fineTuneIterations),
  emIterations: F.emIterations.unwrap().default(D.emIterations),
  initIterations: F.initIterations.unwrap().default(D.initIterations).describe(
    "MLEM iterations of the start",
  ),
  betaEnd: F.betaEnd.unwrap().optional().describe(
    "β at the last step (geometric from beta; default constant)",
  ),
  finalEmIterations: F.finalEmIterations.unwrap().default(D.finalEmIterations).describe(
    "x-step iterations pulling the output back to the data (0: none, the paper)",
  ),
  finalBeta: F.finalBeta.unwrap().default(D.finalBeta),
  finalEmRegion: F.finalEmRegion.unwrap().default(D.finalEmRegion).describe(
    '"disagreement": the final iterations act only where the data disagree with the output',
  ),
  disagreementFwhmMm: F.disagreementFwhmMm.unwrap().default(D.disagreementFwhmMm),
  disagreementThreshold: F.disagreementThreshold.unwrap().default(D.disagreementThreshold),
  ...RESOLUTION_PARAMS,
  stackStride: z.number().int().min(1).max(3).default(1).describe(
    "distance between 3-slice stack centres (1: every slice is a stack centre)",
  ),
  samples: z.number().int().min(1).max(64).default(1).describe(
    "chains from different seeds; > 1 writes their mean (ddip.nii) and std (ddip_std.nii)",
  ),
  logEvery: z.number().int().positive().default(5).describe(
    "log the loss and the log-likelihood every N steps",
  ),
  priorThreads: z.number().int().min(1).max(8).default(1).describe(
    "threads of the prior's onnxruntime-web wasm backend: 2 is faster on an otherwise idle machine, stalls for minutes on a loaded one",
  ),
});

type Params = z.infer<typeof params>;

function mmss(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export default async function run(ctx: RecipeContext<Params>): Promise<void> {
  const {
    method,
    useMr,
    stackStride,
    logEvery,
    samples,
    priorThreads,
    resolutionFwhmMm,
    resolutionAxialFwhmMm,
    ...config
  } = ctx.params;
  const t0 = performance.now();
  const log = (m: string) => ctx.log(`[${mmss(performance.now() - t0)}] ${m}`);
  const has = (f: string) => Deno.stat(ctx.inputPath(f)).then((s) => s.isFile, () => false);
  const first = async (names: string[]) => {
    for (const n of names) if (await has(n)) return ctx.inputPath(n);
    return undefined;
  };
  const modelsDir = ctx.modelsDir ??
    ctx.modelPath("denoiser.onnx").replace(/\/[^/]*$/, "");

  log("phase: reading the study");
  const files: StudyFiles = {
    prompts: (await first(["prompts.npy", "prompts.json", "prompts.hs"])) ??
      ctx.inputPath("prompts.npy"),
    additive: await first(["additive.npy", "additive.hs"]),
    multiplicative: await findNormalisation(ctx.inputPath),
    mu: await first(["mu.nii", "mu.nii.gz"]),
    mr: useMr ? await first(["mr.nii", "mr.nii.gz"]) : undefined,
  };
  if (useMr && !files.mr) {
    throw new RecipeInputError(
      `no mr.nii in ${
        ctx.inDir ?? "the inputs"
      }: DDIP feeds the MR to the prior (or pass --set useMr=false)`,
    );
  }
  const study = await readStudy(files);
  const { grid, scanner } = study;
  log(
    `grid ${
      describeGrid(grid)
    } from ${study.gridSource}; ${scanner.spec.name}: ${scanner.planes.length} planes (max ring difference ${scanner.spec.maxRingDifference})${
      study.tof ? `, ${study.tof.bins} TOF bins of ${study.tof.binWidthMm} mm` : ""
    }${study.mrNote ? `; MR ${study.mrNote}` : ""}`,
  );
  // the prior's grid constraints from its metadata, before loading the graphs
  const header = readOnnxHeader(await Deno.readFile(`${modelsDir}/denoiser.onnx`));
  const support = priorGridSupport(parsePriorMetadata(header, `${modelsDir}/denoiser.onnx`));
  try {
    checkPriorGrid(grid, support, `the prior in ${modelsDir}`, {
      fineTune: method === "ddip-hqs" && config.fineTuneIterations > 0,
    });
  } catch (e) {
    throw new RecipeInputError((e as Error).message);
  }

  log(`phase: loading the prior (${modelsDir})`);
  const gpu = await ctx.gpu();
  const prior = await loadPrior(modelsDir, { adapter: gpu.adapter, numThreads: priorThreads });
  const modelOptions = {
    grid,
    muMap: study.mu,
    additive: study.additive,
    multiplicative: study.multiplicative,
    ...resolutionModel({ resolutionFwhmMm, resolutionAxialFwhmMm }),
  };
  // TOF prompts get the TOF model: the chain only meets the model through the x-step's likelihood
  const model = sinogramForwardModel(gpu, scanner, { ...modelOptions, tof: study.tof });
  const likelihood = new PoissonLikelihood(model, study.prompts);
  const mr = study.mr ?? new Float32Array(grid.shape[0] * grid.shape[1] * grid.shape[2]);
  const mrMax = mr.reduce((a, b) => Math.max(a, b), 0) || 1;

  const mrScaled = mr.map((v) => v / mrMax);
  const chain = (seed: number, k: number) =>
    ddipJoint(prior, { likelihood, grid, mr: mrScaled }, {
      method,
      useMr,
      stackStride,
      seed,
      config,
      onPhase: (phase, detail) => {
        if (phase === "mlem") log(`phase: MLEM start: ${detail}`);
        else if (phase === "steps") {
          log(
            `phase: DDIP (${method})${samples > 1 ? `, chain ${k + 1}/${samples}` : ""}: ${detail}`,
          );
          ctx.progress(0, config.steps);
        }
      },
      callbacks: [
        { onIteration: (s) => ctx.progress(s.iteration, s.iterations) },
        {
          every: logEvery,
          needsLogLikelihood: true,
          onIteration: (s) => {
            const st = s as typeof s & { t: number; loss: number; timeLeftMs: number };
            log(
              `step ${s.iteration}/${s.iterations} (t = ${st.t}): loss ${
                Number.isNaN(st.loss) ? "-" : st.loss.toExponential(3)
              }, log-likelihood ${s.logLikelihood!.toExponential(6)}, ETA ${mmss(st.timeLeftMs)}`,
            );
          },
        },
        {
          // the ETA from the first steps on (the median step time settles by step 3)
          onIteration: (s) => {
            if (s.iteration > 3 || s.iteration % logEvery === 0) return;
            const st = s as typeof s & { timeLeftMs: number };
            log(`step ${s.iteration}/${s.iterations}, ETA ${mmss(st.timeLeftMs)}`);
          },
        },
      ],
    });
  const chains = [await chain(ctx.seed, 0)];
  for (let k = 1; k < samples; k++) chains.push(await chain(subSeed(ctx.seed, `sample-${k}`), k));
  let result = chains[0];
  let std: Float32Array | undefined;
  if (samples > 1) {
    const ms = meanAndStd(chains.map((c) => c.image));
    std = ms.std;
    const x = gpu.array([grid.shape[0], grid.shape[1], grid.shape[2]], ms.mean);
    const final = await likelihood.logLikelihood(x);
    x.destroy();
    result = {
      ...result,
      image: ms.mean,
      logLikelihood: { ...result.logLikelihood, final },
      losses: chains.flatMap((c) => c.losses),
    };
  }
  likelihood.destroy();
  model.destroy();

  await writeNifti(`${ctx.outDir}/ddip.nii`, { data: result.image, grid }, {
    description: `petrel DDIP (${method}), ${config.steps} steps`,
  });
  if (std) {
    await writeNifti(`${ctx.outDir}/ddip_std.nii`, { data: std, grid }, {
      description: `petrel DDIP std over ${samples} chains`,
    });
  }
  if (chains[0].disagreement) {
    // where the data disagreed with the chain's output (smoothed change in robust σ; first chain)
    await writeNifti(`${ctx.outDir}/ddip_disagreement.nii`, {
      data: chains[0].disagreement,
      grid,
    }, { description: "petrel DDIP data disagreement (robust sigma)" });
  }
  await writeReconResults({
    outDir: ctx.outDir,
    name: "ddip",
    method: method === "dds" ? "DDS" : "DDIP-HQS",
    params: ctx.params,
    titleParams: ["steps", "beta", "lr", "eta"],
    image: result.image,
    grid,
    logLikelihood: result.logLikelihood.final,
    reference: await findReference(ctx.inputs),
  });
  await ctx.writeJson("ddip.json", {
    method,
    useMr,
    scale: result.scale,
    scaleSource: result.scaleSource,
    stackCentres: result.centres,
    logLikelihood: result.logLikelihood,
    losses: result.losses,
    config: result.config,
    resolutionFwhmMm: resolutionModel({ resolutionFwhmMm, resolutionAxialFwhmMm })
      .resolutionFwhmMm ?? null,
    seed: result.seed,
    samples,
    grid,
    gridSource: study.gridSource,
    mr: study.mrNote ?? null,
    scanner: scanner.spec,
    tof: study.tof ?? null,
  });
  // wall-clock figures differ from run to run: kept apart so that ddip.json stays reproducible
  await ctx.writeJson("timings.json", { ...result.timings, stepMs: result.stepMs });
  ctx.nondeterministic("timings.json"); // recorded in the manifest; `petrel verify` skips it
  log(
    `done: ${result.centres.length} stacks × ${result.timings.steps} steps, ${
      (result.timings.totalMs / 1000).toFixed(1)
    } s (${
      (result.timings.totalMs / Math.max(1, result.timings.steps) / 1000).toFixed(1)
    } s/step incl. init)`,
  );
}
