/**
 * The tracer-transfer experiment of DDIP-HQS (Hashimoto & Gong's simulation study on petrel's
 * data): a score prior trained on FDG reconstructs FDG (in distribution) and amyloid-negative PET
 * (out of distribution) of BrainWeb subjects NOT used in training (51, 52, 53) from low-count
 * mMR-like data with attenuation, normalisation, randoms and scatter, against OSEM + post-filter
 * (best iteration/FWHM), MAP-EM with the relative-difference prior (best β), DDS (no fine-tuning)
 * and the ablations (DDIP without MR, DDIP with the measurement-domain loss instead of HQS).
 *
 * Every reconstruction is a 3-slice stack (three direct 2-D planes) through a hot lesion that is
 * invisible or faint in the MR. The "best" baseline settings are chosen against the truth (an
 * oracle; the most favourable case for the baselines).
 *
 *   deno task experiment --quick     # = deno run -A examples/tracer_transfer.ts --provider native --quick
 *   deno task experiment             # full: 3 subjects × 2 tracers × 2 count levels × 2 realisations
 *
 * Writes `out/tracer_transfer/results.{json,md}` and one PNG per tracer. Every finished
 * condition is appended to `rows.jsonl` at once (its figure images to `fig/*.npy`), so a long run
 * that stops loses at most the condition in flight; `--resume` skips what `rows.jsonl` already
 * holds (same seeds, so the remaining conditions see the data they would have seen). Without
 * `../shared/data/brainweb` it falls back to the procedural phantom and says so.
 *
 * @module
 */

import { Command } from "commander";
import { defaultContext, type GpuContext } from "../core/gpu/context.ts";
import { centredGrid, type ImageGrid } from "../core/geometry/grid.ts";
import { MMR_VOXEL_MM, mmrLike2d } from "../core/geometry/scanner.ts";
import { ringForwardModel } from "../core/model/forward_model.ts";
import { PoissonLikelihood } from "../core/model/likelihood.ts";
import { simulateCounts } from "../core/model/simulate.ts";
import { loadPrior } from "../core/diffusion/load.ts";
import { PRIOR_PROVIDERS, type PriorProvider } from "../core/diffusion/provider.ts";
import type { ScorePrior } from "../core/diffusion/prior.ts";
import {
  DDIP_CPU_PRESET,
  type DdipConfigInput,
  type DdipMethod,
  ddipStack,
  directPlaneScanner,
  mlemInit,
} from "../core/recon/ddip/mod.ts";
import { mapRdpSweep, osemSweep, type Sweep } from "../core/recon/sweeps.ts";
import { brainPhantomStudy } from "../core/sim/phantom_brain.ts";
import { readLabelVolume } from "../core/sim/dataset.ts";
import { type Lesion, type SimulatedStudy, simulateStudy } from "../core/sim/simulate.ts";
import type { TracerName } from "../core/sim/tracers.ts";
import { Rng, subSeed } from "../core/random.ts";
import { nrmse, psnr, ssim } from "../core/metrics/image.ts";
import { contrastRecovery } from "../core/metrics/roi.ts";
import { writePngMontage } from "../core/io/png.ts";
import { writeFileAtomic } from "../core/io/files.ts";
import { readNpy, writeNpy } from "../core/io/npy.ts";

