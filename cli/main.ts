/**
 * The `petrel` command line: run recipes in the sandbox, inspect files, verify provenance,
 * benchmark, and the built-in `simulate` / `recon` recipes. Built on commander (an npm CLI
 * library; cliffy's registry is not reachable here).
 *
 * @module
 */

import { Argument, Command, CommanderError, InvalidArgumentError, Option } from "commander";
import {
  describeRecipe,
  petrelRoot,
  type RecipeDescription,
  runSandboxed,
  SANDBOX_DEFAULTS,
  type SandboxResult,
} from "../core/runtime/sandbox.ts";
import { type Manifest, MANIFEST_NAME, readManifest } from "../core/runtime/manifest.ts";
import { verifyManifest, type VerifyReport } from "../core/runtime/verify.ts";
import { DEFAULT_PRIOR_DIR } from "../core/diffusion/default_prior.ts";
import { EXIT, exitCodeFor } from "./exit_codes.ts";
import { describeFile, formatInfo } from "./info.ts";
import { progressReporter } from "./progress.ts";
import { addServeCommands } from "./serve.ts";
import { addWorkerCommand } from "./worker.ts";
import denoJson from "../deno.json" with { type: "json" };

/** Where the CLI writes; replaced in tests. */
export interface CliIo {
  /** Standard output (results, JSON). */
  out(text: string): void;
  /** Standard error (logs, progress, errors). */
  err(text: string): void;
  /** True when stderr is a terminal (progress bars instead of lines). */
  tty: boolean;
}

const encoder = new TextEncoder();

/** The process's stdout/stderr. */
export function processIo(): CliIo {
  return {
    out: (t) => Deno.stdout.writeSync(encoder.encode(t)),
    err: (t) => Deno.stderr.writeSync(encoder.encode(t)),
    tty: Deno.stderr.isTerminal(),
  };
}

/** Built-in recipes (files in examples/) behind `petrel simulate` and `petrel recon`. */
export const BUILTIN_RECIPES = {
  simulate: "simulate_study.ts",
  osem: "osem.ts",
  map: "map_rdp.ts",
  ddip: "ddip.ts",
} as const;

/** The prior `petrel recon ddip` uses when no `--models` is given (relative to petrel's root). */
export const DEFAULT_DDIP_MODELS: string = DEFAULT_PRIOR_DIR;
/** Wall-clock limit (s) of `petrel recon ddip` when no `--timeout` is given. */
export const DDIP_TIMEOUT_S = 7200;

class UsageError extends Error {}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) {
      throw new InvalidArgumentError(`${name} must be a positive number.`);
    }
    return n;
  };
}

