/**
 * The tracer-transfer experiment of DDIP-HQS (Hashimoto & Gong's simulation study on petrel's
 * data): a score prior trained on FDG reconstructs FDG (in distribution) and amyloid-negative PET
 * (out of distribution) of BrainWeb subjects NOT used in training (51, 52, 53) from low-count
 * mMR-like data with attenuation, normalisation, randoms and scatter, against OSEM + post-filter
 * (best iteration/FWHM), MAP-EM with the relative-difference prior (best β), DDS (no fine-tuning),
 * the ablations (DDIP without MR, DDIP with the measurement-domain loss) and the levers of issue 15
 * (`ddip-hqs` is the library default, whose final x-step is kept only where the data disagree
 * with the chain's output; `ddip-hqs-chain`: the chain alone; `ddip-hqs-dc`: a final
 * data-consistency x-step everywhere; `ddip-hqs-late`: a weaker late coupling; `ddip-hqs-dd`: the
 * disagreement lever with its own flags).
 *
 * Every reconstruction is a 3-slice stack (three direct 2-D planes) through a hot lesion; the
 * data come from the fine simulator by default (`--simulator fine,operator` adds the inverse-crime
 * row, see `condition.ts`). The "best" baseline settings are chosen against the truth (an oracle;
 * the most favourable case for the baselines).
 *
 *   deno task experiment --quick     # = deno run -A experiments/tracer_transfer/cli.ts --provider native --quick
 *   deno task experiment             # full: 3 subjects × 2 tracers × 2 count levels × 2 realisations
 *
 * The experiment is the recipe `recipe.ts`; this command line maps its flags onto the recipe's
 * parameters (whose schema holds the defaults), `--brainweb` onto its input, `--model` onto its
 * model and `--seed` onto the run's seed, and runs it in this process through the recipe API
 * (`runRecipeInProcess`): not in the sandbox, because the native onnxruntime needs FFI and a full
 * run takes hours. `petrel run experiments/tracer_transfer/recipe.ts` runs it sandboxed, with a
 * provenance manifest.
 *
 * Writes `out/tracer_transfer/results.{json,md}` and one PNG per tracer. Every finished condition
 * lands in `rows.jsonl` at once (its figure images in `fig/*.npy`), so a long run that stops loses
 * at most the condition in flight; `--resume` skips what `rows.jsonl` already holds (same seeds,
 * so the remaining conditions see the data they would have seen). Without
 * `../shared/data/brainweb` it falls back to the procedural phantom and says so.
 *
 * @module
 */

import { Command } from "commander";
import { runRecipeInProcess } from "../../core/runtime/context.ts";
import { defineRecipe } from "../../core/runtime/recipe.ts";
import type { ScorePrior } from "../../core/diffusion/prior.ts";
import recipe, { EXPERIMENT_SEED, params, runExperiment } from "./recipe.ts";
import { DEFAULT_PRIOR_DIR } from "../../core/diffusion/default_prior.ts";

/** How a flag's value becomes a parameter: a list, a number, a string or a switch. */
type Kind = "list" | "numbers" | "number" | "string" | "switch";

/** Every flag that sets a parameter of the recipe: flag, parameter, kind. */
export const FLAGS: readonly (readonly [string, keyof typeof params.shape, Kind])[] = [
  ["--quick", "quick", "switch"],
  ["--subjects <list>", "subjects", "list"],
  ["--tracers <list>", "tracers", "list"],
  ["--counts <list>", "counts", "numbers"],
  ["--realisations <n>", "realisations", "number"],
  ["--stacks <n>", "stacks", "number"],
  ["--simulator <list>", "simulators", "list"],
  ["--steps <n>", "steps", "number"],
  ["--start-t <n>", "startT", "number"],
  ["--fine-tune <n>", "fineTune", "number"],
  ["--lr <x>", "lr", "number"],
  ["--nll-lr <x>", "nllLr", "number"],
  ["--beta <x>", "beta", "number"],
  ["--scale-headroom <x>", "scaleHeadroom", "number"],
  ["--em-iterations <n>", "emIterations", "number"],
  ["--xstep-subsets", "xStepSubsets", "switch"],
  ["--psf <mm>", "psf", "number"],
  ["--nll-steps <n>", "nllSteps", "number"],
  ["--dc-iterations <n>", "dcIterations", "number"],
  ["--dc-beta <x>", "dcBeta", "number"],
  ["--beta-end <x>", "betaEnd", "number"],
  ["--dd-iterations <n>", "ddIterations", "number"],
  ["--dd-beta <x>", "ddBeta", "number"],
  ["--dd-fwhm <mm>", "ddFwhm", "number"],
  ["--dd-threshold <x>", "ddThreshold", "number"],
  ["--dd-ordered-subsets", "ddOrderedSubsets", "switch"],
  ["--dd-seed-threshold <x>", "ddSeedThreshold", "number"],
  ["--dd-blend <mode>", "ddBlend", "string"],
  ["--dd-blend-fwhm <mm>", "ddBlendFwhm", "number"],
  ["--samples <n>", "samples", "number"],
  ["--provider <p>", "provider", "string"],
  ["--resume", "resume", "switch"],
  ["--methods <list>", "methods", "list"],
  ["--threads <n>", "threads", "number"],
  ["--ablations-all-levels", "ablationsAllLevels", "switch"],
];

