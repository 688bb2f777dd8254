/**
 * `petrel serve`: wires the configuration, the SQLite job store, the runner and the HTTP handler,
 * recovers jobs interrupted by a crash, and listens with `Deno.serve`.
 *
 * @module
 */
import { privateDir } from "./private.ts";
import { createHandler } from "./app.ts";
import { loadServerConfig, parseServerConfig, type ServerConfig } from "./config.ts";
import { JobEvents, jobOutDir, JobRunner, type SandboxRunner } from "./queue.ts";
import { killOrphanedRuns } from "./orphans.ts";
import { requireStrongSandbox, runSandboxed } from "./sandbox.ts";
import { type JobStore, SqliteJobStore } from "./store.ts";
import { DatabaseConfigError, PgJobStore } from "./store_pg.ts";

/** Options of {@linkcode createServer} and {@linkcode serve}. */
export interface ServeOptions {
  /** The configuration, or the path of its JSON file. */
  config: ServerConfig | string;
  /** Overrides `config.hostname`. */
  hostname?: string;
  /** Overrides `config.port` (0 = any free port). */
  port?: number;
  /** Stops the server when aborted. */
  signal?: AbortSignal;
  /** Replaces the sandbox (tests). */
  runSandboxed?: SandboxRunner;
  /**
   * Start even when the host lacks a sandbox layer (bubblewrap, cgroup memory/pids; see
   * docs/security.md). Default: the `PETREL_ALLOW_WEAK_SANDBOX=1` environment variable.
   */
  allowWeakSandbox?: boolean;
  /** Replaces the job store (default: `db`, else SQLite at `<dataDir>/petrel.db`). */
  store?: JobStore;
  /** PostgreSQL URL of a shared job database (overrides `config.db`). */
  db?: string;
  /** Called once listening (default: prints the address). */
  onListen?: (addr: { hostname: string; port: number; url: string }) => void;
  /** Prints recovery and listening lines (default true). */
  verbose?: boolean;
}

/** A server's parts without a socket: call `handler` directly, then `close`. */
export interface PetrelServer {
  /** The validated configuration. */
  config: ServerConfig;
  /** Job storage and queue. */
  store: JobStore;
  /** The runner of queued jobs. */
  runner: JobRunner;
  /** Change notifications (long-poll, SSE). */
  events: JobEvents;
  /** The HTTP handler (API and web page). */
  handler: (req: Request, info?: Deno.ServeHandlerInfo) => Promise<Response>;
  /** Jobs found running at start (left by a crashed server) and what became of them. */
  recovered: { requeued: string[]; failed: string[] };
  /** Kills running jobs (they stay `running` and are recovered at the next start), closes the store. */
  close(): Promise<void>;
}

