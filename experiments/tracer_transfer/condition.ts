/**
 * One condition of the tracer-transfer experiment (subject × stack × tracer × count level ×
 * noise realisation × simulator): simulate the stack's data, reconstruct it with every method
 * asked for, and score each image (PSNR, SSIM, NRMSE against the truth; recovery and CRC of every
 * lesion in the stack). No module state: everything comes in through {@linkcode ExperimentSettings}.
 *
 * Simulators:
 * - `"fine"` (default): the truth simulated on a 4× finer grid (0.52 mm) from the 0.5 mm labels,
 *   line integrals along the LORs in 0.5 mm steps with 4 axial sub-lines per plane, attenuation
 *   from the fine μ-map, a 4 mm radial detector blur, ±5 % normalisation, randoms and scatter
 *   (`core/sim/fine.ts`); never the reconstruction operator. The scoring truth is the fine truth
 *   box-averaged onto the reconstruction grid.
 * - `"operator"`: the reconstruction's own forward model on the 2.086 mm truth (the inverse crime
 *   that flatters every method), kept as a second row so the inflation is visible.
 *
 * @module
 */

import type { GpuContext } from "../../core/gpu/context.ts";
import { centredGrid, type ImageGrid, imageGrid } from "../../core/geometry/grid.ts";
import { MMR_VOXEL_MM, mmrLike2d } from "../../core/geometry/scanner.ts";
import { ringForwardModel } from "../../core/model/forward_model.ts";
import { PoissonLikelihood } from "../../core/model/likelihood.ts";
import { simulateCounts } from "../../core/model/simulate.ts";
import type { ScorePrior } from "../../core/diffusion/prior.ts";
import {
  type DdipConfigInput,
  type DdipMethod,
  ddipStack,
  mlemInit,
  stackGeometry,
  stackSlab,
} from "../../core/recon/ddip/mod.ts";
import { mapRdpSweep, osemSweep, type Sweep } from "../../core/recon/sweeps.ts";
import { brainPhantomStudy } from "../../core/sim/phantom_brain.ts";
import { readLabelVolume } from "../../core/sim/dataset.ts";
import { type Lesion, type SimulatedStudy, simulateStudy } from "../../core/sim/simulate.ts";
import { boxAverage } from "../../core/sim/downsample.ts";
import { fineLineIntegrals, radialBlur, simulateFineCounts } from "../../core/sim/fine.ts";
import type { TracerName } from "../../core/sim/tracers.ts";
import type { LabelVolume } from "../../core/sim/labels.ts";
import { Rng, subSeed } from "../../core/random.ts";
import { nrmse, psnr, ssim } from "../../core/metrics/image.ts";
import { contrastRecovery, roiMean } from "../../core/metrics/roi.ts";
import type { LesionRow, Row } from "./report.ts";

/** The simulators a condition can use. */
export const SIMULATORS = ["fine", "operator"] as const;
/** A simulator name. */
export type Simulator = typeof SIMULATORS[number];

/** Everything an experiment run needs (what the CLI parses). */
export interface ExperimentSettings {
  quick: boolean;
  model: string;
  brainweb: string;
  subjects: string[];
  tracers: TracerName[];
  counts: number[];
  realisations: number;
  stacks: number;
  simulators: Simulator[];
  methods: string[];
  seed: number;
  ddip: DdipConfigInput;
  nll: DdipConfigInput;
  /** Overrides of the lever rows ("ddip-hqs-dc", "ddip-hqs-late", "ddip-hqs-dd"); "ddip-hqs-chain" sets finalEmIterations 0. */
  levers: { dc: DdipConfigInput; late: DdipConfigInput; dd: DdipConfigInput };
  /**
   * Chains per DDIP-HQS reconstruction. With ≥ 2 the row still scores chain 0 (the single-seed
   * image); the mean image and the voxel-wise std over the chains are extra fields
   * ({@linkcode spreadFields}, per lesion `sd`) and figure panels.
   */
  samples: number;
  osem: { subsets: number; iterations: number; fwhmMm: number[] };
  /**
   * In-plane FWHM (mm) of the reconstruction model's image-space resolution model, for every
   * method (0: none). The fine simulator blurs the data by a 4 mm radial detector response.
   */
  psfMm: number;
  rdp: { betas: number[]; iterations: number };
  ablationsAllLevels: boolean;
  out: string;
  resume: boolean;
  provider: string;
  threads: number;
}

