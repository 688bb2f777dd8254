/**
 * The tracer-transfer experiment of DDIP-HQS (Hashimoto & Gong's simulation study on petrel's
 * data): a score prior trained on FDG reconstructs FDG (in distribution) and amyloid-negative PET
 * (out of distribution) of BrainWeb subjects NOT used in training (51, 52, 53) from low-count
 * mMR-like data with attenuation, normalisation, randoms and scatter, against OSEM + post-filter
 * (best iteration/FWHM), MAP-EM with the relative-difference prior (best β), DDS (no fine-tuning),
 * the ablations (DDIP without MR, DDIP with the measurement-domain loss) and the levers of issue 15
 * (`ddip-hqs-dc`: a final data-consistency x-step; `ddip-hqs-late`: a weaker late coupling;
 * `ddip-hqs-dd`: the final x-step only where the data disagree with the output).
 *
 * Every reconstruction is a 3-slice stack (three direct 2-D planes) through a hot lesion; the
 * data come from the fine simulator by default (`--simulator fine,operator` adds the inverse-crime
 * row, see `condition.ts`). The "best" baseline settings are chosen against the truth (an oracle;
 * the most favourable case for the baselines).
 *
 *   deno task experiment --quick     # = deno run -A experiments/tracer_transfer/cli.ts --provider native --quick
 *   deno task experiment             # full: 3 subjects × 2 tracers × 2 count levels × 2 realisations
 *
 * Writes `out/tracer_transfer/results.{json,md}` and one PNG per tracer. Every finished condition
 * is appended to `rows.jsonl` at once (its figure images to `fig/*.npy`), so a long run that
 * stops loses at most the condition in flight; `--resume` skips what `rows.jsonl` already holds
 * (same seeds, so the remaining conditions see the data they would have seen). Without
 * `../shared/data/brainweb` it falls back to the procedural phantom and says so.
 *
 * @module
 */

import { Command } from "commander";
import { defaultContext, type GpuContext } from "../../core/gpu/context.ts";
import { loadPrior } from "../../core/diffusion/load.ts";
import { PRIOR_PROVIDERS, type PriorProvider } from "../../core/diffusion/provider.ts";
import type { ScorePrior } from "../../core/diffusion/prior.ts";
import { DDIP_CPU_PRESET, type DdipConfigInput } from "../../core/recon/ddip/mod.ts";
import type { TracerName } from "../../core/sim/tracers.ts";
import { writePngMontage } from "../../core/io/png.ts";
import { writeFileAtomic } from "../../core/io/files.ts";
import { readNpy, writeNpy } from "../../core/io/npy.ts";
import {
  diffusionMethods,
  type ExperimentSettings,
  type FineCache,
  loadSubject,
  runCondition,
  type Simulator,
  SIMULATORS,
} from "./condition.ts";
import { conditionKey, readRows, type Row, table } from "./report.ts";

const ABLATIONS = ["ddip-hqs-nomr", "ddip-nll", "ddip-hqs-dc", "ddip-hqs-late", "ddip-hqs-dd"];