function integer(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be an integer.`);
    return n;
  };
}

/** Parses `--set key=value` pairs (values stay strings; the recipe's schema coerces them). */
export function parseSets(sets: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of sets) {
    const i = s.indexOf("=");
    if (i <= 0) throw new UsageError(`--set expects key=value, got "${s}"`);
    out[s.slice(0, i).trim()] = s.slice(i + 1);
  }
  return out;
}

interface RunOptions {
  in: string[];
  models: string[];
  out?: string;
  set: string[];
  params?: string;
  seed?: number;
  timeout: number;
  memory: number;
  maxOutput: number;
  maxEntries: number;
  maxProcesses: number;
  json?: boolean;
  quiet?: boolean;
  force?: boolean;
}

function addRunOptions(cmd: Command, needOut = true): Command {
  return cmd
    .option("-i, --in <path>", "input file or folder the recipe may read (repeatable)", collect, [])
    .option(
      "-m, --models <path>",
      "model file or folder the recipe may read (repeatable)",
      collect,
      [],
    )
    .addOption(
      new Option("-o, --out <dir>", "output folder (created; must be empty)").makeOptionMandatory(
        needOut,
      ),
    )
    .option(
      "-s, --set <key=value>",
      "set a recipe parameter (repeatable; JSON values allowed)",
      collect,
      [],
    )
    .option("--params <file.json>", "read recipe parameters from a JSON file (--set wins)")
    .option("--seed <n>", `seed of the run (default ${SANDBOX_DEFAULTS.seed})`, integer("--seed"))
    .option(
      "--timeout <seconds>",
      "wall-clock limit",
      positiveNumber("--timeout"),
      SANDBOX_DEFAULTS.timeoutMs / 1000,
    )
    .option(
      "--memory <MiB>",
      "memory cap of the run",
      positiveNumber("--memory"),
      SANDBOX_DEFAULTS.memoryMb,
    )
    .option(
      "--max-output <MiB>",
      "output-size quota",
      positiveNumber("--max-output"),
      SANDBOX_DEFAULTS.maxOutputBytes / (1 << 20),
    )
    .option(
      "--max-entries <n>",
      "most files and folders the output folder may hold",
      positiveNumber("--max-entries"),
      SANDBOX_DEFAULTS.maxOutputEntries,
    )
    .option(
      "--max-processes <n>",
      "most processes and threads of the run (needs a cgroup pids controller; at least 32)",
      positiveNumber("--max-processes"),
      SANDBOX_DEFAULTS.maxProcesses,
    )
    .option("--force", "empty the output folder first if it holds a previous petrel run")
    .option("-q, --quiet", "do not print the recipe's log lines")
    .option("--json", "print the result as one JSON object on stdout");
}

async function isNonEmptyDir(path: string): Promise<boolean> {
  try {
    for await (const _ of Deno.readDir(path)) return true;
  } catch {
    return false;
  }
  return false;
}

async function clearPreviousRun(outDir: string): Promise<void> {
  if (!(await isNonEmptyDir(outDir))) return;
  try {
    await readManifest(`${outDir}/${MANIFEST_NAME}`);
  } catch {
    throw new UsageError(
      `--force only empties folders that hold a previous petrel run (${outDir} has no valid ${MANIFEST_NAME}); remove it yourself`,
    );
  }
  for await (const e of Deno.readDir(outDir)) {
    await Deno.remove(`${outDir}/${e.name}`, { recursive: true });
  }
}

/** Resolves a recipe argument: a path, or the name of a built-in recipe in examples/. */
export async function resolveRecipe(arg: string): Promise<string> {
  const exists = (p: string) => Deno.stat(p).then((s) => s.isFile, () => false);
  if (await exists(arg)) return arg;
  if (!arg.includes("/")) {
    const name = arg.replace(/\.ts$/, "");
    const file = (BUILTIN_RECIPES as Record<string, string>)[name] ?? `${name}.ts`;
    const p = `${petrelRoot()}/examples/${file}`;
    if (await exists(p)) return p;
  }
  return arg; // the sandbox reports "does not exist" (exit 3)
}

async function runRecipe(
  recipeArg: string,
  o: RunOptions,
  io: CliIo,
  label?: string,
): Promise<number> {
  const recipe = await resolveRecipe(recipeArg);
  let params: Record<string, unknown> = {};
  if (o.params) {
    try {
      params = JSON.parse(await Deno.readTextFile(o.params));
    } catch (e) {
      io.err(`petrel: cannot read --params ${o.params}: ${(e as Error).message}\n`);
      return EXIT.input;
    }
    if (!params || typeof params !== "object" || Array.isArray(params)) {
      io.err(`petrel: --params ${o.params} must hold a JSON object\n`);
      return EXIT.input;
    }
  }
  params = { ...params, ...parseSets(o.set) };
  const outDir = o.out!;
  if (o.force) await clearPreviousRun(outDir);
  const sink = progressReporter({ write: io.err, tty: io.tty, label: label ?? "progress" });
  const ac = new AbortController();
  const onSigint = (): void => ac.abort();
  try {
    Deno.addSignalListener("SIGINT", onSigint);
  } catch {
    // signals unsupported here
  }
  let result: SandboxResult;
  try {
    result = await runSandboxed({
      recipe,
      inputs: o.in,
      models: o.models,
      outDir,
      params,
      seed: o.seed,
      timeoutMs: o.timeout * 1000,
      memoryMb: o.memory,
      maxOutputBytes: Math.round(o.maxOutput * (1 << 20)),
      maxOutputEntries: o.maxEntries,
      maxProcesses: o.maxProcesses,
      signal: ac.signal,
      onLog: o.quiet ? undefined : (l) => sink.log(l),
      onProgress: (d, t) => sink.update(d, t),
    });
  } finally {
    sink.finish();
    try {
      Deno.removeSignalListener("SIGINT", onSigint);
    } catch {
      // ignore
    }
  }
  let manifest: Manifest | null = null;
  if (result.manifestPath) manifest = await readManifest(result.manifestPath).catch(() => null);
  const code = exitCodeFor(result);
  if (o.json) {
    io.out(
      JSON.stringify({ ...result, exitStatus: code, outputs: manifest?.outputs ?? [] }) + "\n",
    );
  } else if (result.ok) {
    const outs = manifest?.outputs ?? [];
    io.out(
      `ok: ${recipe} finished in ${(result.durationMs / 1000).toFixed(1)} s\n` +
        outs.map((f) => `  ${f.path} (${f.bytes} bytes)\n`).join("") +
        `manifest: ${result.manifestPath}\n`,
    );
  } else {
    io.err(
      `petrel: ${result.reason}${
        result.errorKind ? ` (${result.errorKind})` : ""
      }: ${result.error}\n`,
    );
    if (result.manifestPath) io.err(`manifest: ${result.manifestPath}\n`);
  }
  return code;
}

function paramsHelp(d: RecipeDescription): string {
  const props = d.schema.properties ?? {};
  const required = new Set(d.schema.required ?? []);
  const rows = Object.entries(props).map(([k, p]) => {
    const type = p.type ??
      (p.enum ? (p.enum as unknown[]).map((x) => JSON.stringify(x)).join("|") : "value");
    const bits = [p.description ?? ""];
    if (p.enum && p.type) {
      bits.push(`one of ${(p.enum as unknown[]).map((x) => JSON.stringify(x)).join(", ")}`);
    }
    if ("default" in p) bits.push(`default ${JSON.stringify(p.default)}`);
    else if (required.has(k)) bits.push("required");
    return [`  --set ${k}=<${type}>`, bits.filter(Boolean).join("; ")];
  });
  const w = Math.max(0, ...rows.map((r) => r[0].length)) + 2;
  return [
    `Recipe ${d.recipe}`,
    d.description ? `  ${d.description}` : "",
    rows.length ? "Parameters:" : "Parameters: (none)",
    ...rows.map(([a, b]) => a.padEnd(w) + b),
  ].filter((l) => l !== "").join("\n") + "\n";
}

/** What a manifest asks a rerun to read and under which limits (shown before trusting it). */
function rootsText(m: Manifest): string {
  const l = m.limits;
  return [
    `manifest asks to read: ${[m.recipe.path, ...m.inputRoots, ...m.modelRoots].join(", ")}`,
    `limits: timeout ${l.timeoutMs / 1000} s, memory ${l.memoryMb} MiB, output ${
      Math.round(l.maxOutputBytes / (1 << 20))
    } MiB${l.maxOutputEntries ? `, ${l.maxOutputEntries} entries` : ""}${
      l.maxProcesses ? `, ${l.maxProcesses} processes` : ""
    }`,
  ].join("\n") + "\n";
}

function verifyText(r: VerifyReport, rtol: number | undefined): string {
  const lines = [
    `recipe   ${r.manifest.recipe.path}${
      r.recipeChanged ? "  (CHANGED since the recorded run)" : ""
    }`,
    `adapter  recorded: ${r.manifest.adapter?.description ?? "(none)"}; rerun: ${
      r.sameAdapter ? "same" : "different"
    }`,
    `rerun    ${
      r.rerun.ok ? "ok" : `failed (${r.rerun.reason}: ${r.rerun.error})`
    } → ${r.rerunDir}`,
  ];
  if (r.changedInputs.length) {
    lines.push(`inputs changed since the run: ${r.changedInputs.join(", ")}`);
  }
  for (const o of r.outputs) {
    let s = `  ${o.status.padEnd(12)} ${o.path}`;
    if (o.maxAbsDiff !== undefined) {
      s += `  max |Δ| ${o.maxAbsDiff.toExponential(3)}  max rel ${
        o.maxRelDiff!.toExponential(3)
      }  (${o.differing} values differ)`;
      if (rtol !== undefined) s += o.maxRelDiff! <= rtol ? "  within --rtol" : "  OUTSIDE --rtol";
    }
    if (o.note) s += `  (${o.note})`;
    lines.push(s);
  }
  lines.push(r.bitIdentical ? "bit-identical: yes" : "bit-identical: no");
  return lines.join("\n") + "\n";
}

/** Exit status of `petrel verify`. */
export function verifyExitCode(r: VerifyReport, rtol?: number): number {
  if (!r.rerun.ok) return exitCodeFor(r.rerun);
  if (r.bitIdentical) return EXIT.ok;
  if (rtol === undefined) return EXIT.other;
  const within = r.outputs.every((o) =>
    o.status === "identical" || o.status === "not-compared" ||
    (o.status === "different" && o.maxRelDiff !== undefined && o.maxRelDiff <= rtol)
  );
  return within ? EXIT.ok : EXIT.other;
}

/**
 * Splits `petrel bench` arguments: leading words are benchmark names; from the first option
 * (`-x`, `--x`) on, everything goes to each benchmark (`petrel bench projector_bench --cases 2d`).
 */
export function splitBenchArgs(
  args: readonly string[],
): { names: string[]; passThrough: string[] } {
  const i = args.findIndex((a) => a.startsWith("-"));
  const cut = i < 0 ? args.length : i;
  return {
    names: args.slice(0, cut),
    passThrough: args.slice(cut).filter((a, k) => !(k === 0 && a === "--")),
  };
}

async function listBenches(): Promise<string[]> {
  const dir = `${petrelRoot()}/bench`;
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.endsWith(".ts")) out.push(e.name);
    }
  } catch {
    // no bench folder
  }
  return out.sort();
}

/** Builds the commander program; `setCode` receives each action's exit status. */
export function buildProgram(io: CliIo, setCode: (code: number) => void): Command {
  const program = new Command()
    .name("petrel")
    .description("PET image reconstruction on WebGPU: run recipes in a sandbox, inspect, verify.")
    .version(denoJson.version, "-V, --version")
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError("(add --help for usage)")
    .addHelpText(
      "after",
      `\nExit codes: 0 ok, 1 other failure, 2 usage/invalid parameters, 3 input error,\n` +
        `4 permission denied, 5 timeout/memory/output quota, 130 interrupted.\n` +
        `Docs: docs/cli.md`,
    );

  addRunOptions(
    program.command("run")
      .description(
        "run a recipe (a .ts file or a built-in name) in a sandbox: read its inputs and models, write --out, nothing else",
      )
      .argument("<recipe>", "recipe file, or a built-in recipe name from examples/")
      .addHelpText("after", "\nRecipe parameters: petrel run <recipe.ts> --help"),
  ).action(async (recipe: string, o: RunOptions) => setCode(await runRecipe(recipe, o, io)));

  addRunOptions(
    program.command("simulate")
      .description(`simulate a PET study (built-in recipe examples/${BUILTIN_RECIPES.simulate})`)
      .option(
        "--brainweb <dir>",
        "folder of BrainWeb label volumes (subjectNN_crisp.nii.gz): sets phantom=brainweb",
      )
      .option("--subject <n>", "BrainWeb subject number (with --brainweb)")
      .addHelpText(
        "after",
        `\nRecipe parameters: petrel run ${BUILTIN_RECIPES.simulate.replace(".ts", "")} --help\n` +
          `A brain study that \`petrel recon ddip\` reconstructs at its defaults:\n` +
          `  petrel simulate --set phantom=brain --out s`,
      ),
  ).action(async (o: RunOptions & { brainweb?: string; subject?: string }) => {
    if (o.subject !== undefined && o.brainweb === undefined) {
      throw new UsageError("--subject needs --brainweb <dir>");
    }
    if (o.brainweb !== undefined) {
      const n = o.subject ?? "04";
      if (!/^\d{1,2}$/.test(n)) {
        throw new UsageError(`--subject expects a BrainWeb subject number, got "${n}"`);
      }
      o.in = [o.brainweb, ...o.in];
      o.set = ["phantom=brainweb", `subject=${n.padStart(2, "0")}`, ...o.set];
    }
    setCode(await runBuiltin("simulate", o, io));
  });

  addRunOptions(
    program.command("recon")
      .description("reconstruct with a built-in recipe: osem, map (MAP-EM with RDP) or ddip")
      .addArgument(
        new Argument("<algorithm>", "osem | map | ddip").choices(["osem", "map", "ddip"]),
      )
      .addHelpText(
        "after",
        `\nRecipe parameters: petrel run osem|map_rdp|ddip --help\n` +
          `ddip: --models defaults to ${DEFAULT_DDIP_MODELS}, --timeout to ${DDIP_TIMEOUT_S} s`,
      ),
  ).action(async (algorithm: "osem" | "map" | "ddip", o: RunOptions, cmd: Command) => {
    if (algorithm === "ddip" && cmd.getOptionValueSource("timeout") === "default") {
      // a whole-volume DDIP run takes minutes even at the CPU preset: 600 s would cut it short
      o.timeout = DDIP_TIMEOUT_S;
    }
    setCode(await runBuiltin(algorithm, o, io));
  });

  program.command("info")
    .description(
      "describe files: NIfTI (.nii/.nii.gz), .npy, raw .f32, manifest.json (shape, geometry, stats, sha256)",
    )
    .argument("<files...>", "files to describe")
    .option("--json", "print one JSON array on stdout")
    .action(async (files: string[], o: { json?: boolean }) => {
      const infos = [];
      for (const f of files) {
        try {
          infos.push(await describeFile(f));
        } catch (e) {
          io.err(`petrel: ${f}: ${(e as Error).message}\n`);
          return setCode(EXIT.input);
        }
      }
      io.out(o.json ? JSON.stringify(infos) + "\n" : infos.map(formatInfo).join("\n\n") + "\n");
      setCode(EXIT.ok);
    });

  program.command("verify")
    .description(
      "rerun a recorded run and compare outputs (bit identity, or max abs/rel differences)",
    )
    .argument("<manifest>", "manifest.json of a run (or its output folder)")
    .option("-o, --out <dir>", "folder for the rerun (default: a new temporary folder)")
    .option(
      "--rtol <r>",
      "accept numeric outputs whose max relative difference is at most r",
      positiveNumber("--rtol"),
    )
    .option("-q, --quiet", "do not print the rerun's log lines")
    .option("--json", "print the report as JSON on stdout")
    .option(
      "--allow-root <dir>",
      "let the manifest read under this folder too (repeatable; default: the manifest folder's " +
        "parent, petrel's examples/ and models/)",
      collect,
      [],
    )
    .action(
      async (
        path: string,
        o: { out?: string; rtol?: number; quiet?: boolean; json?: boolean; allowRoot: string[] },
      ) => {
        const manifestPath = (await Deno.stat(path).then((s) => s.isDirectory, () => false))
          ? `${path}/${MANIFEST_NAME}`
          : path;
        let report: VerifyReport;
        try {
          io.err(rootsText(await readManifest(manifestPath)));
        } catch (e) {
          io.err(`petrel: ${(e as Error).message}\n`);
          return setCode(EXIT.input);
        }
        const sink = progressReporter({ write: io.err, tty: io.tty, label: "rerun" });
        try {
          report = await verifyManifest(manifestPath, {
            allowRoots: o.allowRoot,
            outDir: o.out,
            onLog: o.quiet ? undefined : (l) => sink.log(l),
            onProgress: (d, t) => sink.update(d, t),
          });
        } catch (e) {
          sink.finish();
          io.err(`petrel: ${(e as Error).message}\n`);
          return setCode(EXIT.input);
        }
        sink.finish();
        const code = verifyExitCode(report, o.rtol);
        // A temporary rerun that reproduced everything is not worth keeping.
        const removed = !o.out && report.bitIdentical;
        if (removed) await Deno.remove(report.rerunDir, { recursive: true }).catch(() => {});
        if (o.json) {
          const { manifest: _m, ...rest } = report;
          io.out(JSON.stringify({ ...rest, rerunRemoved: removed, exitStatus: code }) + "\n");
        } else {
          io.out(
            verifyText(report, o.rtol) + (removed ? "(temporary rerun folder removed)\n" : ""),
          );
        }
        setCode(code);
      },
    );

  addServeCommands(program, io, setCode);
  addWorkerCommand(program, io, setCode);

  program.command("bench")
    .description(
      "run the benchmarks in bench/ (trusted code, not sandboxed); extra args go to each bench",
    )
    .argument("[names...]", "benchmarks to run (file names without .ts; default all)")
    .option("--list", "list the benchmarks and exit")
    .allowUnknownOption()
    .action(async (_names: string[], o: { list?: boolean }, cmd: Command) => {
      const all = await listBenches();
      if (o.list) {
        io.out(all.map((b) => b.replace(/\.ts$/, "")).join("\n") + "\n");
        return setCode(EXIT.ok);
      }
      const { names: wanted, passThrough: extra } = splitBenchArgs(cmd.args);
      const chosen = wanted.length ? wanted.map((n) => n.replace(/\.ts$/, "") + ".ts") : all;
      const missing = chosen.filter((c) => !all.includes(c));
      if (missing.length) {
        io.err(
          `petrel: no benchmark ${missing.join(", ")} in bench/ (have: ${
            all.join(", ") || "none"
          })\n`,
        );
        return setCode(EXIT.usage);
      }
      let code: number = EXIT.ok;
      for (const b of chosen) {
        const st = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--allow-read",
            "--allow-write",
            "--allow-env",
            `--config=${petrelRoot()}/deno.json`,
            `${petrelRoot()}/bench/${b}`,
            ...extra,
          ],
          stdout: "inherit",
          stderr: "inherit",
        }).spawn().status;
        if (!st.success) {
          io.err(`petrel: benchmark ${b} failed (exit ${st.code})\n`);
          code = EXIT.other;
        }
      }
      setCode(code);
    });

  return program;
}

