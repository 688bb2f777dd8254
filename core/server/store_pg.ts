/**
 * {@linkcode JobStore} on PostgreSQL for several machines: the queue itself (claims with `SKIP
 * LOCKED`, leases kept alive by heartbeats, retries up to a limit, attempt fencing) is pg-boss's;
 * the job records, logs and progress live in petrel's own tables beside it, and every change is
 * announced with `NOTIFY` so servers on other machines stream logs live.
 *
 * Each run holds a claim `(worker id, attempt)`; pg-boss's attempt number (`retryCount`) is the
 * fencing token: a run whose lease was lost (no heartbeat within `leaseSeconds`) can no longer
 * complete the job in pg-boss, so its late result is refused in the same transaction that would
 * have recorded it.
 *
 * @module
 */
import pg from "pg";
import { PgBoss } from "pg-boss";
import {
  buildStats,
  finishValues,
  type HeartbeatAnswer,
  type JobClaim,
  type JobOutcome,
  type JobRecord,
  type JobStore,
  type LogBatchKey,
  type LogLine,
  type NewJob,
  newJobValues,
  planLogBatch,
  type Row,
  type StoreStats,
  toRecord,
} from "./store.ts";

/** The version of petrel's tables this code writes; a database with a newer one is refused. */
export const PG_SCHEMA_VERSION = 1;

const QUEUE = "petrel-jobs";

/** A configuration problem found at start (unreachable database, password, schema version). */
export class DatabaseConfigError extends Error {}

/** Options of {@linkcode PgJobStore.open}. */
export interface PgStoreOptions {
  /** PostgreSQL schema of petrel's tables (default `petrel`; pg-boss uses `<schema>_queue`). */
  schema?: string;
  /** A run's lease: a worker silent this long loses its jobs (seconds, ≥ 10; default 30). */
  leaseSeconds?: number;
  /** Starts of a job at most, over lost leases and restarts (default 3). */
  maxAttempts?: number;
  /** Connection timeout in milliseconds (default 5000). */
  connectTimeoutMs?: number;
  /** Connections in the pool (default 8). */
  poolSize?: number;
  /** How often pg-boss's supervisor looks for expired leases (seconds; default 2). */
  superviseSeconds?: number;
  /** Clock of the workers' liveness table (tests move it forward; default `Date.now`). */
  now?: () => number;
}

/** Notifications of a {@linkcode PgJobStore}: a job changed, or its cancellation was asked. */
export interface StoreWatcher {
  /** Log, progress or state of job `id` changed (on any machine). */
  onChange?: (id: string) => void;
  /** The user asked to cancel job `id`. */
  onCancel?: (id: string) => void;
  /** A job was queued. */
  onQueued?: () => void;
}

const IDENT = /^[a-z_][a-z0-9_]{0,40}$/;

/** `postgres://user:***@host:port/db` for messages: never the password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparsable URL)";
  }
}

/** One sentence for a failed connection attempt. */
export function describePgError(e: unknown, url: string): string {
  const err = e as { code?: string; message?: string };
  let host = "?", user = "?", db = "?";
  try {
    const u = new URL(url);
    host = `${u.hostname}:${u.port || 5432}`;
    user = decodeURIComponent(u.username) || "(default)";
    db = u.pathname.slice(1) || "(default)";
  } catch {
    return `the database URL '${url.replace(/:[^:@/]*@/, ":***@")}' is not a valid URL`;
  }
  const code = err.code ?? "";
  if (code === "28P01" || code === "28000") {
    return `the database at ${host} refused user '${user}': wrong password or not allowed (${code})`;
  }
  if (code === "3D000") return `the database '${db}' does not exist on ${host}`;
  if (
    code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EAI_AGAIN" ||
    code === "EHOSTUNREACH"
  ) {
    return `cannot reach the database at ${host} (${code}); is PostgreSQL running there?`;
  }
  const msg = err.message ?? String(e);
  if (/timeout/i.test(msg)) return `cannot reach the database at ${host} (connection timed out)`;
  return `cannot use the database at ${host}: ${msg}`;
}