/** Parses the command line into settings; throws a RangeError naming a bad option. */
export function parseSettings(args: readonly string[]): ExperimentSettings {
  const program = new Command("tracer_transfer")
    .description("DDIP-HQS tracer-transfer experiment (FDG prior → FDG and amyloid-negative)")
    .exitOverride()
    .option("--quick", "small run for a 2-core CPU (< 15 min)", false)
    .option("--model <dir>", "prior directory", "models/fdg_prior")
    .option("--brainweb <dir>", "BrainWeb label volumes", "../shared/data/brainweb")
    .option("--subjects <list>", "held-out subjects", "51,52,53")
    .option("--tracers <list>", "tracers", "fdg,amyloid_neg")
    .option("--counts <list>", "true counts per slice (comma list)", "300000,100000")
    .option("--realisations <n>", "noise realisations (default: quick 1, full 2)")
    .option("--stacks <n>", "stacks per subject, one per hot lesion, largest first (default 1)")
    .option(
      "--simulator <list>",
      "fine (independent of the reconstruction operator) and/or operator (the inverse crime)",
      "fine",
    )
    .option("--steps <n>", "DDIP reverse steps (strided from startT)")
    .option("--fine-tune <n>", "fine-tuning iterations per step")
    .option("--lr <x>", "AdamW learning rate (default: the library's lr auto)")
    .option("--nll-lr <x>", "learning rate of the NLL ablation (default 1e-4, tuned on subject 50)")
    .option("--beta <x>", "HQS coupling β (default: the library's)")
    .option("--scale-headroom <x>", "intensity-scale headroom (default: the library's)")
    .option("--em-iterations <n>", "penalised-EM iterations per x-step (default: the library's)")
    .option("--nll-steps <n>", "reverse steps of the NLL ablation (default: as --steps)")
    .option("--dc-iterations <n>", "ddip-hqs-dc: final data-consistency EM iterations", "10")
    .option("--dc-beta <x>", "ddip-hqs-dc: coupling of the final iterations", "1e-4")
    .option("--beta-end <x>", "ddip-hqs-late: β at the last reverse step", "1e-3")
    .option("--dd-iterations <n>", "ddip-hqs-dd: final EM iterations where data disagree", "20")
    .option("--dd-beta <x>", "ddip-hqs-dd: coupling of those iterations", "1e-4")
    .option("--dd-fwhm <mm>", "ddip-hqs-dd: FWHM of the disagreement filter (mm)", "8")
    .option("--dd-threshold <x>", "ddip-hqs-dd: disagreement threshold τ (robust σ)", "3")
    .option("--samples <n>", "DDIP-HQS chains per condition (≥ 2: mean and std image)", "1")
    .option("--provider <p>", "prior runtime: auto, wasm, webgpu, or native", "auto")
    .option("--resume", "keep the rows already in <out>/rows.jsonl and run only what is missing")
    .option("--methods <list>", "methods", "osem,map-rdp,dds,ddip-hqs,ddip-hqs-nomr,ddip-nll")
    .option("--seed <n>", "base seed", "2026")
    .option("--threads <n>", "onnxruntime-web wasm threads", "1")
    .option("--ablations-all-levels", "run the ablations and levers in every condition")
    .option("--out <dir>", "output directory", "out/tracer_transfer")
    .parse(["deno", "cli.ts", ...args]);
  const o = program.opts();
  const quick = Boolean(o.quick);
  const list = (v: unknown) => String(v).split(",").filter(Boolean);
  const num = (name: string, v: unknown): number => {
    const x = Number(v);
    if (!Number.isFinite(x)) throw new RangeError(`--${name} must be a number, got "${v}"`);
    return x;
  };
  const simulators = list(o.simulator) as Simulator[];
  for (const x of simulators) {
    if (!SIMULATORS.includes(x)) {
      throw new RangeError(`--simulator must be a list of ${SIMULATORS.join(", ")} (got "${x}")`);
    }
  }
  const providers = ["auto", ...PRIOR_PROVIDERS];
  if (!providers.includes(String(o.provider))) {
    throw new RangeError(`--provider must be one of ${providers.join(", ")} (got "${o.provider}")`);
  }
  const steps = o.steps ? num("steps", o.steps) : quick ? 5 : DDIP_CPU_PRESET.steps!;
  const ddip: DdipConfigInput = {
    steps,
    fineTuneIterations: o.fineTune ? num("fine-tune", o.fineTune) : quick ? 1 : 2,
    ...(o.lr ? { lr: num("lr", o.lr) } : {}),
    ...(o.beta ? { beta: num("beta", o.beta) } : {}),
    ...(o.scaleHeadroom ? { scaleHeadroom: num("scale-headroom", o.scaleHeadroom) } : {}),
    ...(o.emIterations ? { emIterations: num("em-iterations", o.emIterations) } : {}),
  };
  return {
    quick,
    model: String(o.model),
    brainweb: String(o.brainweb),
    subjects: quick ? list(o.subjects).slice(0, 1) : list(o.subjects),
    tracers: list(o.tracers) as TracerName[],
    counts: list(o.counts).map((v) => num("counts", v)),
    realisations: o.realisations ? num("realisations", o.realisations) : quick ? 1 : 2,
    stacks: o.stacks ? num("stacks", o.stacks) : 1,
    simulators,
    methods: list(o.methods),
    seed: num("seed", o.seed),
    ddip,
    // the NLL ablation gets its own learning rate: on validation subject 50 it did best at 1e-4
    // (25.7 dB) and degraded at 5e-4 (20.8) and 2e-3 (16.0), see docs/results.md
    nll: {
      ...ddip,
      ...(o.nllSteps ? { steps: num("nll-steps", o.nllSteps) } : {}),
      lr: num("nll-lr", o.nllLr ?? 1e-4),
    },
    levers: {
      dc: {
        finalEmIterations: num("dc-iterations", o.dcIterations),
        finalBeta: num("dc-beta", o.dcBeta),
      },
      late: { betaEnd: num("beta-end", o.betaEnd) },
      dd: {
        finalEmIterations: num("dd-iterations", o.ddIterations),
        finalBeta: num("dd-beta", o.ddBeta),
        finalEmRegion: "disagreement",
        disagreementFwhmMm: num("dd-fwhm", o.ddFwhm),
        disagreementThreshold: num("dd-threshold", o.ddThreshold),
      },
    },
    samples: num("samples", o.samples),
    osem: { subsets: 8, iterations: quick ? 8 : 12, fwhmMm: [0, 3, 5, 7, 9] },
    rdp: { betas: quick ? [1, 3, 10] : [0.3, 1, 3, 10, 30], iterations: quick ? 6 : 10 },
    ablationsAllLevels: Boolean(o.ablationsAllLevels),
    out: String(o.out),
    resume: Boolean(o.resume),
    provider: String(o.provider),
    threads: num("threads", o.threads),
  };
}