/** The diffusion rows: method, MR use and config overrides. */
export function diffusionMethods(
  s: ExperimentSettings,
): Record<string, { method: DdipMethod; useMr: boolean; label: string; config: DdipConfigInput }> {
  return {
    "dds": { method: "dds", useMr: true, label: "DDS (no fine-tuning)", config: s.ddip },
    "ddip-hqs": { method: "ddip-hqs", useMr: true, label: "DDIP-HQS", config: s.ddip },
    "ddip-hqs-nomr": {
      method: "ddip-hqs",
      useMr: false,
      label: "DDIP-HQS, no MR",
      config: s.ddip,
    },
    "ddip-nll": {
      method: "ddip-nll",
      useMr: true,
      label: "DDIP, NLL loss (no HQS)",
      config: s.nll,
    },
    "ddip-hqs-chain": {
      method: "ddip-hqs",
      useMr: true,
      label: "DDIP-HQS, chain alone (no final step)",
      config: { ...s.ddip, finalEmIterations: 0 },
    },
    "ddip-hqs-dc": {
      method: "ddip-hqs",
      useMr: true,
      label: "DDIP-HQS + final EM",
      config: { ...s.ddip, ...s.levers.dc },
    },
    "ddip-hqs-late": {
      method: "ddip-hqs",
      useMr: true,
      label: "DDIP-HQS, weaker late coupling",
      config: { ...s.ddip, ...s.levers.late },
    },
    "ddip-hqs-dd": {
      method: "ddip-hqs",
      useMr: true,
      label: "DDIP-HQS + final EM where data disagree",
      config: { ...s.ddip, ...s.levers.dd },
    },
  };
}

/** A subject's study on the 128² × 87 grid of 2.086 mm, and its label volume (BrainWeb). */
export interface Subject {
  id: string;
  study: SimulatedStudy;
  labels: LabelVolume | null;
  simSeed: number;
}

/** Simulates subject `id` (BrainWeb labels, or the procedural phantom as a fallback). */
export async function loadSubject(
  s: ExperimentSettings,
  id: string,
  fallback: boolean,
): Promise<Subject> {
  const grid = centredGrid([128, 128, 87], [MMR_VOXEL_MM, MMR_VOXEL_MM, MMR_VOXEL_MM]);
  const simSeed = subSeed(s.seed, `study-${id}`);
  const opts = {
    grid,
    tracers: ["fdg", "amyloid_neg"] as TracerName[],
    seed: simSeed,
    lesions: 10,
    mu: true,
  };
  if (fallback) {
    return {
      id,
      study: brainPhantomStudy({ ...opts, seed: Number(id) || 0, dims: 3 }),
      labels: null,
      simSeed,
    };
  }
  const vol = await readLabelVolume(`${s.brainweb}/subject${id}_crisp.nii.gz`);
  return { id, study: simulateStudy(vol, { ...opts, placement: "head" }), labels: vol, simSeed };
}

/** What varies between conditions of one subject. */
export interface ConditionInfo {
  subject: Subject;
  lesion: Lesion;
  centre: number;
  tracer: TracerName;
  counts: number;
  realisation: number;
  simulator: Simulator;
}

/** Fine-grid factor and sampling of the fine simulator. */
const FINE = { factor: 4, stepMm: 0.5, axialSamples: 4, detectorFwhmMm: 4 };

/**
 * The fine truth of a stack (both tracers and μ on a grid 4× finer than the reconstruction's,
 * one fine voxel of margin above and below the stack), on stack-local coordinates. From the
 * labels when the subject has them; the procedural phantom (no labels) is upsampled.
 */
