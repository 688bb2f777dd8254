/**
 * Failover run of `petrel serve` on PostgreSQL: 1 server (no local slots) and W workers as real
 * processes (`petrel serve`, `petrel worker`), N tiny jobs submitted over HTTP, and `kill -9` of a worker that
 * holds running jobs after each of the given fractions of jobs ended (a replacement worker is
 * started, as a supervisor would). Checks every job succeeded exactly once with a correct result,
 * and reports the throughput. With `--sqlite`, the same jobs on one host (SQLite, the same number
 * of slots in the server process, no kills) for comparison.
 *
 * ```sh
 * eval "$(scripts/pg_test_server.sh start 54339)"
 * deno run -A bench/server_failover.ts --db "$PETREL_TEST_PG_URL" --jobs 200 --kills 2
 * deno run -A bench/server_failover.ts --sqlite --jobs 200
 * ```
 *
 * Also imported by `tests/server/failover_test.ts` (scaled down).
 *
 * @module
 */
import pg from "pg";
import { hashToken } from "../core/server/mod.ts";

const PETREL = new URL("../petrel.ts", import.meta.url).pathname;
const RECIPE = new URL("../tests/server/fixtures/tiny_recipe.ts", import.meta.url).pathname;
const TOKEN = "pt_failover_token_0123456789";

/** Options of {@linkcode runFailover}. */
export interface FailoverOptions {
  /** PostgreSQL URL; undefined = the SQLite single-host run. */
  db?: string;
  /** Jobs to submit. */
  jobs: number;
  /** Worker processes (PostgreSQL). */
  workers: number;
  /** Slots per worker (the SQLite server gets workers × slots). */
  slots: number;
  /** Kill a worker with SIGKILL when this fraction of jobs has ended (e.g. [1/3, 2/3]). */
  killAt: number[];
  /** Each job sleeps this long (ms), so kills find running jobs. */
  sleepMs: number;
  /** Lease of a run (seconds, ≥ 10). */
  leaseSeconds: number;
  /** Restart PostgreSQL (fast shutdown) when this fraction of jobs has ended (needs `pgDir`). */
  restartDbAt?: number;
  /** The test cluster's folder (`PETREL_TEST_PG_DIR`, for `scripts/pg_test_server.sh restart`). */
  pgDir?: string;
  /** Prints progress. */
  verbose?: boolean;
}

interface JobView {
  id: string;
  state: string;
  reason: string | null;
  error: string | null;
  attempts: number;
}

/** What a failover run found. */
export interface FailoverReport {
  backend: "postgres" | "sqlite";
  jobs: number;
  succeeded: number;
  /** Jobs whose state is not succeeded (id → state, reason, error). */
  notSucceeded: Record<string, string>;
  /** Jobs whose result or log was wrong (id → problem). */
  wrong: Record<string, string>;
  /** Jobs run more than once (attempts > 1). */
  retried: number;
  /** Worker processes killed, and how many jobs each held then. */
  kills: { pid: number; running: number }[];
  /** Whether the database was restarted during the run. */
  dbRestarted: boolean;
  /** `/metrics` at the end: queued, running, succeeded (must be 0, 0, jobs). */
  metrics: { queued: number; running: number; succeeded: number };
  /** From the first submission to the last job's end. */
  wallSeconds: number;
  /** Jobs per second over `wallSeconds`. */
  jobsPerSecond: number;
}

interface Proc {
  child: Deno.ChildProcess;
  out: string[];
  /** The exit code once the process has ended (undefined while it runs). */
  exitCode?: number;
}

function spawn(args: string[]): Proc {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", PETREL, ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const out: string[] = [];
  const drain = async (s: ReadableStream<Uint8Array>): Promise<void> => {
    for await (const c of s.pipeThrough(new TextDecoderStream())) out.push(c);
  };
  drain(child.stdout).catch(() => {});
  drain(child.stderr).catch(() => {});
  const proc: Proc = { child, out };
  child.status.then((st) => proc.exitCode = st.code, () => proc.exitCode = -1);
  return proc;
}