async function runBuiltin(
  name: keyof typeof BUILTIN_RECIPES,
  o: RunOptions,
  io: CliIo,
): Promise<number> {
  const file = `${petrelRoot()}/examples/${BUILTIN_RECIPES[name]}`;
  if (!(await Deno.stat(file).then(() => true, () => false))) {
    io.err(
      `petrel: the built-in recipe for "${name}" (examples/${
        BUILTIN_RECIPES[name]
      }) is not available yet\n`,
    );
    return EXIT.other;
  }
  if (name === "ddip" && o.models.length === 0) {
    // the shipped prior, so that `petrel recon ddip --in s --out d` needs nothing else
    o.models = [`${petrelRoot()}/${DEFAULT_DDIP_MODELS}`];
  }
  return runRecipe(file, o, io, name);
}

/**
 * Handles `petrel run <recipe> --help`, `petrel simulate --help` and `petrel recon <alg> --help`:
 * the command's help followed by the recipe's parameters.
 */
async function recipeHelp(args: string[], io: CliIo): Promise<number | null> {
  if (!args.includes("--help") && !args.includes("-h")) return null;
  const positional = args.filter((a) => !a.startsWith("-"));
  const command = positional[0];
  let recipeArg: string | undefined;
  if (command === "run") recipeArg = positional[1];
  else if (command === "simulate") {
    recipeArg = `${petrelRoot()}/examples/${BUILTIN_RECIPES.simulate}`;
  } else if (
    command === "recon" && positional[1] in BUILTIN_RECIPES && positional[1] !== "simulate"
  ) {
    recipeArg = `${petrelRoot()}/examples/${BUILTIN_RECIPES[positional[1] as "osem"]}`;
  }
  if (!recipeArg) return null;
  let code = EXIT.ok as number;
  const program = buildProgram({ ...io }, (c) => (code = c));
  program.commands.find((c) => c.name() === command)!.outputHelp();
  try {
    io.out("\n" + paramsHelp(await describeRecipe(await resolveRecipe(recipeArg))));
  } catch (e) {
    io.err(`petrel: ${(e as Error).message}\n`);
    code = /does not exist|cannot be accessed|must be a/.test((e as Error).message)
      ? EXIT.input
      : EXIT.other;
  }
  return code;
}

/** Runs the CLI with `args` (without the program name) and returns the exit status. */
export async function main(args: string[], io: CliIo = processIo()): Promise<number> {
  const help = await recipeHelp(args, io);
  if (help !== null) return help;
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => (code = c));
  if (args.length === 0) {
    program.outputHelp();
    return EXIT.usage;
  }
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return EXIT.ok;
      if (e.code === "commander.help") return EXIT.ok;
      if (e.code === "commander.executeSubCommandAsync") return EXIT.other;
      return EXIT.usage;
    }
    if (e instanceof UsageError) {
      io.err(`petrel: ${e.message}\n`);
      return EXIT.usage;
    }
    io.err(`petrel: ${(e as Error).message}\n`);
    return EXIT.other;
  }
  return code;
}