const program = new Command("tracer_transfer")
  .description("DDIP-HQS tracer-transfer experiment (FDG prior → FDG and amyloid-negative)")
  .option("--quick", "small run for a 2-core CPU (< 15 min)", false)
  .option("--model <dir>", "prior directory", "models/fdg_prior")
  .option("--brainweb <dir>", "BrainWeb label volumes", "../shared/data/brainweb")
  .option("--subjects <list>", "held-out subjects", "51,52,53")
  .option("--tracers <list>", "tracers", "fdg,amyloid_neg")
  .option("--counts <list>", "true counts per slice (comma list)", "300000,100000")
  .option("--realisations <n>", "noise realisations (default: quick 1, full 2)")
  .option("--stacks <n>", "stacks per subject, one per hot lesion, largest first (default 1)")
  .option("--steps <n>", "DDIP reverse steps (strided from startT)")
  .option("--fine-tune <n>", "fine-tuning iterations per step")
  .option(
    "--lr <x>",
    "AdamW learning rate of the fine-tuning (default: 2e-3, the CPU preset's, with ≤ 25 steps; else the reference 5e-4)",
  )
  .option("--nll-lr <x>", "learning rate of the NLL ablation (default 1e-4, tuned on subject 50)")
  .option("--beta <x>", "HQS coupling β (default: the reference 0.01)")
  .option("--scale-headroom <x>", "intensity-scale headroom (default: DdipConfig's)")
  .option("--em-iterations <n>", "penalised-EM iterations per x-step (default: the reference 5)")
  .option(
    "--nll-steps <n>",
    "reverse steps of the NLL ablation (default: as --steps; more steps = equal-quality timing)",
  )
  .option(
    "--provider <p>",
    "prior runtime: auto (ORT-web, wasm on a CPU adapter), wasm, webgpu, or native " +
      "(onnxruntime-node, 2.6× faster on a CPU, needs --allow-ffi)",
    "auto",
  )
  .option("--resume", "keep the rows already in <out>/rows.jsonl and run only what is missing")
  .option("--methods <list>", "methods", "osem,map-rdp,dds,ddip-hqs,ddip-hqs-nomr,ddip-nll")
  .option("--seed <n>", "base seed", "2026")
  .option(
    "--threads <n>",
    "onnxruntime-web wasm threads (1: with 2 the VJP graph stalls in Deno, see docs/ddip.md)",
    "1",
  )
  .option(
    "--ablations-all-levels",
    "run the ablations in every condition (default: lowest count level of the last tracer only)",
  )
  .option("--out <dir>", "output directory", "out/tracer_transfer")
  .parse();
const o = program.opts();
const quick = Boolean(o.quick);
const subjects = String(o.subjects).split(",").filter(Boolean);
const tracers = String(o.tracers).split(",").filter(Boolean) as TracerName[];
const countLevels = String(o.counts).split(",").map(Number);
const realisations = Number(o.realisations ?? (quick ? 1 : 2));
const stacksPerSubject = Number(o.stacks ?? 1);
const methods = String(o.methods).split(",").filter(Boolean);
const seed = Number(o.seed);
const outDir = String(o.out);
const usedSubjects = quick ? subjects.slice(0, 1) : subjects;
const steps = Number(o.steps ?? (quick ? 5 : DDIP_CPU_PRESET.steps));
const ddipCfg: DdipConfigInput = {
  steps,
  fineTuneIterations: Number(o.fineTune ?? (quick ? 1 : 2)),
  lr: o.lr ? Number(o.lr) : steps <= DDIP_CPU_PRESET.steps! ? DDIP_CPU_PRESET.lr : undefined,
  ...(o.beta ? { beta: Number(o.beta) } : {}),
  ...(o.scaleHeadroom ? { scaleHeadroom: Number(o.scaleHeadroom) } : {}),
  ...(o.emIterations ? { emIterations: Number(o.emIterations) } : {}),
};
// the NLL ablation gets its own learning rate: on validation subject 50 it did best at 1e-4
// (25.7 dB) and degraded at 5e-4 (20.8) and 2e-3 (16.0), see docs/results.md
const nllCfg: DdipConfigInput = {
  ...ddipCfg,
  ...(o.nllSteps ? { steps: Number(o.nllSteps) } : {}),
  lr: Number(o.nllLr ?? 1e-4),
};
const resume = Boolean(o.resume);
const PROVIDERS = ["auto", ...PRIOR_PROVIDERS];
if (!PROVIDERS.includes(String(o.provider))) {
  console.error(`--provider must be one of ${PROVIDERS.join(", ")} (got "${o.provider}")`);
  Deno.exit(2);
}
const OSEM = { subsets: 8, iterations: quick ? 8 : 12, fwhmMm: [0, 3, 5, 7, 9] };
const RDP_BETAS = quick ? [1, 3, 10] : [0.3, 1, 3, 10, 30];
const ABLATIONS = ["ddip-hqs-nomr", "ddip-nll"];
// the ablations answer questions about the target condition (out of distribution, lowest counts)
const ablationsEverywhere = Boolean(o.ablationsAllLevels);
const RDP_ITERATIONS = quick ? 6 : 10;
const DIFFUSION: Record<string, { method: DdipMethod; useMr: boolean; label: string }> = {
  "dds": { method: "dds", useMr: true, label: "DDS (no fine-tuning)" },
  "ddip-hqs": { method: "ddip-hqs", useMr: true, label: "DDIP-HQS" },
  "ddip-hqs-nomr": { method: "ddip-hqs", useMr: false, label: "DDIP-HQS, no MR" },
  "ddip-nll": { method: "ddip-nll", useMr: true, label: "DDIP, NLL loss (no HQS)" },
};
const LABELS: Record<string, string> = {
  "osem": "OSEM + filter (best)",
  "map-rdp": "MAP-EM RDP (best β)",
  ...Object.fromEntries(Object.entries(DIFFUSION).map(([k, v]) => [k, v.label])),
};