export function fineStack(
  subject: Subject,
  first: number,
  tracers: readonly TracerName[],
): { grid: ImageGrid; activity: Record<string, Float32Array>; mu: Float32Array } {
  const g = subject.study.grid;
  const [nx, ny] = g.shape;
  const F = FINE.factor;
  const dz = g.voxelSizeMm[2];
  const f: [number, number, number] = [g.voxelSizeMm[0] / F, g.voxelSizeMm[1] / F, dz / F];
  const shape: [number, number, number] = [nx * F, ny * F, 3 * F + 2];
  const origin: [number, number, number] = [
    g.originMm[0] - g.voxelSizeMm[0] / 2 + f[0] / 2,
    g.originMm[1] - g.voxelSizeMm[1] / 2 + f[1] / 2,
    g.originMm[2] + first * dz - dz / 2 + f[2] / 2 - f[2],
  ];
  const volGrid = imageGrid({ shape, voxelSizeMm: f, originMm: origin });
  // stack-local: the centre slice (first + 1) at z = 0, as the stack's direct planes
  const local = imageGrid({
    shape,
    voxelSizeMm: f,
    originMm: [origin[0], origin[1], origin[2] - (g.originMm[2] + (first + 1) * dz)],
  });
  if (subject.labels) {
    const fine = simulateStudy(subject.labels, {
      grid: volGrid,
      tracers,
      seed: subject.simSeed,
      lesions: subject.study.lesions,
      blobs: subject.study.blobs,
      mu: true,
      mr: false,
      labelFractions: false,
      placement: "head",
    });
    const activity: Record<string, Float32Array> = {};
    for (const t of tracers) activity[t] = fine.activity[t]!;
    return { grid: local, activity, mu: fine.mu! };
  }
  // no labels: nearest-neighbour upsampling of the coarse study (a fallback for tests only)
  const up = (v: Float32Array) => {
    const out = new Float32Array(shape[0] * shape[1] * shape[2]);
    for (let k = 0; k < shape[2]; k++) {
      const kk = Math.min(g.shape[2] - 1, Math.max(0, first + Math.floor((k - 1) / F)));
      for (let j = 0; j < shape[1]; j++) {
        for (let i = 0; i < shape[0]; i++) {
          out[i + shape[0] * (j + shape[1] * k)] =
            v[Math.floor(i / F) + nx * (Math.floor(j / F) + ny * kk)];
        }
      }
    }
    return out;
  };
  const activity: Record<string, Float32Array> = {};
  for (const t of tracers) activity[t] = up(subject.study.activity[t]!);
  return { grid: local, activity, mu: up(subject.study.mu!) };
}

/** Lesion and local-background masks (3 slices) of one lesion; null if it misses the stack. */
export function lesionMasks(
  study: SimulatedStudy,
  lesion: Lesion,
  first: number,
): { lesion: Uint8Array; background: Uint8Array } | null {
  const g = study.grid;
  const [nx, ny] = g.shape;
  const plane = nx * ny;
  const les = new Uint8Array(3 * plane);
  const bg = new Uint8Array(3 * plane);
  const c = lesion.centreMm;
  const dist = (i: number, j: number, k: number) =>
    Math.hypot(
      g.originMm[0] + i * g.voxelSizeMm[0] - c[0],
      g.originMm[1] + j * g.voxelSizeMm[1] - c[1],
      g.originMm[2] + k * g.voxelSizeMm[2] - c[2],
    );
  // background tissue: the majority of grey (2) / white (3) matter under the lesion sphere
  const votes = [0, 0, 0, 0];
  let inLesion = 0;
  for (let d = 0; d < 3; d++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        if (dist(i, j, first + d) <= lesion.radiusMm) {
          les[d * plane + i + nx * j] = 1;
          inLesion++;
          votes[study.labels![i + nx * (j + ny * (first + d))]]++;
        }
      }
    }
  }
  if (inLesion < 3) return null;
  const tissue = votes[3] > votes[2] ? 3 : 2;
  let inBg = 0;
  for (let d = 0; d < 3; d++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const r = dist(i, j, first + d);
        if (
          r >= lesion.radiusMm + 8 && r <= 25 &&
          study.labels![i + nx * (j + ny * (first + d))] === tissue
        ) {
          bg[d * plane + i + nx * j] = 1;
          inBg++;
        }
      }
    }
  }
  return inBg < 10 ? null : { lesion: les, background: bg };
}

/** The class of a lesion: hot/cold × whether the MR shows it. */
export function lesionKind(l: Lesion): string {
  return `${l.petFactor > 1 ? "hot" : "cold"} ${
    (l.mrFactor ?? 1) !== 1 ? "mr-visible" : "mr-invisible"
  }`;
}

/**
 * Row fields of a reconstruction over several seeds: the mean image's PSNR and SSIM, the spread's
 * mean over all voxels and its median over the head (voxels where the mean image exceeds 10 % of
 * its maximum, the support of the disagreement lever's σ), for comparison with each lesion's.
 */