function tables(s: string): string {
  return `
CREATE TABLE IF NOT EXISTS ${s}.jobs (
  id TEXT PRIMARY KEY,
  "user" TEXT NOT NULL,
  state TEXT NOT NULL,
  recipe TEXT NOT NULL,
  recipe_path TEXT NOT NULL,
  params TEXT NOT NULL,
  seed BIGINT,
  inputs TEXT NOT NULL,
  datasets TEXT NOT NULL,
  job_dir TEXT NOT NULL,
  limits TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  started_at BIGINT,
  finished_at BIGINT,
  attempts INTEGER NOT NULL DEFAULT 0,
  exit_code INTEGER,
  reason TEXT,
  error TEXT,
  progress_done DOUBLE PRECISION NOT NULL DEFAULT 0,
  progress_total DOUBLE PRECISION NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  gpu INTEGER,
  worker_id TEXT,
  manifest TEXT,
  log_lines INTEGER NOT NULL DEFAULT 0,
  log_run TEXT,
  log_next INTEGER NOT NULL DEFAULT 0,
  seq BIGSERIAL NOT NULL
);
-- added after schema version 1 shipped: additive, so older petrels still read these tables
ALTER TABLE ${s}.jobs ADD COLUMN IF NOT EXISTS log_run TEXT;
ALTER TABLE ${s}.jobs ADD COLUMN IF NOT EXISTS log_next INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS jobs_user ON ${s}.jobs("user", seq);
CREATE INDEX IF NOT EXISTS jobs_state ON ${s}.jobs(state, seq);
CREATE TABLE IF NOT EXISTS ${s}.job_logs (
  job_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  line TEXT NOT NULL,
  PRIMARY KEY (job_id, seq)
);
CREATE TABLE IF NOT EXISTS ${s}.workers (
  id TEXT PRIMARY KEY,
  seen_at BIGINT NOT NULL
);`;
}

type Client = pg.PoolClient;

/** pg-boss's database interface over one client, so its statements join our transaction. */
function bossDb(
  c: Client,
): { executeSql(text: string, values?: unknown[]): Promise<{ rows: Row[] }> } {
  return { executeSql: (text, values) => c.query(text, values as unknown[]) };
}

/** {@linkcode JobStore} on PostgreSQL with pg-boss as the queue. Open with {@linkcode PgJobStore.open}. */
export class PgJobStore implements JobStore {
  #pool: pg.Pool;
  #boss: PgBoss;
  #s: string;
  #url: string;
  #lease: number;
  #maxAttempts: number;
  #listeners: { close(): Promise<void> }[] = [];
  #closed = false;
  #now: () => number;

  private constructor(
    pool: pg.Pool,
    boss: PgBoss,
    url: string,
    o: Required<Pick<PgStoreOptions, "schema" | "leaseSeconds" | "maxAttempts" | "now">>,
  ) {
    this.#now = o.now;
    this.#pool = pool;
    this.#boss = boss;
    this.#url = url;
    this.#s = o.schema;
    this.#lease = o.leaseSeconds;
    this.#maxAttempts = o.maxAttempts;
  }