function log(msg: string): void {
  const ts = new Date().toISOString().slice(11, 19);
  console.error(`[${ts}] ${msg}`);
}

interface Row {
  subject: string;
  centre: number;
  tracer: string;
  counts: number;
  realisation: number;
  method: string;
  setting: string;
  psnr: number;
  ssim: number;
  nrmse: number;
  crc: number;
  seconds: number;
  scaleRatio?: number;
}

/**
 * Lesion and background masks of a 3-slice stack. Background: voxels whose majority label is the
 * grey or white matter that dominates under the lesion, 8–25 mm from its centre.
 */
function masks(
  study: SimulatedStudy,
  lesion: Lesion,
  first: number,
): { lesion: Uint8Array; background: Uint8Array } {
  const g = study.grid;
  const [nx, ny] = g.shape;
  const plane = nx * ny;
  const les = new Uint8Array(3 * plane);
  const bg = new Uint8Array(3 * plane);
  const c = lesion.centreMm;
  const ci = Math.round((c[0] - g.originMm[0]) / g.voxelSizeMm[0]);
  const cj = Math.round((c[1] - g.originMm[1]) / g.voxelSizeMm[1]);
  const ck = Math.round((c[2] - g.originMm[2]) / g.voxelSizeMm[2]);
  void ck;
  // background tissue: the majority of grey (2) / white (3) matter under the lesion sphere
  const votes = [0, 0, 0, 0];
  const inside = (i: number, j: number, k: number) => {
    const x = g.originMm[0] + i * g.voxelSizeMm[0] - c[0];
    const y = g.originMm[1] + j * g.voxelSizeMm[1] - c[1];
    const z = g.originMm[2] + k * g.voxelSizeMm[2] - c[2];
    return Math.sqrt(x * x + y * y + z * z);
  };
  for (let k = first; k < first + 3; k++) {
    for (let j = Math.max(0, cj - 5); j <= Math.min(ny - 1, cj + 5); j++) {
      for (let i = Math.max(0, ci - 5); i <= Math.min(nx - 1, ci + 5); i++) {
        if (inside(i, j, k) <= lesion.radiusMm) votes[study.labels![i + nx * (j + ny * k)]]++;
      }
    }
  }
  const tissue = votes[3] > votes[2] ? 3 : 2;
  for (let d = 0; d < 3; d++) {
    const k = first + d;
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const x = g.originMm[0] + i * g.voxelSizeMm[0] - c[0];
        const y = g.originMm[1] + j * g.voxelSizeMm[1] - c[1];
        const z = g.originMm[2] + k * g.voxelSizeMm[2] - c[2];
        const r = Math.sqrt(x * x + y * y + z * z);
        const t = d * plane + i + nx * j;
        if (r <= lesion.radiusMm) les[t] = 1;
        else if (
          r >= lesion.radiusMm + 8 && r <= 25 &&
          study.labels![i + nx * (j + ny * k)] === tissue
        ) bg[t] = 1;
      }
    }
  }
  return { lesion: les, background: bg };
}