export function spreadFields(
  truth: Float32Array,
  spread: { mean: Float32Array; std: Float32Array },
  shape: number[],
): { meanPsnr: number; meanSsim: number; meanStd: number; sdMedian: number } {
  const { mean, std } = spread;
  let max = 0;
  for (const v of mean) max = Math.max(max, v);
  const head = Float64Array.from(std.filter((_, j) => mean[j] > 0.1 * max)).sort();
  const n = head.length;
  const sdMedian = n === 0
    ? NaN
    : n % 2
    ? head[(n - 1) / 2]
    : 0.5 * (head[n / 2 - 1] + head[n / 2]);
  return {
    meanPsnr: psnr(truth, mean),
    meanSsim: ssim(truth, mean, { shape }),
    meanStd: std.reduce((a, b) => a + b, 0) / std.length,
    sdMedian,
  };
}

function best(sweep: Sweep, truth: Float32Array): { image: Float32Array; setting: string } {
  let bestV = -Infinity;
  let out = sweep.images[0];
  for (const s of sweep.images) {
    const v = psnr(truth, s.image);
    if (v > bestV) {
      bestV = v;
      out = s;
    }
  }
  return {
    image: out.image,
    setting: Object.entries(out.setting).map(([k, v]) => `${k}=${v}`).join(" "),
  };
}

/**
 * Per subject stack: the scoring truth (the fine truth box-averaged onto the stack grid) and the
 * fine line integrals of every tracer and the attenuation (they do not depend on counts or noise).
 */
export type FineCache = Map<
  string,
  {
    truth: Record<string, Float32Array>;
    integral: Record<string, Float32Array>;
    attenuation: Float32Array;
  }
>;

/** One condition's data and scoring references ({@linkcode simulateCondition}). */
export interface ConditionData {
  /** The stack's data and forward model (the caller destroys both `likelihood` and its model). */
  likelihood: PoissonLikelihood;
  /** The prompts the likelihood holds. */
  counts: Float32Array;
  grid: ImageGrid;
  /** The MR stack on the prior's scale. */
  mr: Float32Array;
  /** The scoring truth in the units of the reconstructions. */
  truth: Float32Array;
  /** The seed of the condition's noise (and of its DDIP chains). */
  noiseSeed: number;
  /** First slice of the stack in the volume. */
  first: number;
  /** Masks of the lesion the stack is centred on (null when it misses the stack). */
  target: { lesion: Uint8Array; background: Uint8Array } | null;
  /** Every lesion reaching into the stack, with its masks. */
  others: { l: Lesion; m: { lesion: Uint8Array; background: Uint8Array } }[];
}

/**
 * Simulates one condition's data (the fine simulator or the reconstruction operator, see the
 * module notes) and its scoring truth and lesion masks: what {@linkcode runCondition} reconstructs.
 */
