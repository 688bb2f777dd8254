/**
 * `petrel worker`: a process on any machine that takes jobs from a shared PostgreSQL job database
 * and runs each in the same sandbox as the server (`runSandboxed`), streaming its log and progress
 * through the database. Jobs' folders must be on storage shared with the server, mounted at the
 * same path on every machine.
 *
 * @module
 */
import { JobEvents, JobRunner, type SandboxRunner } from "./queue.ts";
import { requireStrongSandbox, runSandboxed } from "./sandbox.ts";
import { PgJobStore } from "./store_pg.ts";

/** Options of {@linkcode startWorker}. */
export interface WorkerOptions {
  /** PostgreSQL URL of the job database. */
  db: string;
  /** The shared data folder (the server's `dataDir`); job folders must lie under it. */
  dataDir: string;
  /** Jobs run at once (default 1). */
  slots?: number;
  /** GPUs of this machine the slots are spread over (default 1). */
  gpus?: number;
  /** Model files or folders every job may read. */
  models?: string[];
  /** Log lines kept per job (default 5000). */
  maxLogLines?: number;
  /** A run whose worker is silent this long is taken back (seconds, default 30). */
  leaseSeconds?: number;
  /** Starts of a job at most (default 3). */
  maxAttempts?: number;
  /** What becomes of jobs of dead workers: run again while attempts remain, or fail. */
  onRestart?: "requeue" | "fail";
  /** Replaces the sandbox (tests). */
  runSandboxed?: SandboxRunner;
  /** Run jobs even when the host lacks a sandbox layer (default: `PETREL_ALLOW_WEAK_SANDBOX=1`). */
  allowWeakSandbox?: boolean;
  /** Prints start and stop lines (default true). */
  verbose?: boolean;
}

/** A running worker. */
export interface RunningWorker {
  /** This worker's id in the database. */
  workerId: string;
  /** The runner (its `runningCount`). */
  runner: JobRunner;
  /** Stops taking jobs, kills running ones and hands them back for another attempt elsewhere. */
  shutdown(): Promise<void>;
  /** Resolves when stopped. */
  finished: Promise<void>;
}

/**
 * Starts a worker: opens the database (throwing `DatabaseConfigError` for an unreachable
 * database, a refused login or a newer schema), then claims and runs jobs until shut down.
 *
 * @example
 * ```ts
 * const w = await startWorker({ db: "postgres://petrel:pw@db/petrel", dataDir: "/srv/petrel" });
 * Deno.addSignalListener("SIGTERM", () => void w.shutdown());
 * await w.finished;
 * ```
 */
export async function startWorker(o: WorkerOptions): Promise<RunningWorker> {
  if (!o.runSandboxed) await requireStrongSandbox(o.allowWeakSandbox);
  const dataDir = o.dataDir.replace(/\/+$/, "");
  try {
    if (!(await Deno.stat(dataDir)).isDirectory) throw new Error("not a folder");
  } catch (e) {
    throw new Error(`the data folder '${dataDir}' cannot be used: ${(e as Error).message}`);
  }
  const leaseSeconds = o.leaseSeconds ?? 30;
  const maxAttempts = o.maxAttempts ?? 3;
  const store = await PgJobStore.open(o.db, { leaseSeconds, maxAttempts });
  const workerId = `worker-${Deno.hostname()}-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const events = new JobEvents();
  const slots = o.slots ?? 1;
  const gpus = Math.max(1, o.gpus ?? 1);
  const runner = new JobRunner(store, {
    workerId,
    gpus,
    jobsPerGpu: Math.max(1, Math.ceil(slots / gpus)),
    models: o.models ?? [],
    maxLogLines: o.maxLogLines ?? 5000,
    runSandboxed: o.runSandboxed ?? runSandboxed,
    events,
    heartbeatMs: Math.max(1000, (leaseSeconds * 1000) / 5),
    pollMs: 2000,
    recover: {
      everyMs: Math.max(1000, (leaseSeconds * 1000) / 2),
      policy: o.onRestart ?? "requeue",
      maxAttempts,
    },
    dataDir,
    name: "petrel worker",
  });
  const unwatch = await store.watch({
    onCancel: (id) => runner.cancel(id),
    onQueued: () => void runner.kick(),
  });
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => resolveFinished = r);
  let stopping: Promise<void> | undefined;
  if (o.verbose !== false) {
    console.error(`petrel worker ${workerId}: ${slots} slot(s), data ${dataDir}`);
  }
  runner.kick();
  return {
    workerId,
    runner,
    shutdown(): Promise<void> {
      stopping ??= (async () => {
        await runner.stop();
        // Hand the killed runs back now (another attempt elsewhere) instead of after the lease.
        try {
          await store.retire(workerId);
          await store.recoverInterrupted(`${workerId}-stopping`, {
            policy: o.onRestart ?? "requeue",
            maxAttempts,
          });
          await store.retire(`${workerId}-stopping`);
        } catch {
          // Database unreachable: the lease expires instead.
        }
        await unwatch();
        await store.close();
        if (o.verbose !== false) console.error(`petrel worker ${workerId}: stopped`);
        resolveFinished();
      })();
      return stopping;
    },
    finished,
  };
}