function slab(v: Float32Array, plane: number, first: number): Float32Array {
  return v.slice(first * plane, (first + 3) * plane);
}

/** Smooth scatter-like background: radial Gaussian blur (σ = 12 bins) of the trues per view. */
function scatterShape(trues: Float32Array, radial: number): Float32Array {
  const out = new Float32Array(trues.length);
  const sigma = 12;
  const w: number[] = [];
  for (let d = -3 * sigma; d <= 3 * sigma; d++) w.push(Math.exp(-0.5 * (d / sigma) ** 2));
  for (let row = 0; row < trues.length / radial; row++) {
    for (let r = 0; r < radial; r++) {
      let s = 0;
      for (let d = -3 * sigma; d <= 3 * sigma; d++) {
        const rr = Math.min(radial - 1, Math.max(0, r + d));
        s += w[d + 3 * sigma] * trues[row * radial + rr];
      }
      out[row * radial + r] = s;
    }
  }
  return out;
}

function best(
  sweep: Sweep,
  truth: Float32Array,
  shape: number[],
): { image: Float32Array; setting: string } {
  let bestV = -Infinity;
  let out = sweep.images[0];
  for (const s of sweep.images) {
    const v = psnr(truth, s.image);
    if (v > bestV) {
      bestV = v;
      out = s;
    }
  }
  void shape;
  return {
    image: out.image,
    setting: Object.entries(out.setting).map(([k, v]) => `${k}=${v}`).join(" "),
  };
}

async function loadStudy(subject: string, fallback: boolean): Promise<SimulatedStudy> {
  const grid = centredGrid([128, 128, 87], [MMR_VOXEL_MM, MMR_VOXEL_MM, MMR_VOXEL_MM]);
  const simSeed = subSeed(seed, `study-${subject}`);
  const opts = {
    grid,
    tracers: ["fdg", "amyloid_neg"] as TracerName[],
    seed: simSeed,
    lesions: 10,
    mu: true,
  };
  if (fallback) {
    return brainPhantomStudy({ ...opts, seed: Number(subject) || 0, dims: 3 });
  }
  const vol = await readLabelVolume(`${o.brainweb}/subject${subject}_crisp.nii.gz`);
  return simulateStudy(vol, { ...opts, placement: "head" });
}