/** A command line, parsed: the recipe's raw parameters and where the run reads and writes. */
export interface ExperimentArgs {
  params: Record<string, unknown>;
  brainweb: string;
  model: string;
  out: string;
  seed: number;
}

/** A number where it parses as one; else the text, for the schema to refuse by name. */
function number(v: string): number | string {
  const x = Number(v);
  return v.trim() !== "" && Number.isFinite(x) ? x : v;
}

/**
 * Parses the command line: each flag given becomes the recipe parameter it names (absent flags
 * leave the schema's default), validated by the schema; throws a RangeError naming the flag.
 */
export function parseArgs(args: readonly string[]): ExperimentArgs {
  const program = new Command("tracer_transfer")
    .description("DDIP-HQS tracer-transfer experiment (FDG prior → FDG and amyloid-negative)")
    .exitOverride();
  for (const [flag, key, kind] of FLAGS) {
    // the schema's default, shown as the flag would give it
    const d = params.shape[key].safeParse(undefined).data;
    const shown = d === undefined || kind === "switch"
      ? ""
      : ` (default: ${Array.isArray(d) ? d.join(",") : d})`;
    program.option(flag, `${params.shape[key].description ?? key}${shown}`);
  }
  program
    .option("--model <dir>", "prior directory (the run's model)", DEFAULT_PRIOR_DIR)
    .option(
      "--brainweb <dir>",
      "BrainWeb label volumes (the run's input)",
      "../shared/data/brainweb",
    )
    .option("--seed <n>", "base seed (the run's seed)", String(EXPERIMENT_SEED))
    .option("--out <dir>", "output directory", "out/tracer_transfer")
    .parse(["deno", "cli.ts", ...args]);
  const o = program.opts();
  const raw: Record<string, unknown> = {};
  const flagOf: Record<string, string> = {};
  for (const [flag, key, kind] of FLAGS) {
    const name = flag.split(" ")[0];
    flagOf[key] = name;
    const attr = name.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const v = o[attr];
    if (v === undefined) continue;
    const list = () => String(v).split(",").filter(Boolean);
    raw[key] = kind === "switch"
      ? Boolean(v)
      : kind === "list"
      ? list()
      : kind === "numbers"
      ? list().map(number)
      : kind === "number"
      ? number(String(v))
      : String(v);
  }
  const res = params.safeParse(raw);
  if (!res.success) {
    throw new RangeError(
      res.error.issues.map((i) => {
        const [key, ...rest] = i.path.map(String);
        return `${flagOf[key] ?? key}${rest.length ? `[${rest.join(".")}]` : ""}: ${i.message}`;
      }).join("; "),
    );
  }
  const seed = Number(o.seed);
  if (!Number.isInteger(seed)) throw new RangeError(`--seed must be an integer, got "${o.seed}"`);
  return {
    params: raw,
    brainweb: String(o.brainweb),
    model: String(o.model),
    out: String(o.out),
    seed,
  };
}

function stamp(msg: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

/**
 * Runs the experiment of a parsed command line in this process through the recipe API; a
 * BrainWeb folder that does not exist is not given as an input (the procedural phantom stands
 * in). `prior` replaces loading `--model`.
 */
export async function runArgs(
  a: ExperimentArgs,
  options: { log?: (m: string) => void; command?: string; prior?: ScorePrior } = {},
): Promise<{ markdown: string }> {
  const log = options.log ?? stamp;
  const hasBrainweb = await Deno.stat(a.brainweb).then((s) => s.isDirectory, () => false);
  if (!hasBrainweb) log(`NOTE: ${a.brainweb} is absent`);
  let markdown = "";
  await runRecipeInProcess(
    defineRecipe({
      ...recipe,
      run: async (ctx) => {
        ({ markdown } = await runExperiment(ctx, {
          command: options.command,
          prior: options.prior,
        }));
      },
    }),
    {
      params: a.params,
      inputs: hasBrainweb ? [a.brainweb] : [],
      models: [a.model],
      outDir: a.out,
      seed: a.seed,
      log,
    },
  );
  return { markdown };
}

if (import.meta.main) {
  let a: ExperimentArgs;
  try {
    a = parseArgs(Deno.args);
  } catch (e) {
    if ((e as { code?: string }).code === "commander.helpDisplayed") Deno.exit(0);
    console.error((e as Error).message);
    Deno.exit(2);
  }
  const { markdown } = await runArgs(a, {
    command: `deno run -A experiments/tracer_transfer/cli.ts ${Deno.args.join(" ")}`,
  });
  console.log(markdown);
}