function stamp(msg: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

/** The methods a condition runs: the ablations only where asked (quick: one condition). */
function methodsFor(s: ExperimentSettings, tracer: string, counts: number): string[] {
  return s.methods.filter((k) =>
    !ABLATIONS.includes(k) || s.ablationsAllLevels ||
    (counts === Math.min(...s.counts) && tracer === s.tracers[s.tracers.length - 1])
  );
}

/**
 * Runs the experiment in this process: every missing condition, then the tables and figures.
 * `prior` is loaded from `settings.model` when not given (and not needed for classical methods).
 */
export async function runExperiment(
  s: ExperimentSettings,
  options: {
    ctx?: GpuContext;
    prior?: ScorePrior | null;
    log?: (m: string) => void;
    argv?: string;
  } = {},
): Promise<{ rows: Row[]; markdown: string }> {
  const log = options.log ?? stamp;
  const t0 = performance.now();
  await Deno.mkdir(s.out, { recursive: true });
  const ctx = options.ctx ?? await defaultContext();
  const diffusion = diffusionMethods(s);
  const needsPrior = s.methods.some((m) => m in diffusion);
  let prior = options.prior ?? null;
  if (!prior && needsPrior) {
    prior = await loadPrior(s.model, {
      adapter: ctx.adapter,
      numThreads: s.threads,
      provider: s.provider as PriorProvider | "auto",
    });
  }
  const fallback = !(await Deno.stat(s.brainweb).then(() => true, () => false));
  if (fallback) {
    log(
      `NOTE: ${s.brainweb} is absent: using the procedural brain phantom instead of BrainWeb 51–53`,
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
  const figDir = `${s.out}/fig`;
  await Deno.mkdir(figDir, { recursive: true });
  const rows: Row[] = s.resume ? await readRows(rowsPath, log) : [];
  if (s.resume) log(`resuming: ${rows.length} rows already in ${rowsPath}`);
  // rewritten whole (atomically), so a line cut by a kill does not swallow the next append
  await writeFileAtomic(rowsPath, rows.map((x) => JSON.stringify(x) + "\n").join(""));
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
              const done = new Set(
                rows.filter((x) => conditionKey(x) === key).map((x) => x.method),
              );
              const todo = methodsFor(s, tracer, counts).filter((m) => !done.has(m));
              const figKey = `${simulator}.${tracer}`;
              const isFigure = !figureTracers.has(figKey) && counts === Math.min(...s.counts) &&
                r === 0;
              if (isFigure) figureTracers.add(figKey);
              if (todo.length === 0) continue;
              const fig = isFigure ? new Map<string, Float32Array>() : null;
              const fresh = await runCondition(ctx, prior, s, info, todo, log, cache, fig);
              rows.push(...fresh);
              // append at once: a stopped run keeps every finished condition
              await Deno.writeTextFile(
                rowsPath,
                fresh.map((x) => JSON.stringify(x) + "\n").join(""),
                { append: true },
              );
              for (const [k, img] of fig ?? []) {
                await writeNpy(`${figDir}/${figKey}.${k}.npy`, { data: img, shape: [128, 128, 3] });
              }
            }
          }
        }
      }
    }
  }
  await figures(s, figureTracers, figDir);
  const minutes = (performance.now() - t0) / 60000;
  const labels: Record<string, string> = {
    "osem": "OSEM + filter (best)",
    "map-rdp": "MAP-EM RDP (best β)",
    ...Object.fromEntries(Object.entries(diffusion).map(([k, v]) => [k, v.label])),
  };
  const cmd = options.argv ?? `deno run -A experiments/tracer_transfer/cli.ts`;
  const md = `# Tracer transfer (${s.quick ? "quick" : "full"})\n\nCommand: \`${cmd}\`\n\n` +
    `Prior: \`${s.model}\`${
      fallback ? " — PROCEDURAL PHANTOM (BrainWeb absent)" : ""
    }; DDIP config ${JSON.stringify(s.ddip)}; prior on ${
      prior?.provider ?? "—"
    }; OSEM ${s.osem.subsets} subsets × ${s.osem.iterations} its, FWHM ${
      s.osem.fwhmMm.join("/")
    } mm; MAP-RDP β ${
      s.rdp.betas.join("/")
    } (activity in counts), ${s.rdp.iterations} its (8 subsets).\n` +
    `Wall time ${minutes.toFixed(1)} min.\n` + table(rows, labels);
  await writeFileAtomic(`${s.out}/results.md`, md);
  await writeFileAtomic(
    `${s.out}/results.json`,
    JSON.stringify({ command: cmd, settings: s, provider: prior?.provider, rows }, null, 1),
  );
  if (!options.prior) await prior?.release();
  return { rows, markdown: md };
}