async function runCondition(
  ctx: GpuContext,
  prior: ScorePrior,
  study: SimulatedStudy,
  info: {
    subject: string;
    lesion: Lesion;
    centre: number;
    tracer: TracerName;
    counts: number;
    realisation: number;
  },
  todo: readonly string[],
  rows: Row[],
  figure: Map<string, Float32Array> | null,
): Promise<void> {
  const g = study.grid;
  const [nx, ny] = g.shape;
  const plane = nx * ny;
  const first = info.centre - 1;
  const grid: ImageGrid = centredGrid([nx, ny, 3], [
    g.voxelSizeMm[0],
    g.voxelSizeMm[1],
    g.voxelSizeMm[2],
  ]);
  const scanner = directPlaneScanner(mmrLike2d(), 3, g.voxelSizeMm[2]);
  const truth = slab(study.activity[info.tracer]!, plane, first);
  let mrMax = 0;
  for (const v of study.mr!) mrMax = Math.max(mrMax, v);
  const mr = Float32Array.from(slab(study.mr!, plane, first), (v) => v / mrMax);
  const mu = slab(study.mu!, plane, first);
  // normalisation: seeded ±5 % bin efficiencies
  const normRng = new Rng(subSeed(seed, "norm"));
  const norm = Float32Array.from(
    { length: scanner.sinogramShape.reduce((a, b) => a * b, 1) },
    () => Math.max(0.5, 1 + 0.05 * normRng.normal()),
  );
  const model = ringForwardModel(ctx, scanner, {
    grid,
    subsets: OSEM.subsets,
    muMap: mu,
    multiplicative: norm,
  });
  const tx = ctx.array(grid.shape, truth);
  const trues = await model.expectedTrues(tx);
  let sumT = 0;
  for (const v of trues) sumT += v;
  const totalTrues = 3 * info.counts;
  const scat = scatterShape(trues, scanner.spec.radialBins);
  let sumS = 0;
  for (const v of scat) sumS += v;
  // prompts = trues + 20 % randoms + 30 % scatter (fractions of the prompts)
  const prompts = totalTrues / 0.5;
  const additive = new Float32Array(trues.length);
  for (let i = 0; i < additive.length; i++) {
    additive[i] = 0.2 * prompts / additive.length + 0.3 * prompts * scat[i] / sumS;
  }
  const noiseSeed = subSeed(
    seed,
    `${info.subject}-${info.centre}-${info.tracer}-${info.counts}-${info.realisation}`,
  );
  const sim = await simulateCounts(model, tx, {
    trueCounts: totalTrues,
    additive,
    seed: noiseSeed,
  });
  tx.destroy();
  model.setAdditive(sim.additive);
  const lik = new PoissonLikelihood(model, sim.counts);
  const truthC = Float32Array.from(truth, (v) => v * sim.scale);
  const m = masks(study, info.lesion, first);
  const roi = (img: Float32Array, mask: Uint8Array) => {
    let a = 0, c = 0;
    for (let i = 0; i < img.length; i++) if (mask[i]) (a += img[i], c++);
    return { mean: a / c, n: c };
  };
  const tl = roi(truthC, m.lesion), tb = roi(truthC, m.background);
  log(
    `lesion r=${info.lesion.radiusMm.toFixed(1)} mm ×${info.lesion.petFactor.toFixed(2)} (MR ×${
      info.lesion.mrFactor ?? 1
    }) at slice ${info.centre}: ${tl.n} lesion / ${tb.n} background voxels, true ratio ${
      (tl.mean / tb.mean).toFixed(2)
    }`,
  );
  const shape = [nx, ny, 3];
  const cond =
    `${info.subject} c${info.centre} ${info.tracer} ${info.counts}/slice r${info.realisation}`;
  const add = (
    method: string,
    image: Float32Array,
    setting: string,
    seconds: number,
    extra = {},
  ) => {
    const row: Row = {
      subject: info.subject,
      centre: info.centre,
      tracer: info.tracer,
      counts: info.counts,
      realisation: info.realisation,
      method,
      setting,
      psnr: psnr(truthC, image),
      ssim: ssim(truthC, image, { shape }),
      nrmse: nrmse(truthC, image),
      crc: contrastRecovery(image, { lesion: m.lesion, background: m.background, truth: truthC }),
      seconds,
      ...extra,
    };
    rows.push(row);
    figure?.set(method, image);
    log(
      `${cond} ${method.padEnd(14)} PSNR ${row.psnr.toFixed(2)} SSIM ${row.ssim.toFixed(4)} NRMSE ${
        row.nrmse.toFixed(4)
      } CRC ${row.crc.toFixed(3)} ${seconds.toFixed(1)} s ${setting}`,
    );
  };
  try {
    if (todo.includes("osem")) {
      const sw = await osemSweep(ctx, lik, grid, {
        iterations: OSEM.iterations,
        fwhmMm: OSEM.fwhmMm,
      });
      const b = best(sw, truthC, shape);
      add("osem", b.image, b.setting, sw.ms / 1000);
    }
    if (todo.includes("map-rdp")) {
      const sw = await mapRdpSweep(ctx, lik, grid, {
        betas: RDP_BETAS,
        iterations: RDP_ITERATIONS,
      });
      const b = best(sw, truthC, shape);
      add("map-rdp", b.image, b.setting, sw.ms / 1000);
    }
    const diff = todo.filter((k) => k in DIFFUSION);
    if (diff.length) {
      const t0 = performance.now();
      const init = await mlemInit(lik, 20);
      const initS = (performance.now() - t0) / 1000;
      let truthMax = 0;
      for (const v of study.activity[info.tracer]!) truthMax = Math.max(truthMax, v);
      for (const key of diff) {
        const d = DIFFUSION[key];
        const t1 = performance.now();
        const r = await ddipStack(prior, { likelihood: lik, grid, mr }, {
          config: { ...(d.method === "ddip-nll" ? nllCfg : ddipCfg), seed: noiseSeed },
          method: d.method,
          useMr: d.useMr,
          init,
        });
        const s = (performance.now() - t1) / 1000 + initS;
        const tm = r.timings;
        add(key, r.image, `scale=${r.scale.toPrecision(4)}`, s, {
          scaleRatio: r.scale / (truthMax * sim.scale),
          networkS: tm.networkMs / 1000,
          vjpS: tm.vjpMs / 1000,
          emS: tm.emMs / 1000,
          llInit: r.logLikelihood.init,
          llFinal: r.logLikelihood.final,
        });
      }
    }
    figure?.set("truth", truthC);
    figure?.set("mr", mr);
  } finally {
    lik.destroy();
    model.destroy();
  }
}