export async function simulateCondition(
  ctx: GpuContext,
  s: ExperimentSettings,
  info: ConditionInfo,
  cache: FineCache,
): Promise<ConditionData> {
  const study = info.subject.study;
  const g = study.grid;
  const plane = g.shape[0] * g.shape[1];
  const { grid, scanner, first } = stackGeometry(g, mmrLike2d(), info.centre);
  let mrMax = 0;
  for (const v of study.mr!) mrMax = Math.max(mrMax, v);
  const mr = Float32Array.from(stackSlab(study.mr!, plane, first), (v) => v / mrMax);
  const mu = stackSlab(study.mu!, plane, first);
  // normalisation: seeded ±5 % bin efficiencies
  const normRng = new Rng(subSeed(s.seed, "norm"));
  const norm = Float32Array.from(
    { length: scanner.sinogramShape.reduce((a, b) => a * b, 1) },
    () => Math.max(0.5, 1 + 0.05 * normRng.normal()),
  );
  const model = ringForwardModel(ctx, scanner, {
    grid,
    subsets: s.osem.subsets,
    muMap: mu,
    multiplicative: norm,
    ...(s.psfMm > 0 ? { resolutionFwhmMm: [s.psfMm, s.psfMm, 0] as const } : {}),
  });
  const noiseSeed = subSeed(
    s.seed,
    `${info.subject.id}-${info.centre}-${info.tracer}-${info.counts}-${info.realisation}`,
  );
  const totalTrues = 3 * info.counts;
  let counts: Float32Array, truthC: Float32Array;
  if (info.simulator === "fine") {
    const key = `${info.subject.id}|${info.centre}`;
    const binMm = Math.PI * scanner.spec.radiusMm / scanner.spec.crystalsPerRing;
    const sampling = {
      stepMm: FINE.stepMm,
      axialWidthMm: g.voxelSizeMm[2],
      axialSamples: FINE.axialSamples,
    };
    if (!cache.has(key)) {
      // one pass over the fine truth per stack: every tracer's integrals and the attenuation
      const fine = fineStack(info.subject, first, s.tracers);
      const li = fineLineIntegrals(
        s.tracers.map((t) => fine.activity[t]),
        fine.grid,
        scanner.lors(),
        { ...sampling, mu: fine.mu },
      );
      const truth: Record<string, Float32Array> = {};
      const integral: Record<string, Float32Array> = {};
      s.tracers.forEach((t, i) => {
        truth[t] = boxAverage(fine.activity[t], fine.grid, grid);
        integral[t] = li.integrals[i];
      });
      cache.set(key, { truth, integral, attenuation: li.attenuation! });
    }
    const fine = cache.get(key)!;
    const sim = simulateFineCounts({
      activity: fine.truth[info.tracer], // unused: the integrals are given
      grid,
      lors: scanner.lors(),
      lineIntegrals: { integral: fine.integral[info.tracer], attenuation: fine.attenuation },
      radialBlurFwhmBins: FINE.detectorFwhmMm / binMm,
      normalisation: norm,
      trueCounts: totalTrues,
      randomsFraction: 0.2,
      scatterFraction: 0.3,
      seed: noiseSeed,
    });
    model.setAdditive(sim.additive);
    counts = sim.prompts;
    truthC = Float32Array.from(fine.truth[info.tracer], (v) => v * sim.scale);
  } else {
    const truth = stackSlab(study.activity[info.tracer]!, plane, first);
    const tx = ctx.array(grid.shape, truth);
    const trues = await model.expectedTrues(tx);
    // prompts = trues + 20 % randoms + 30 % scatter (fractions of the prompts)
    const scat = radialBlur(trues, scanner.spec.radialBins, 12 * 2.3548200450309493);
    let sumS = 0;
    for (const v of scat) sumS += v;
    const prompts = totalTrues / 0.5;
    const additive = new Float32Array(trues.length);
    for (let i = 0; i < additive.length; i++) {
      additive[i] = 0.2 * prompts / additive.length + 0.3 * prompts * scat[i] / sumS;
    }
    const sim = await simulateCounts(model, tx, {
      trueCounts: totalTrues,
      additive,
      seed: noiseSeed,
    });
    tx.destroy();
    model.setAdditive(sim.additive);
    counts = sim.counts;
    truthC = Float32Array.from(truth, (v) => v * sim.scale);
  }
  const likelihood = new PoissonLikelihood(model, counts);
  const target = lesionMasks(study, info.lesion, first);
  const others = study.lesions.map((l) => ({ l, m: lesionMasks(study, l, first)! }))
    .filter((x) => x.m !== null);
  return { likelihood, counts, grid, mr, truth: truthC, noiseSeed, first, target, others };
}

/**
 * Runs the methods `todo` on one condition; returns one row per method and, when `figure` is
 * given, fills it with the images (and the truth, MR and DDIP-HQS std).
 */