  /**
   * Connects, creates or checks petrel's tables and pg-boss's schema, and creates the queue.
   * Throws {@linkcode DatabaseConfigError} with one sentence for an unreachable database, a
   * refused login or a schema newer than this code.
   *
   * @example
   * ```ts
   * const store = await PgJobStore.open("postgres://petrel:pw@db:5432/petrel");
   * await store.close();
   * ```
   */
  static async open(url: string, options: PgStoreOptions = {}): Promise<PgJobStore> {
    const schema = options.schema ?? "petrel";
    if (!IDENT.test(schema)) {
      throw new DatabaseConfigError(
        `the schema name '${schema}' is not allowed; expected lower-case letters, digits and '_'`,
      );
    }
    const leaseSeconds = options.leaseSeconds ?? 30;
    if (!(leaseSeconds >= 10)) throw new DatabaseConfigError("the lease must be at least 10 s");
    const maxAttempts = options.maxAttempts ?? 3;
    try {
      new URL(url);
    } catch {
      throw new DatabaseConfigError(describePgError(new Error("bad URL"), url));
    }
    const pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 8,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    });
    // An idle connection dropped by a database restart must not crash the process.
    pool.on("error", () => {});
    try {
      await pool.query("SELECT 1");
    } catch (e) {
      await pool.end().catch(() => {});
      throw new DatabaseConfigError(describePgError(e, url));
    }
    const c = await pool.connect();
    c.on("error", () => {}); // a reset rejects the pending query (see #tx)
    try {
      await c.query("BEGIN");
      await c.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`petrel-schema-${schema}`]);
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await c.query(
        `CREATE TABLE IF NOT EXISTS ${schema}.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
      );
      const v = await c.query(`SELECT value FROM ${schema}.meta WHERE key = 'schema_version'`);
      const found = v.rows.length ? Number(v.rows[0].value) : 0;
      if (found > PG_SCHEMA_VERSION) {
        throw new DatabaseConfigError(
          `the database schema '${schema}' is version ${found}, newer than this petrel's ` +
            `(${PG_SCHEMA_VERSION}); upgrade petrel on this machine`,
        );
      }
      await c.query(tables(schema));
      if (!found) {
        await c.query(
          `INSERT INTO ${schema}.meta (key, value) VALUES ('schema_version', $1)`,
          [String(PG_SCHEMA_VERSION)],
        );
      }
      await c.query("COMMIT");
    } catch (e) {
      await c.query("ROLLBACK").catch(() => {});
      c.release();
      await pool.end().catch(() => {});
      if (e instanceof DatabaseConfigError) throw e;
      throw new DatabaseConfigError(describePgError(e, url));
    }
    c.release();
    const superviseSeconds = options.superviseSeconds ?? 2;
    const boss = new PgBoss({
      connectionString: url,
      schema: `${schema}_queue`,
      max: 4,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      superviseIntervalSeconds: superviseSeconds,
      monitorIntervalSeconds: Math.max(superviseSeconds, 5),
      schedule: false,
      registerInstance: false,
      openTelemetry: { enabled: false },
    });
    // pg-boss reports background failures (e.g. during a database restart) as events; it retries.
    boss.on("error", () => {});
    try {
      await boss.start();
      await boss.createQueue(QUEUE, {
        retryLimit: maxAttempts - 1,
        heartbeatSeconds: leaseSeconds,
      }).catch(async (e) => {
        // Another process created it first.
        if (!(await boss.getQueue(QUEUE))) throw e;
      });
    } catch (e) {
      await boss.stop({ graceful: false, close: true }).catch(() => {});
      await pool.end().catch(() => {});
      const msg = (e as Error).message ?? String(e);
      if (/version|migrat/i.test(msg)) {
        throw new DatabaseConfigError(
          `the queue schema '${schema}_queue' cannot be used by this petrel: ${msg}`,
        );
      }
      throw new DatabaseConfigError(describePgError(e, url));
    }
    return new PgJobStore(pool, boss, url, {
      schema,
      leaseSeconds,
      maxAttempts,
      now: options.now ?? Date.now,
    });
  }

  /** The lease in seconds. */
  get leaseSeconds(): number {
    return this.#lease;
  }

  async #tx<T>(f: (c: Client) => Promise<T>): Promise<T> {
    const c = await this.#pool.connect();
    // A checked-out client has no pool listener: a connection reset (a database restart) between
    // its queries is an 'error' event that would crash the process. The pending query rejects
    // anyway; the broken client is destroyed on release instead of going back to the pool.
    let broken: Error | undefined;
    const onError = (e: Error) => broken = e;
    c.on("error", onError);
    try {
      await c.query("BEGIN");
      const r = await f(c);
      await c.query("COMMIT");
      return r;
    } catch (e) {
      await c.query("ROLLBACK").catch((r: unknown) => broken ??= r as Error);
      throw e;
    } finally {
      c.off("error", onError);
      c.release(broken);
    }
  }

  async #notifyChange(c: Client | pg.Pool, id: string): Promise<void> {
    await c.query("SELECT pg_notify($1, $2)", [`${this.#s}_job`, id]);
  }

  /** Stores a new queued job (and its pg-boss job) unless the user has `maxActive` already. */
  insert(job: NewJob, options: { maxActive?: number } = {}): Promise<JobRecord | undefined> {
    const s = this.#s;
    return this.#tx(async (c) => {
      // Serialises the quota check per user across machines.
      await c.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`petrel-user-${job.user}`]);
      const active = Number(
        (await c.query(
          `SELECT COUNT(*) AS n FROM ${s}.jobs WHERE "user" = $1 AND state IN ('queued', 'running')`,
          [job.user],
        )).rows[0].n,
      );
      if (options.maxActive !== undefined && active >= options.maxActive) return undefined;
      const r = await c.query(
        `INSERT INTO ${s}.jobs (id, "user", state, recipe, recipe_path, params, seed, inputs,
          datasets, job_dir, limits, created_at)
         VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *`,
        [...newJobValues(job), Date.now()],
      );
      // A user's k-th active job gets priority -k: users with fewer jobs go first, then the oldest.
      await this.#boss.send(QUEUE, { user: job.user }, {
        id: job.id,
        priority: -active,
        retryLimit: this.#maxAttempts - 1,
        heartbeatSeconds: this.#lease,
        // pg-boss allows at most 24 h; a longer run expires like a lost lease (docs/server.md).
        expireInSeconds: Math.min(24 * 3600, Math.ceil(job.limits.timeoutMs / 1000) + 600),
        db: bossDb(c),
      });
      await c.query("SELECT pg_notify($1, $2)", [`${s}_queued`, job.id]);
      return toRecord(r.rows[0]);
    });
  }

  /** One job, or undefined. */
  async get(id: string): Promise<JobRecord | undefined> {
    const r = await this.#pool.query(`SELECT * FROM ${this.#s}.jobs WHERE id = $1`, [id]);
    return r.rows.length ? toRecord(r.rows[0]) : undefined;
  }

  /** A user's jobs, newest first. */
  async list(user: string, options: { limit?: number } = {}): Promise<JobRecord[]> {
    const r = await this.#pool.query(
      `SELECT * FROM ${this.#s}.jobs WHERE "user" = $1 ORDER BY seq DESC LIMIT $2`,
      [user, options.limit ?? 200],
    );
    return r.rows.map(toRecord);
  }

  /** Number of the user's queued or running jobs. */
  async countActive(user: string): Promise<number> {
    const r = await this.#pool.query(
      `SELECT COUNT(*) AS n FROM ${this.#s}.jobs WHERE "user" = $1 AND state IN ('queued', 'running')`,
      [user],
    );
    return Number(r.rows[0].n);
  }

  /** Claims the next job through pg-boss and records the run (attempt = pg-boss retryCount + 1). */
  async claimNext(workerId: string, gpu: number): Promise<JobRecord | undefined> {
    await this.#seen(workerId);
    for (let i = 0; i < 20; i++) {
      const [j] = await this.#boss.fetch(QUEUE, { batchSize: 1 });
      if (!j) return undefined;
      const r = await this.#pool.query(
        `UPDATE ${this.#s}.jobs SET state = 'running', started_at = $1, attempts = $2,
          worker_id = $3, gpu = $4, progress_done = 0, progress_total = 0
          WHERE id = $5 AND state IN ('queued', 'running') RETURNING *`,
        [Date.now(), j.retryCount + 1, workerId, gpu, j.id],
      );
      if (r.rows.length) {
        await this.#notifyChange(this.#pool, j.id);
        return toRecord(r.rows[0]);
      }
      // Cancelled or purged meanwhile: settle the engine's job and take the next one.
      await this.#boss.complete(QUEUE, { id: j.id, retryCount: j.retryCount }).catch(() => {});
    }
    return undefined;
  }

  /** Records progress of a running job. */
  async setProgress(id: string, done: number, total: number): Promise<void> {
    await this.#pool.query(
      `UPDATE ${this.#s}.jobs SET progress_done = $1, progress_total = $2
        WHERE id = $3 AND state = 'running'`,
      [done, total, id],
    );
    await this.#notifyChange(this.#pool, id);
  }

  /**
   * Ends a running job, in one transaction with completing its pg-boss job for the same attempt;
   * false (nothing changed) if the job is not running, or if `claim` or the attempt no longer
   * holds it (lease lost: the result of a dead or cut-off worker is refused).
   */
  async finish(id: string, o: JobOutcome, claim?: JobClaim): Promise<boolean> {
    const s = this.#s;
    const done = await this.#tx(async (c) => {
      const r = await c.query(
        `UPDATE ${s}.jobs SET state = $1, finished_at = $2, exit_code = $3, reason = $4,
          error = $5, manifest = $6 WHERE id = $7 AND state = 'running'
          AND ($8::int IS NULL OR (worker_id = $9 AND attempts = $10)) RETURNING attempts`,
        finishValues(id, o, claim),
      );
      if (!r.rows.length) return false;
      const attempt = Number(r.rows[0].attempts);
      const res = await this.#boss.complete(
        QUEUE,
        { id, retryCount: attempt - 1 },
        { state: o.state },
        { db: bossDb(c) },
      );
      if (affected(res) !== 1) throw new Refused();
      await this.#notifyChange(c, id);
      return true;
    }).catch((e) => {
      if (e instanceof Refused) return false;
      throw e;
    });
    return done;
  }

  /** Cancels a queued job (and its pg-boss job). */
  cancelQueued(id: string): Promise<boolean> {
    const s = this.#s;
    return this.#tx(async (c) => {
      const r = await c.query(
        `UPDATE ${s}.jobs SET state = 'cancelled', finished_at = $1, reason = 'cancelled',
          error = 'cancelled by the user before it started', cancel_requested = 1
          WHERE id = $2 AND state = 'queued'`,
        [Date.now(), id],
      );
      if (r.rowCount !== 1) return false;
      await this.#boss.cancel(QUEUE, id, { db: bossDb(c) });
      await this.#notifyChange(c, id);
      return true;
    });
  }

  /** Marks a running job as to be cancelled and tells its worker (`NOTIFY <schema>_cancel`). */
  async requestCancel(id: string): Promise<void> {
    await this.#pool.query(`UPDATE ${this.#s}.jobs SET cancel_requested = 1 WHERE id = $1`, [id]);
    await this.#pool.query("SELECT pg_notify($1, $2)", [`${this.#s}_cancel`, id]);
  }

  /** Deletes an ended job, its log and its pg-boss job. */
  remove(id: string): Promise<boolean> {
    const s = this.#s;
    return this.#tx(async (c) => {
      const r = await c.query(
        `DELETE FROM ${s}.jobs WHERE id = $1 AND state IN ('succeeded', 'failed', 'cancelled')`,
        [id],
      );
      if (r.rowCount !== 1) return false;
      await c.query(`DELETE FROM ${s}.job_logs WHERE job_id = $1`, [id]);
      await this.#boss.deleteJob(QUEUE, id, { db: bossDb(c) });
      return true;
    });
  }

  /** Appends log lines, keeping at most `maxLines` (plus one note); see {@linkcode LogBatchKey}. */
  async appendLog(id: string, lines: string[], maxLines: number, key?: LogBatchKey): Promise<void> {
    if (lines.length === 0) return;
    const s = this.#s;
    await this.#tx(async (c) => {
      const r = await c.query(
        `SELECT log_lines, log_run, log_next FROM ${s}.jobs WHERE id = $1 FOR UPDATE`,
        [id],
      );
      if (!r.rows.length) return;
      const plan = planLogBatch(r.rows[0], lines, maxLines, key);
      if (!plan) return;
      await c.query(
        `INSERT INTO ${s}.job_logs (job_id, seq, line)
          SELECT $1, * FROM unnest($2::int[], $3::text[])`,
        [id, plan.seqs, plan.texts],
      );
      await c.query(
        `UPDATE ${s}.jobs SET log_lines = $1, log_run = $2, log_next = $3 WHERE id = $4`,
        [plan.logLines, plan.logRun, plan.logNext, id],
      );
      await this.#notifyChange(c, id);
    });
  }

  /** Log lines with `seq > after`. */
  async readLog(id: string, after: number, limit: number): Promise<LogLine[]> {
    const r = await this.#pool.query(
      `SELECT seq, line FROM ${this.#s}.job_logs WHERE job_id = $1 AND seq > $2
        ORDER BY seq LIMIT $3`,
      [id, after, limit],
    );
    return r.rows.map((x: Row) => ({ seq: Number(x.seq), line: x.line as string }));
  }

  async #seen(workerId: string): Promise<void> {
    await this.#pool.query(
      `INSERT INTO ${this.#s}.workers (id, seen_at) VALUES ($1, $2)
        ON CONFLICT (id) DO UPDATE SET seen_at = EXCLUDED.seen_at`,
      [workerId, this.#now()],
    );
  }

  /** Marks the worker stopped: its runs are taken back by the next recovery, lease or not. */
  async retire(workerId: string): Promise<void> {
    await this.#pool.query(`UPDATE ${this.#s}.workers SET seen_at = 0 WHERE id = $1`, [workerId]);
  }

  /** Renews the worker and its runs' pg-boss leases; answers lost and cancel-requested runs. */
  async heartbeat(
    workerId: string,
    runs: (JobClaim & { id: string })[],
  ): Promise<HeartbeatAnswer> {
    await this.#seen(workerId);
    const out: HeartbeatAnswer = { lost: [], cancel: [] };
    if (!runs.length) return out;
    const held = await this.#boss.touch(
      QUEUE,
      runs.map((r) => ({ id: r.id, retryCount: r.attempt - 1 })),
    );
    const settled = new Set((held as { settled?: string[] }).settled ?? runs.map((r) => r.id));
    const rows = await this.#pool.query(
      `SELECT id, state, worker_id, attempts, cancel_requested FROM ${this.#s}.jobs
        WHERE id = ANY($1::text[])`,
      [runs.map((r) => r.id)],
    );
    const byId = new Map<string, Row>(rows.rows.map((r: Row) => [r.id as string, r]));
    for (const run of runs) {
      const j = byId.get(run.id);
      if (
        !j || j.state !== "running" || j.worker_id !== workerId ||
        Number(j.attempts) !== run.attempt || !settled.has(run.id)
      ) {
        out.lost.push(run.id);
      } else if (Number(j.cancel_requested)) out.cancel.push(run.id);
    }
    return out;
  }

  /**
   * Brings running jobs of dead workers up to date: a worker not seen within the lease (and not
   * `currentWorker`) is dead. Its job is given back to pg-boss for another attempt (policy
   * `requeue`, attempts left, not being cancelled) or failed with reason `interrupted`; jobs
   * whose lease pg-boss already expired are shown queued again, or failed once pg-boss has used
   * all attempts. Safe to call from every process at any time (each change is fenced).
   */
  async recoverInterrupted(
    currentWorker: string,
    options: { policy: "requeue" | "fail"; maxAttempts: number },
  ): Promise<{ requeued: string[]; failed: string[] }> {
    const s = this.#s;
    await this.#seen(currentWorker);
    const out = { requeued: [] as string[], failed: [] as string[] };
    const now = this.#now();
    // Rows of workers gone for a day only grow the table (a missing row reads as dead anyway).
    await this.#pool.query(`DELETE FROM ${s}.workers WHERE seen_at < $1`, [now - 86_400_000]);
    const rows = (await this.#pool.query(
      `SELECT j.id, j.attempts, j.cancel_requested, j.worker_id,
          (w.seen_at IS NOT NULL AND w.seen_at > $2) AS alive
        FROM ${s}.jobs j LEFT JOIN ${s}.workers w ON w.id = j.worker_id
        WHERE j.state = 'running' AND (j.worker_id IS NULL OR j.worker_id <> $1)`,
      [currentWorker, now - this.#lease * 1000],
    )).rows;
    for (const r of rows) {
      const id = r.id as string;
      const attempts = Number(r.attempts);
      const cancelled = Number(r.cancel_requested) !== 0;
      const [bj] = await this.#boss.findJobs(QUEUE, { id });
      const bstate = bj?.state;
      const sameAttempt = bj !== undefined && bj.retryCount === attempts - 1;
      const fence = [id, r.worker_id, attempts];
      const requeue = async (): Promise<void> => {
        const u = await this.#pool.query(
          `UPDATE ${s}.jobs SET state = 'queued', worker_id = NULL, started_at = NULL
            WHERE id = $1 AND state = 'running' AND worker_id IS NOT DISTINCT FROM $2
            AND attempts = $3`,
          fence,
        );
        if (u.rowCount === 1) {
          out.requeued.push(id);
          await this.#notifyChange(this.#pool, id);
        }
      };
      const fail = async (why: string): Promise<boolean> => {
        const u = await this.#pool.query(
          `UPDATE ${s}.jobs SET state = $4, finished_at = $5, reason = $6, error = $7
            WHERE id = $1 AND state = 'running' AND worker_id IS NOT DISTINCT FROM $2
            AND attempts = $3`,
          [
            ...fence,
            cancelled ? "cancelled" : "failed",
            Date.now(),
            cancelled ? "cancelled" : "interrupted",
            why,
          ],
        );
        if (u.rowCount !== 1) return false; // another process got there first
        out.failed.push(id);
        await this.#notifyChange(this.#pool, id);
        return true;
      };
      const allLost =
        `the job's worker stopped (no heartbeat within ${this.#lease} s) on each of its ${attempts} attempts`;
      if (bstate === "active" && !sameAttempt) continue; // another worker holds it now
      if (bstate === "active" && r.alive) continue; // alive, lease held
      if (bstate === "created" || bstate === "retry") {
        // pg-boss took the lease back (no heartbeat): another attempt will run.
        if (!cancelled) await requeue();
        else if (await fail("the worker stopped while the job was being cancelled")) {
          await this.#boss.cancel(QUEUE, id).catch(() => {});
        }
        continue;
      }
      if (bstate === "active") {
        // The worker is dead by petrel's own heartbeat table; take the lease back at once.
        if (!cancelled && options.policy === "requeue" && attempts < options.maxAttempts) {
          const res = await this.#boss.fail(QUEUE, { id, retryCount: attempts - 1 }, {
            reason: "worker stopped",
          });
          // Not affected: another process settled this attempt; the next round looks again.
          if (affected(res) !== 1) continue;
          const [after] = await this.#boss.findJobs(QUEUE, { id });
          if (after?.state === "retry" || after?.state === "created") await requeue();
          else if (after?.state === "failed") await fail(allLost);
          continue;
        }
        const why = cancelled
          ? "the worker stopped while the job was being cancelled"
          : options.policy === "requeue"
          ? `the worker stopped while the job was running, and it had used all ${options.maxAttempts} attempts`
          : "the worker stopped while the job was running (restart policy: fail)";
        // Only the process whose fenced update won ends the engine's job.
        if (await fail(why)) await this.#boss.cancel(QUEUE, id).catch(() => {});
        continue;
      }
      // pg-boss has ended it (failed: every attempt lost its lease).
      if (bstate === "failed") await fail(allLost);
      else await fail("the job's queue entry ended or is gone while it was running");
    }
    return out;
  }

  /** Counts by state and reason, durations of succeeded runs, live workers. */
  async stats(): Promise<StoreStats> {
    const s = this.#s;
    const rows = (await this.#pool.query(
      `SELECT state, reason, COUNT(*) AS n FROM ${s}.jobs GROUP BY 1, 2`,
    )).rows;
    const durs = (await this.#pool.query(
      `SELECT (finished_at - started_at) / 1000.0 AS d FROM ${s}.jobs
        WHERE state = 'succeeded' AND started_at IS NOT NULL AND finished_at IS NOT NULL`,
    )).rows;
    const stats = buildStats(rows, durs.map((r: Row) => Number(r.d)));
    stats.workers = Number(
      (await this.#pool.query(
        `SELECT COUNT(*) AS n FROM ${s}.workers WHERE seen_at > $1`,
        [this.#now() - this.#lease * 1000],
      )).rows[0].n,
    );
    return stats;
  }

  /**
   * Listens for changes from every machine (`LISTEN <schema>_job`, `_cancel`, `_queued`) on a
   * dedicated connection that reconnects after a database restart. Returns a function that stops.
   */
  async watch(w: StoreWatcher): Promise<() => Promise<void>> {
    const s = this.#s;
    let client: pg.Client | undefined;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connect = async (): Promise<void> => {
      if (stopped) return;
      const c = new pg.Client({ connectionString: this.#url, connectionTimeoutMillis: 5000 });
      const retry = (): void => {
        if (stopped) return;
        c.removeAllListeners();
        c.end().catch(() => {});
        if (client === c) client = undefined;
        clearTimeout(timer);
        timer = setTimeout(() => void connect(), 1000);
      };
      c.on("error", retry);
      c.on("end", retry);
      c.on("notification", (n: { channel: string; payload?: string }) => {
        if (!n.payload) return;
        if (n.channel === `${s}_job`) w.onChange?.(n.payload);
        else if (n.channel === `${s}_cancel`) w.onCancel?.(n.payload);
        else if (n.channel === `${s}_queued`) w.onQueued?.();
      });
      try {
        await c.connect();
        await c.query(`LISTEN ${s}_job; LISTEN ${s}_cancel; LISTEN ${s}_queued`);
        client = c;
        // Changes may have been missed while disconnected: wake everything once.
        w.onQueued?.();
      } catch {
        retry();
      }
    };
    await connect();
    const handle = {
      close: async (): Promise<void> => {
        stopped = true;
        clearTimeout(timer);
        const c = client;
        client = undefined;
        if (c) {
          c.removeAllListeners();
          c.on("error", () => {});
          await c.end().catch(() => {});
        }
      },
    };
    this.#listeners.push(handle);
    return handle.close;
  }

  /** Stops pg-boss, the listeners and the pool. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const l of this.#listeners) await l.close();
    await this.#boss.stop({ graceful: false, close: true }).catch(() => {});
    await this.#pool.end().catch(() => {});
  }

  /** Drops petrel's and pg-boss's schemas (tests). */
  static async dropSchema(url: string, schema: string): Promise<void> {
    if (!IDENT.test(schema)) throw new Error(`bad schema name '${schema}'`);
    const c = new pg.Client({ connectionString: url });
    c.on("error", () => {});
    await c.connect();
    try {
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.query(`DROP SCHEMA IF EXISTS ${schema}_queue CASCADE`);
    } finally {
      await c.end();
    }
  }
}

class Refused extends Error {}

/** Rows a pg-boss command changed (its `CommandResponse` type omits the fields). */
function affected(res: unknown): number {
  return Number((res as { affected?: number }).affected ?? 0);
}