/** Centre slice of truth, MR and each method, one shared window per tracer (MR its own). */
async function figures(s: ExperimentSettings, keys: Set<string>, figDir: string): Promise<void> {
  for (const figKey of keys) {
    const fig = new Map<string, Float32Array>();
    const order = ["truth", "mr", ...s.methods, "ddip-hqs-std"];
    for (const k of order) {
      const path = `${figDir}/${figKey}.${k}.npy`;
      if (await Deno.stat(path).then(() => true, () => false)) {
        fig.set(k, Float32Array.from((await readNpy(path)).data));
      }
    }
    if (!fig.has("truth")) continue;
    let max = 0;
    for (const v of fig.get("truth")!) max = Math.max(max, v);
    const name = figKey.startsWith("fine.") ? figKey.slice(5) : figKey;
    await writePngMontage(
      `${s.out}/${name}.png`,
      order.filter((k) => fig.has(k)).map((k) => ({
        data: fig.get(k)!,
        shape: [128, 128, 3],
        title: k.toUpperCase(),
        window: k === "mr" || k.endsWith("-std") ? undefined : { min: 0, max },
        colormap: k === "mr" ? "grey" as const : undefined,
      })),
      { colormap: "inferno", slices: [1], columns: 4 },
    );
  }
}

if (import.meta.main) {
  let settings: ExperimentSettings;
  try {
    settings = parseSettings(Deno.args);
  } catch (e) {
    if ((e as { code?: string }).code === "commander.helpDisplayed") Deno.exit(0);
    console.error((e as Error).message);
    Deno.exit(2);
  }
  const { markdown } = await runExperiment(settings, {
    argv: `deno run -A experiments/tracer_transfer/cli.ts ${Deno.args.join(" ")}`,
  });
  console.log(markdown);
}