export async function runCondition(
  ctx: GpuContext,
  prior: ScorePrior | null,
  s: ExperimentSettings,
  info: ConditionInfo,
  todo: readonly string[],
  log: (m: string) => void,
  cache: FineCache,
  figure: Map<string, Float32Array> | null = null,
): Promise<Row[]> {
  const { likelihood: lik, grid, mr, truth: truthC, noiseSeed, target, others } =
    await simulateCondition(ctx, s, info, cache);
  const model = lik.model;
  const g = info.subject.study.grid;
  const shape = [g.shape[0], g.shape[1], 3];
  const cond =
    `${info.simulator} ${info.subject.id} c${info.centre} ${info.tracer} ${info.counts}/slice r${info.realisation}`;
  if (target) {
    const tl = roiMean(truthC, target.lesion), tb = roiMean(truthC, target.background);
    log(
      `${cond}: lesion r=${info.lesion.radiusMm.toFixed(1)} mm ×${
        info.lesion.petFactor.toFixed(2)
      } (${lesionKind(info.lesion)}), true ratio ${
        (tl / tb).toFixed(2)
      }; ${others.length} lesions in the stack`,
    );
  }
  const rows: Row[] = [];
  const add = (
    method: string,
    image: Float32Array,
    setting: string,
    seconds: number,
    extra = {},
    spread?: { mean: Float32Array; std: Float32Array },
  ) => {
    const lesions: LesionRow[] = others.map(({ l, m }) => ({
      kind: lesionKind(l),
      radiusMm: l.radiusMm,
      recovery: roiMean(image, m!.lesion) / roiMean(truthC, m!.lesion),
      crc: contrastRecovery(image, { lesion: m!.lesion, background: m!.background, truth: truthC }),
      ...(spread
        ? {
          meanRecovery: roiMean(spread.mean, m!.lesion) / roiMean(truthC, m!.lesion),
          sd: roiMean(spread.std, m!.lesion),
          sdBackground: roiMean(spread.std, m!.background),
        }
        : {}),
    }));
    const row: Row = {
      subject: info.subject.id,
      centre: info.centre,
      tracer: info.tracer,
      counts: info.counts,
      realisation: info.realisation,
      simulator: info.simulator,
      method,
      setting,
      psnr: psnr(truthC, image),
      ssim: ssim(truthC, image, { shape }),
      nrmse: nrmse(truthC, image),
      crc: target
        ? contrastRecovery(image, {
          lesion: target.lesion,
          background: target.background,
          truth: truthC,
        })
        : NaN,
      seconds,
      lesions,
      ...extra,
      ...(spread ? spreadFields(truthC, spread, shape) : {}),
    };
    rows.push(row);
    figure?.set(method, image);
    log(
      `${cond} ${method.padEnd(14)} PSNR ${row.psnr.toFixed(2)} SSIM ${row.ssim.toFixed(4)} CRC ${
        row.crc.toFixed(3)
      } ${seconds.toFixed(1)} s ${setting}`,
    );
  };
  try {
    if (todo.includes("osem")) {
      const sw = await osemSweep(ctx, lik, grid, {
        iterations: s.osem.iterations,
        fwhmMm: s.osem.fwhmMm,
      });
      const b = best(sw, truthC);
      add("osem", b.image, b.setting, sw.ms / 1000);
    }
    if (todo.includes("map-rdp")) {
      const sw = await mapRdpSweep(ctx, lik, grid, s.rdp);
      const b = best(sw, truthC);
      add("map-rdp", b.image, b.setting, sw.ms / 1000);
    }
    const diffusion = diffusionMethods(s);
    const diff = todo.filter((k) => k in diffusion);
    if (diff.length) {
      if (!prior) throw new Error(`methods ${diff.join(", ")} need a prior`);
      const t0 = performance.now();
      const init = await mlemInit(lik, 20);
      const initS = (performance.now() - t0) / 1000;
      let truthMax = 0;
      for (const v of truthC) truthMax = Math.max(truthMax, v);
      for (const key of diff) {
        const d = diffusion[key];
        const t1 = performance.now();
        const r = await ddipStack(prior, { likelihood: lik, grid, mr }, {
          config: { ...d.config, seed: noiseSeed },
          method: d.method,
          useMr: d.useMr,
          init,
          samples: key === "ddip-hqs" ? s.samples : 1,
        });
        const sec = (performance.now() - t1) / 1000 + initS;
        const tm = r.timings;
        // with samples > 1 the row still scores chain 0 (the single-seed image, so the rows keep
        // their meaning); the mean over the chains and their spread go into extra fields
        const spread = r.std ? { mean: r.image, std: r.std } : undefined;
        const image = r.sampleImages?.[0] ?? r.image;
        if (spread) {
          figure?.set(`${key}-std`, spread.std);
          figure?.set(`${key}-mean`, spread.mean);
        }
        if (r.disagreement) figure?.set(`${key}-disagreement`, r.disagreement);
        add(key, image, `scale=${r.scale.toPrecision(4)}`, sec, {
          scaleRatio: r.scale / truthMax,
          networkS: tm.networkMs / 1000,
          vjpS: tm.vjpMs / 1000,
          emS: tm.emMs / 1000,
          llInit: r.logLikelihood.init,
          ...(spread
            ? { samples: r.samples, llFinalMean: r.logLikelihood.final }
            : { llFinal: r.logLikelihood.final }),
        }, spread);
      }
    }
    figure?.set("truth", truthC);
    figure?.set("mr", mr);
  } finally {
    lik.destroy();
    model.destroy();
  }
  return rows;
}
