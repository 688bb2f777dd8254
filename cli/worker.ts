/**
 * `petrel worker`: takes jobs from a shared PostgreSQL job database and runs each in the sandbox
 * (see `docs/server.md`, "Several machines"). Like `serve`, it runs with `--allow-all` (the
 * sandbox's memory watch reads `/proc/<pid>`), restarting itself so when the CLI has fewer
 * permissions.
 *
 * @module
 */
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { startWorker } from "../core/server/worker.ts";
import { EXIT } from "./exit_codes.ts";
import type { CliIo } from "./main.ts";
import { needsAllowAll, restartWithAllowAll } from "./serve.ts";

/** Options of `petrel worker`. */
export interface WorkerCliOptions {
  /** PostgreSQL URL. */
  db: string;
  /** Shared data folder. */
  data: string;
  /** Jobs at once. */
  slots?: number;
  /** GPUs of this machine. */
  gpus?: number;
  /** Model files or folders. */
  models: string[];
  /** Lease in seconds. */
  lease?: number;
  /** Starts of a job at most. */
  maxAttempts?: number;
}

function positiveInt(name: string, min = 1) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}.`);
    }
    return n;
  };
}

/** Adds `worker` to the program; `setCode` receives the exit status. */
export function addWorkerCommand(
  program: Command,
  io: CliIo,
  setCode: (code: number) => void,
): void {
  program.command("worker")
    .description("run jobs of a shared PostgreSQL job database on this machine (docs/server.md)")
    .requiredOption("--db <url>", "PostgreSQL URL, postgres://user:password@host:5432/db")
    .requiredOption("--data <dir>", "the shared data folder (the server's dataDir, same path)")
    .option("--slots <n>", "jobs run at once (default 1)", positiveInt("--slots"))
    .option("--gpus <n>", "GPUs the slots are spread over (default 1)", positiveInt("--gpus"))
    .option(
      "--models <path>",
      "model file or folder every job may read (repeatable)",
      (v: string, p: string[]) => [...p, v],
      [] as string[],
    )
    .option(
      "--lease <s>",
      "a silent worker loses its jobs after this (default 30)",
      positiveInt("--lease", 10),
    )
    .option(
      "--max-attempts <n>",
      "starts of a job at most (default 3)",
      positiveInt("--max-attempts"),
    )
    .addHelpText(
      "after",
      "\nStop with Ctrl-C or SIGTERM: running jobs are killed and handed back at once to run\n" +
        "again elsewhere. kill -9 loses nothing either: its jobs come back when the lease expires.",
    )
    .action(async (o: WorkerCliOptions) => {
      if (needsAllowAll()) {
        const args = ["worker", "--db", o.db, "--data", o.data];
        for (
          const [k, v] of [["--slots", o.slots], ["--gpus", o.gpus], ["--lease", o.lease], [
            "--max-attempts",
            o.maxAttempts,
          ]] as const
        ) if (v !== undefined) args.push(k, String(v));
        for (const m of o.models) args.push("--models", m);
        return setCode(await restartWithAllowAll(args));
      }
      let w;
      try {
        w = await startWorker({
          db: o.db,
          dataDir: o.data,
          slots: o.slots,
          gpus: o.gpus,
          models: o.models,
          leaseSeconds: o.lease,
          maxAttempts: o.maxAttempts,
        });
      } catch (e) {
        // Unreachable database, refused login, newer schema, unusable data folder: configuration.
        io.err(`petrel worker: ${(e as Error).message}\n`);
        return setCode(EXIT.usage);
      }
      const stop = () => void w.shutdown();
      for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, stop);
      await w.finished;
      for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.removeSignalListener(sig, stop);
      setCode(EXIT.ok);
    });
}