async function waitFor<T>(f: () => Promise<T | undefined>, what: string, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function sumSquares(n: number): number {
  return n * (n + 1) * (2 * n + 1) / 6;
}

/** Runs one failover (or SQLite) run in a temporary folder and checks every job. */
export async function runFailover(o: FailoverOptions): Promise<FailoverReport> {
  const dir = await Deno.makeTempDir({ prefix: "petrel-failover-" });
  const dataDir = `${dir}/data`;
  await Deno.mkdir(dataDir, { recursive: true });
  const schema = `f_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  const pgSchema = "petrel"; // the CLI uses the default schema: one database per run
  const procs: Proc[] = [];
  let dbUrl = o.db;
  let admin: pg.Client | undefined;
  const log = (s: string): void => {
    if (o.verbose) console.error(`failover: ${s}`);
  };
  try {
    if (o.db) {
      // A database of its own, so the default schema names are free.
      admin = new pg.Client({ connectionString: o.db });
      admin.on("error", () => {});
      await admin.connect();
      await admin.query(`CREATE DATABASE ${schema}`);
      const u = new URL(o.db);
      u.pathname = `/${schema}`;
      dbUrl = u.toString();
    }
    const config = {
      dataDir,
      gpus: o.db ? 0 : 1,
      jobsPerGpu: o.db ? 1 : o.workers * o.slots,
      maxAttempts: 3,
      leaseSeconds: o.leaseSeconds,
      recipes: { tiny: RECIPE },
      limits: {
        timeoutMs: 120_000,
        memoryMb: 256,
        maxOutputBytes: 64 << 20,
        maxUploadBytes: 1 << 20,
        maxActiveJobs: 100_000,
      },
      users: [{ name: "alice", tokenHash: hashToken(TOKEN) }],
    };
    await Deno.writeTextFile(`${dir}/server.json`, JSON.stringify(config));
    const server = spawn([
      "serve",
      "--config",
      `${dir}/server.json`,
      "--port",
      "0",
      ...(dbUrl ? ["--db", dbUrl] : []),
    ]);
    procs.push(server);
    const base = await waitFor(async () => {
      if ((await Promise.race([server.child.status, Promise.resolve(null)])) !== null) {
        throw new Error(`the server exited: ${server.out.join("")}`);
      }
      return /listening on (http:\/\/[^\s]+)/.exec(server.out.join(""))?.[1];
    }, "the server to listen");
    const workers: Proc[] = [];
    const startWorker = (): Proc => {
      const w = spawn([
        "worker",
        "--db",
        dbUrl!,
        "--data",
        dataDir,
        "--slots",
        String(o.slots),
        "--lease",
        String(o.leaseSeconds),
      ]);
      procs.push(w);
      workers.push(w);
      return w;
    };
    if (dbUrl) { for (let i = 0; i < o.workers; i++) startWorker(); }
    // deno-lint-ignore no-explicit-any
    const api = async (method: string, path: string, body?: unknown): Promise<any> => {
      const r = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const j = await r.json();
      if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(j)}`);
      return j;
    };
    const t0 = performance.now();
    const ids: string[] = [];
    const ns = new Map<string, number>();
    for (let i = 0; i < o.jobs; i++) {
      const n = 1000 + i;
      const j = await api("POST", "/api/jobs", {
        recipe: "tiny",
        params: { n, sleepMs: o.sleepMs },
        seed: i,
      });
      ids.push(j.id);
      ns.set(j.id, n);
    }
    log(`submitted ${o.jobs} jobs in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const kills: { pid: number; running: number }[] = [];
    const pending = [...o.killAt].sort();
    const terminal = new Set(["succeeded", "failed", "cancelled"]);
    let states: Record<string, JobView> = {};
    let dbRestarted = false;
    for (;;) {
      const list = (await api("GET", `/api/jobs?limit=1000`).catch(() => ({ jobs: [] })))
        .jobs as JobView[];
      if (!list.length) {
        await new Promise((r) => setTimeout(r, 500)); // the database is restarting
        continue;
      }
      states = Object.fromEntries(list.map((j) => [j.id, j]));
      const ended = ids.filter((id) => terminal.has(states[id]?.state)).length;
      if (ended === ids.length) break;
      if (o.restartDbAt !== undefined && !dbRestarted && ended >= o.restartDbAt * o.jobs) {
        dbRestarted = true;
        log(`restarting PostgreSQL at ${ended} ended`);
        const r = await new Deno.Command("bash", {
          args: [
            new URL("../scripts/pg_test_server.sh", import.meta.url).pathname,
            "restart",
            o.pgDir!,
          ],
        }).output();
        if (!r.success) throw new Error(`restart failed: ${new TextDecoder().decode(r.stderr)}`);
        log("PostgreSQL is back");
      }
      if (pending.length && ended >= pending[0] * o.jobs && dbUrl) {
        // Kill a worker that holds running jobs (found by its pid in its worker id).
        const c = new pg.Client({ connectionString: dbUrl });
        c.on("error", () => {});
        const rows = await c.connect().then(() =>
          c.query(
            `SELECT worker_id, COUNT(*) AS n FROM ${pgSchema}.jobs WHERE state = 'running'
              GROUP BY 1 ORDER BY 2 DESC`,
          )
        ).then((r: { rows: { worker_id: string; n: string }[] }) => r.rows, () => []);
        await c.end().catch(() => {});
        let victim: Proc | undefined, held = 0;
        for (const r of rows) {
          const pid = Number(/-(\d+)-[0-9a-f]{8}$/.exec(r.worker_id ?? "")?.[1]);
          victim = workers.find((w) => w.child.pid === pid);
          if (victim) {
            held = Number(r.n);
            break;
          }
        }
        if (victim?.exitCode !== undefined) {
          // a worker that ended by itself is a failure of its own, not a race to paper over
          throw new Error(
            `worker ${victim.child.pid} exited with code ${victim.exitCode} before the kill:\n${
              victim.out.join("").slice(-2000)
            }`,
          );
        }
        if (victim) {
          pending.shift();
          victim.child.kill("SIGKILL");
          workers.splice(workers.indexOf(victim), 1);
          kills.push({ pid: victim.child.pid, running: held });
          log(
            `kill -9 worker ${victim.child.pid} holding ${held} running job(s) at ${ended} ended`,
          );
          startWorker();
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const wallSeconds = (performance.now() - t0) / 1000;
    const report: FailoverReport = {
      backend: dbUrl ? "postgres" : "sqlite",
      jobs: ids.length,
      succeeded: 0,
      notSucceeded: {},
      wrong: {},
      retried: 0,
      kills,
      dbRestarted,
      metrics: { queued: -1, running: -1, succeeded: -1 },
      wallSeconds,
      jobsPerSecond: ids.length / wallSeconds,
    };
    for (const id of ids) {
      const j = states[id];
      if (j.state !== "succeeded") {
        report.notSucceeded[id] = `${j.state} ${j.reason}: ${j.error}`;
        continue;
      }
      report.succeeded++;
      if (j.attempts > 1) report.retried++;
      // The result of the attempt the record names, computed independently here.
      const res = JSON.parse(
        await Deno.readTextFile(`${dataDir}/jobs/alice/${id}/out-${j.attempts}/result.json`),
      );
      const n = ns.get(id)!;
      if (res.n !== n || res.sumSquares !== sumSquares(n)) {
        report.wrong[id] = `result ${JSON.stringify(res)} for n = ${n}`;
      }
      // Exactly one recorded success in the log, and no refused result.
      const lines = ((await api("GET", `/api/jobs/${id}/log?after=0`)).lines as { line: string }[])
        .map((l) => l.line);
      const ok = lines.filter((l) => l.startsWith("[petrel] succeeded")).length;
      if (ok !== 1) report.wrong[id] = `${ok} success lines in the log`;
    }
    if (dbUrl) {
      // The queue engine agrees: each job completed once, nothing else left.
      const c = new pg.Client({ connectionString: dbUrl });
      c.on("error", () => {});
      await c.connect();
      const rows = (await c.query(
        `SELECT state, COUNT(*) AS n FROM ${pgSchema}_queue.job WHERE name = 'petrel-jobs'
          GROUP BY 1`,
      )).rows;
      const count = (await c.query(`SELECT COUNT(*) AS n FROM ${pgSchema}.jobs`)).rows[0].n;
      await c.end();
      const byState = Object.fromEntries(
        rows.map((r: { state: string; n: string }) => [r.state, Number(r.n)]),
      );
      if (byState.completed !== ids.length || Object.keys(byState).length !== 1) {
        report.wrong["(queue)"] = `pg-boss job states ${JSON.stringify(byState)}`;
      }
      if (Number(count) !== ids.length) report.wrong["(jobs)"] = `${count} job rows`;
    }
    const text = await (await fetch(`${base}/metrics`)).text();
    const metric = (name: string): number =>
      Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
    report.metrics = {
      queued: metric("petrel_jobs_queued"),
      running: metric("petrel_jobs_running"),
      succeeded: metric('petrel_jobs\\{state="succeeded"\\}'),
    };
    return report;
  } finally {
    for (const p of procs) {
      try {
        p.child.kill("SIGTERM");
      } catch {
        // already gone
      }
    }
    await Promise.all(procs.map((p) => p.child.status.catch(() => {})));
    if (admin) {
      await admin.query(`DROP DATABASE IF EXISTS ${schema} WITH (FORCE)`).catch(() => {});
      await admin.end().catch(() => {});
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const a = Deno.args;
  const get = (k: string, d: string): string => {
    const i = a.indexOf(k);
    return i >= 0 ? a[i + 1] : d;
  };
  const sqlite = a.includes("--sqlite");
  const kills = Number(get("--kills", sqlite ? "0" : "2"));
  const report = await runFailover({
    db: sqlite ? undefined : get("--db", Deno.env.get("PETREL_TEST_PG_URL") ?? ""),
    jobs: Number(get("--jobs", "200")),
    workers: Number(get("--workers", "3")),
    slots: Number(get("--slots", "2")),
    killAt: Array.from({ length: kills }, (_, i) => (i + 1) / (kills + 1)),
    sleepMs: Number(get("--sleep-ms", "200")),
    leaseSeconds: Number(get("--lease", "10")),
    restartDbAt: a.includes("--restart-db-at") ? Number(get("--restart-db-at", "0.5")) : undefined,
    pgDir: Deno.env.get("PETREL_TEST_PG_DIR"),
    verbose: true,
  });
  console.log(JSON.stringify(report, null, 2));
  const ok = report.succeeded === report.jobs && Object.keys(report.wrong).length === 0 &&
    report.metrics.succeeded === report.jobs;
  Deno.exit(ok ? 0 : 1);
}