/** The methods a condition runs: the ablations only where asked (quick: one condition). */
function methodsFor(tracer: string, counts: number): string[] {
  return methods.filter((k) =>
    !ABLATIONS.includes(k) || ablationsEverywhere ||
    (counts === Math.min(...countLevels) && tracer === tracers[tracers.length - 1])
  );
}

function conditionKey(r: Pick<Row, "subject" | "centre" | "tracer" | "counts" | "realisation">) {
  return `${r.subject}|${r.centre}|${r.tracer}|${r.counts}|${r.realisation}`;
}

async function readRows(path: string): Promise<Row[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const rows: Row[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].trim()) continue;
    try {
      rows.push(JSON.parse(lines[i]) as Row);
    } catch {
      // a line cut by a kill mid-write: that condition simply runs again
      log(`${path}:${i + 1} is not a complete JSON row; ignoring it`);
    }
  }
  return rows;
}

function mean(v: number[]): number {
  return v.reduce((a, b) => a + b, 0) / v.length;
}
function sd(v: number[]): number {
  if (v.length < 2) return 0;
  const m = mean(v);
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1));
}

function table(rows: Row[]): string {
  const lines: string[] = [];
  const keys = [...new Set(rows.map((r) => `${r.tracer}|${r.counts}`))];
  for (const key of keys) {
    const [tracer, counts] = key.split("|");
    lines.push(
      `\n### ${tracer === "fdg" ? "FDG (in distribution)" : `${tracer} (out of distribution)`}, ${
        Number(counts).toLocaleString("en-US")
      } true counts per slice\n`,
    );
    lines.push("| method | PSNR (dB) | SSIM | NRMSE | lesion CRC | time (s) | n |");
    lines.push("|---|---|---|---|---|---|---|");
    const sub = rows.filter((r) => r.tracer === tracer && r.counts === Number(counts));
    for (const method of [...new Set(sub.map((r) => r.method))]) {
      const rs = sub.filter((r) => r.method === method);
      const f = (k: keyof Row, d: number) => {
        const v = rs.map((r) => r[k] as number);
        return rs.length > 1 ? `${mean(v).toFixed(d)} ± ${sd(v).toFixed(d)}` : mean(v).toFixed(d);
      };
      lines.push(
        `| ${LABELS[method] ?? method} | ${f("psnr", 2)} | ${f("ssim", 4)} | ${f("nrmse", 4)} | ${
          f("crc", 3)
        } | ${f("seconds", 1)} | ${rs.length} |`,
      );
    }
    lines.push(...paired(sub));
  }
  return lines.join("\n") + "\n";
}

/**
 * DDIP-HQS minus each other method on the same data (subject, stack, realisation): the paired
 * differences remove the variation between stacks and noise draws that the ± of the table holds.
 */