/** Builds a server (store, recovery, runner, handler) without listening on a port. */
export async function createServer(options: ServeOptions): Promise<PetrelServer> {
  if (!options.runSandboxed) await requireStrongSandbox(options.allowWeakSandbox);
  const config = typeof options.config === "string"
    ? await loadServerConfig(options.config)
    : parseServerConfig(options.config);
  // the data folder and its jobs are the server user's only (0700)
  await privateDir(config.dataDir);
  await privateDir(`${config.dataDir}/jobs`);
  const db = options.db ?? config.db;
  if (!db && !options.store && config.gpus === 0) {
    throw new DatabaseConfigError(
      "gpus: 0 runs no jobs here, which needs a shared PostgreSQL database (--db) and workers",
    );
  }
  const store = options.store ??
    (db
      ? await PgJobStore.open(db, {
        maxAttempts: config.maxAttempts,
        leaseSeconds: config.leaseSeconds,
      })
      : new SqliteJobStore(`${config.dataDir}/petrel.db`));
  const workerId = `${crypto.randomUUID()}`;
  const recovered = await store.recoverInterrupted(workerId, {
    policy: config.onRestart,
    maxAttempts: config.maxAttempts,
  });
  if (options.verbose !== false && !canReadProc()) {
    console.error(
      "petrel serve: warning: Deno denies /proc/<pid> without --allow-all, so sandbox " +
        "processes left by a crashed server cannot be found (under bubblewrap they die with " +
        "it; the memory cap is the kernel's and needs no /proc)",
    );
  }
  // Sandbox processes of the dead server may still run: kill them before anything restarts.
  const interrupted = [];
  for (const id of [...recovered.requeued, ...recovered.failed]) {
    const job = await store.get(id);
    if (job && job.attempts > 0) interrupted.push(jobOutDir(job));
  }
  const orphans = await killOrphanedRuns(interrupted);
  if (options.verbose !== false && orphans.length) {
    console.error(
      `petrel serve: killed ${orphans.length} sandbox process(es) left by the previous server`,
    );
  }
  if (options.verbose !== false && (recovered.requeued.length || recovered.failed.length)) {
    console.error(
      `petrel serve: recovered ${recovered.requeued.length} interrupted job(s) into the queue, ` +
        `failed ${recovered.failed.length}`,
    );
  }
  const events = new JobEvents();
  const shared = store instanceof PgJobStore;
  const runner = new JobRunner(store, {
    workerId,
    gpus: config.gpus,
    jobsPerGpu: config.jobsPerGpu,
    models: config.models,
    maxLogLines: config.maxLogLines,
    runSandboxed: options.runSandboxed ?? runSandboxed,
    events,
    // A shared database: leases, jobs queued by other servers, workers that died elsewhere.
    ...(shared
      ? {
        heartbeatMs: Math.max(1000, (config.leaseSeconds * 1000) / 5),
        pollMs: 2000,
        recover: {
          everyMs: Math.max(1000, (config.leaseSeconds * 1000) / 2),
          policy: config.onRestart,
          maxAttempts: config.maxAttempts,
        },
      }
      : {}),
  });
  // Other machines' changes (log lines, progress, state, cancellation) arrive by NOTIFY.
  const unwatch = shared
    ? await store.watch({
      onChange: (id) => events.emit(id),
      onCancel: (id) => runner.cancel(id),
      onQueued: () => void runner.kick(),
    })
    : undefined;
  const handler = createHandler({ config, store, runner, events });
  let closed = false;
  runner.kick();
  return {
    config,
    store,
    runner,
    events,
    handler,
    recovered,
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await runner.stop();
      await unwatch?.();
      await store.close();
    },
  };
}

/** A listening server. */
export interface RunningServer extends PetrelServer {
  /** Base URL, e.g. `http://127.0.0.1:8787`. */
  url: string;
  /** Stops listening, kills running jobs (recovered at next start) and closes the store. */
  shutdown(): Promise<void>;
  /** Resolves when the server has stopped. */
  finished: Promise<void>;
}

/** Starts `petrel serve`: the HTTP API and web page on `Deno.serve`, and the job queue. */
export async function serve(options: ServeOptions): Promise<RunningServer> {
  const app = await createServer(options);
  const ac = new AbortController();
  options.signal?.addEventListener("abort", () => ac.abort());
  let resolveAddr!: (a: { hostname: string; port: number }) => void;
  const addr = new Promise<{ hostname: string; port: number }>((r) => resolveAddr = r);
  const httpServer = Deno.serve({
    hostname: options.hostname ?? app.config.hostname,
    port: options.port ?? app.config.port,
    signal: ac.signal,
    onListen: (a) => resolveAddr(a as { hostname: string; port: number }),
  }, app.handler);
  const { hostname, port } = await addr;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  const url = `http://${host}:${port}`;
  if (options.onListen) options.onListen({ hostname, port, url });
  else if (options.verbose !== false) console.log(`petrel serve listening on ${url}`);
  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      ac.abort();
      await app.runner.stop();
      await httpServer.shutdown().catch(() => {});
      await app.close();
    })();
    return stopping;
  };
  ac.signal.addEventListener("abort", () => void shutdown());
  return { ...app, url, shutdown, finished: httpServer.finished.then(() => stopping) };
}

/**
 * Whether this process may read `/proc/<pid>/…` (Deno requires `--allow-all` for it): needed by
 * the sandbox's resident-memory watch and by {@linkcode killOrphanedRuns}.
 */
export function canReadProc(): boolean {
  try {
    Deno.readTextFileSync(`/proc/${Deno.pid}/status`);
    return true;
  } catch (e) {
    // Not Linux (NotFound): nothing to warn about that this flag would fix.
    return !(e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied);
  }
}