function paired(sub: Row[]): string[] {
  const hqs = new Map(sub.filter((r) => r.method === "ddip-hqs").map((r) => [conditionKey(r), r]));
  if (hqs.size === 0) return [];
  const out = [
    "",
    "| DDIP-HQS minus | ΔPSNR (dB) | wins | ΔSSIM | wins | pairs |",
    "|---|---|---|---|---|---|",
  ];
  for (const method of [...new Set(sub.map((r) => r.method))]) {
    if (method === "ddip-hqs") continue;
    const pairs = sub.filter((r) => r.method === method && hqs.has(conditionKey(r)))
      .map((r) => [hqs.get(conditionKey(r))!, r] as const);
    if (pairs.length === 0) continue;
    const dp = pairs.map(([a, b]) => a.psnr - b.psnr);
    const ds = pairs.map(([a, b]) => a.ssim - b.ssim);
    const pm = (v: number[], d: number) =>
      `${mean(v) >= 0 ? "+" : ""}${mean(v).toFixed(d)}${
        v.length > 1 ? ` ± ${sd(v).toFixed(d)}` : ""
      }`;
    out.push(
      `| ${LABELS[method] ?? method} | ${pm(dp, 2)} | ${
        dp.filter((v) => v > 0).length
      }/${dp.length} | ${pm(ds, 4)} | ${
        ds.filter((v) => v > 0).length
      }/${ds.length} | ${pairs.length} |`,
    );
  }
  return out;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  await Deno.mkdir(outDir, { recursive: true });
  const ctx = await defaultContext();
  let prior: ScorePrior;
  try {
    prior = await loadPrior(String(o.model), {
      adapter: ctx.adapter,
      numThreads: Number(o.threads),
      provider: String(o.provider) as PriorProvider | "auto",
    });
  } catch (e) {
    console.error(
      `cannot load the prior from ${o.model}: ${(e as Error).message}\n` +
        "(train and export it with scripts/prior/, or pass --model DIR)",
    );
    Deno.exit(2);
  }
  let fallback = false;
  try {
    await Deno.stat(String(o.brainweb));
  } catch {
    fallback = true;
    log(
      `NOTE: ${o.brainweb} is absent: using the procedural brain phantom instead of BrainWeb 51–53`,
    );
  }
  log(
    `prior ${o.model} (${prior.provider}, ${prior.paramSpecs.length} LoRA tensors, rank ${prior.meta.lora.rank}); ` +
      `DDIP ${JSON.stringify(ddipCfg)}; subjects ${usedSubjects.join(",")}; tracers ${
        tracers.join(",")
      }; ` +
      `counts/slice ${countLevels.join(",")}; realisations ${realisations}`,
  );
  const rowsPath = `${outDir}/rows.jsonl`;
  const figDir = `${outDir}/fig`;
  await Deno.mkdir(figDir, { recursive: true });
  const rows: Row[] = resume ? await readRows(rowsPath) : [];
  if (resume) log(`resuming: ${rows.length} rows already in ${rowsPath}`);
  // rewritten whole (atomically), so a line cut by a kill does not swallow the next append
  await writeFileAtomic(rowsPath, rows.map((x) => JSON.stringify(x) + "\n").join(""));
  const figureTracers = new Set<string>();
  for (const subject of usedSubjects) {
    const ts = performance.now();
    const study = await loadStudy(subject, fallback);
    log(
      `subject ${subject}: simulated in ${
        ((performance.now() - ts) / 1000).toFixed(1)
      } s, ${study.lesions.length} lesions`,
    );
    const nz = study.grid.shape[2];
    const dz = study.grid.voxelSizeMm[2];
    // hot lesions, largest first (CRC of a 3 mm sphere on 2 mm voxels says little)
    const hot = study.lesions.filter((l) => l.petFactor > 1).sort((a, b) =>
      b.radiusMm - a.radiusMm
    );
    const chosen = hot.slice(0, stacksPerSubject);
    if (chosen.length === 0) throw new Error(`subject ${subject} has no hot lesion`);
    for (const lesion of chosen) {
      const k = Math.round((lesion.centreMm[2] - study.grid.originMm[2]) / dz);
      const centre = Math.min(nz - 2, Math.max(1, k));
      for (const tracer of tracers) {
        for (const counts of countLevels) {
          for (let r = 0; r < realisations; r++) {
            const info = { subject, lesion, centre, tracer, counts, realisation: r };
            const key = conditionKey(info);
            const done = new Set(rows.filter((x) => conditionKey(x) === key).map((x) => x.method));
            const todo = methodsFor(tracer, counts).filter((m) => !done.has(m));
            const isFigure = !figureTracers.has(tracer) && counts === Math.min(...countLevels) &&
              r === 0;
            if (isFigure) figureTracers.add(tracer);
            if (todo.length === 0) continue;
            const fig = isFigure ? new Map<string, Float32Array>() : null;
            const before = rows.length;
            await runCondition(ctx, prior, study, info, todo, rows, fig);
            // append at once: a stopped run keeps every finished condition
            const fresh = rows.slice(before).map((x) => JSON.stringify(x)).join("\n");
            await Deno.writeTextFile(rowsPath, fresh + "\n", { append: true });
            for (const [k, img] of fig ?? []) {
              await writeNpy(`${figDir}/${tracer}.${k}.npy`, { data: img, shape: [128, 128, 3] });
            }
          }
        }
      }
    }
  }
  // figures: centre slice of truth, MR and each method, shared window per tracer (MR own window)
  for (const tracer of figureTracers) {
    const fig = new Map<string, Float32Array>();
    for (const k of ["truth", "mr", ...methods]) {
      const path = `${figDir}/${tracer}.${k}.npy`;
      const exists = await Deno.stat(path).then(() => true, () => false);
      if (exists) fig.set(k, Float32Array.from((await readNpy(path)).data));
    }
    if (!fig.has("truth")) continue;
    const truth = fig.get("truth")!;
    let max = 0;
    for (const v of truth) max = Math.max(max, v);
    const order = ["truth", "mr", ...methods];
    await writePngMontage(
      `${outDir}/${tracer}.png`,
      order.filter((k) => fig.has(k)).map((k) => ({
        data: fig.get(k)!,
        shape: [128, 128, 3],
        title: k.toUpperCase(),
        window: k === "mr" ? undefined : { min: 0, max },
        colormap: k === "mr" ? "grey" as const : undefined,
      })),
      { colormap: "inferno", slices: [1], columns: 4 },
    );
  }
  const minutes = (performance.now() - t0) / 60000;
  const cmd = `deno run -A --unstable-raw-imports examples/tracer_transfer.ts ${
    Deno.args.join(" ")
  }`;
  const md = `# Tracer transfer (${quick ? "quick" : "full"})\n\nCommand: \`${cmd}\`\n\n` +
    `Prior: \`${o.model}\`${
      fallback ? " — PROCEDURAL PHANTOM (BrainWeb absent)" : ""
    }; DDIP config ${JSON.stringify(ddipCfg)}${
      o.nllSteps ? ` (NLL ablation: ${nllCfg.steps} steps)` : ""
    }; prior on ${prior.provider}; OSEM ${OSEM.subsets} subsets × ${OSEM.iterations} its, FWHM ${
      OSEM.fwhmMm.join("/")
    } mm; ` +
    `MAP-RDP β ${RDP_BETAS.join("/")} (activity in counts), ${RDP_ITERATIONS} its (8 subsets).\n` +
    `Wall time ${minutes.toFixed(1)} min.\n` + table(rows);
  await writeFileAtomic(`${outDir}/results.md`, md);
  await writeFileAtomic(
    `${outDir}/results.json`,
    JSON.stringify(
      { command: cmd, ddip: ddipCfg, nll: nllCfg, provider: prior.provider, rows },
      null,
      1,
    ),
  );
  console.log(md);
  await prior.release();
}

await main();
