/**
 * Durable job storage behind a small interface ({@linkcode JobStore}) so the queue can move from
 * the embedded SQLite database ({@linkcode SqliteJobStore}, through `node:sqlite`) to PostgreSQL
 * for several machines. See `docs/server.md` for the PostgreSQL mapping
 * (`SELECT … FOR UPDATE SKIP LOCKED`).
 *
 * @module
 */
import { privateDatabaseFiles } from "./private.ts";
import { DatabaseSync } from "node:sqlite";

/** The life of a job: queued → running → succeeded | failed | cancelled. */
export type JobState = "queued" | "running" | "succeeded" | "failed" | "cancelled";

/** Why a job failed or stopped (the sandbox's reasons plus the server's own). */
export type JobReason =
  | "timeout"
  | "memory"
  | "processes"
  | "permission"
  | "output-quota"
  | "error"
  | "cancelled"
  | "interrupted";

/** What a submission stores. */
export interface NewJob {
  /** Unguessable job id (a UUID). */
  id: string;
  /** Owner (user name). */
  user: string;
  /** Recipe name from the allow-list, or `upload:<file name>`. */
  recipe: string;
  /** Path of the recipe module on the server. */
  recipePath: string;
  /** Recipe parameters (validated by the recipe's own schema when it runs). */
  params: Record<string, unknown>;
  /** Seed of the run, if given. */
  seed?: number;
  /** Paths the job may read: its uploaded inputs and the datasets it referenced. */
  inputs: string[];
  /** Names of the datasets it referenced. */
  datasets: string[];
  /** The job's folder (`<dataDir>/jobs/<user>/<id>`). */
  jobDir: string;
  /** Effective limits of the job. */
  limits: { timeoutMs: number; memoryMb: number; maxOutputBytes: number };
}

/** A stored job. */
export interface JobRecord extends NewJob {
  /** Current state. */
  state: JobState;
  /** Milliseconds since the epoch. */
  createdAt: number;
  /** When the current or last run started (ms since the epoch). */
  startedAt: number | null;
  /** When the job ended (ms since the epoch). */
  finishedAt: number | null;
  /** How many times the job has been started. */
  attempts: number;
  /** Exit code of the last run's process. */
  exitCode: number | null;
  /** Why the job failed or stopped. */
  reason: JobReason | null;
  /** One-sentence description of the failure. */
  error: string | null;
  /** Progress reported by the recipe: steps done. */
  progressDone: number;
  /** Progress reported by the recipe: steps in all. */
  progressTotal: number;
  /** Whether the user asked to cancel it. */
  cancelRequested: boolean;
  /** GPU slot of the current or last run. */
  gpu: number | null;
  /** Server instance that claimed the job. */
  workerId: string | null;
  /** Manifest written by the run, relative to the output folder. */
  manifest: string | null;
  /** Number of stored log lines. */
  logLines: number;
}

/** How a run ended. */
export interface JobOutcome {
  /** Final state. */
  state: "succeeded" | "failed" | "cancelled";
  /** Exit code of the process (null if it never ran). */
  exitCode: number | null;
  /** Why it failed or stopped. */
  reason?: JobReason;
  /** One-sentence description of the failure. */
  error?: string;
  /** Manifest path relative to the output folder. */
  manifest?: string;
}

/** One stored log line. */
export interface LogLine {
  /** Line number within the job's log (from 1). */
  seq: number;
  /** The text. */
  line: string;
}

/**
 * Where a log batch sits in its writer's stream: `run` names the writer (one per run of a job) and
 * `from` is the index, in that run's own lines, of the batch's first line. A batch sent again after
 * an error whose outcome is unknown (a `COMMIT` cut by a database restart) then lands once: the
 * store skips the lines of that run it already holds.
 */
export interface LogBatchKey {
  /** The writer: unique per run of a job. */
  run: string;
  /** Index of the batch's first line among the lines this writer has sent (from 0). */
  from: number;
}

/** Which run of a job a runner holds: its worker id and attempt number (the fencing token). */
export interface JobClaim {
  /** The worker that claimed the run. */
  workerId: string;
  /** The attempt number the claim returned (`JobRecord.attempts`). */
  attempt: number;
}

/** Counts and durations for `/metrics`. */
export interface StoreStats {
  /** Stored jobs by state. */
  states: Record<JobState, number>;
  /** Ended jobs by failure reason (failed and cancelled). */
  reasons: Partial<Record<JobReason, number>>;
  /** Run durations of succeeded jobs (seconds): count, sum and cumulative bucket counts. */
  durations: { count: number; sum: number; buckets: { le: number; count: number }[] };
  /** Workers seen within their lease (a networked store only). */
  workers?: number;
}

/** Upper bounds (seconds) of the duration histogram's buckets. */
export const DURATION_BUCKETS: readonly number[] = [
  1,
  5,
  15,
  60,
  300,
  900,
  3600,
  4 * 3600,
  24 * 3600,
];

/** The queue and job storage. Every method is async so a networked database can implement it. */
export interface JobStore {
  /**
   * Stores a new queued job, atomically checking that its user has fewer than `maxActive` queued
   * or running jobs; undefined (nothing stored) when the user already has that many.
   */
  insert(job: NewJob, options?: { maxActive?: number }): Promise<JobRecord | undefined>;
  /** One job, or undefined. */
  get(id: string): Promise<JobRecord | undefined>;
  /** A user's jobs, newest first. */
  list(user: string, options?: { limit?: number }): Promise<JobRecord[]>;
  /** Number of the user's queued or running jobs. */
  countActive(user: string): Promise<number>;
  /**
   * Atomically moves the next queued job to running (owned by `workerId`, on GPU slot `gpu`) and
   * returns it; users with fewer running jobs go first, then the oldest submission.
   */
  claimNext(workerId: string, gpu: number): Promise<JobRecord | undefined>;
  /** Records progress of a running job. */
  setProgress(id: string, done: number, total: number): Promise<void>;
  /**
   * Ends a running job; false if it was not running (e.g. already ended). With `claim`, only the
   * run that claim names may end it: a late result of a run whose lease was lost is refused.
   */
  finish(id: string, outcome: JobOutcome, claim?: JobClaim): Promise<boolean>;
  /**
   * A runner's heartbeat for the runs it holds: renews their leases, and answers which of them it
   * lost (the job was given to another run or ended) and which the user asked to cancel.
   */
  heartbeat(workerId: string, runs: (JobClaim & { id: string })[]): Promise<HeartbeatAnswer>;
  /** Counts and durations for `/metrics`. */
  stats(): Promise<StoreStats>;
  /**
   * Declares worker `workerId` stopped (a graceful shutdown), so the next
   * {@linkcode JobStore.recoverInterrupted} by any process takes its runs back without waiting for
   * the lease.
   */
  retire(workerId: string): Promise<void>;
  /** Cancels a job that is still queued; false if it is not queued any more. */
  cancelQueued(id: string): Promise<boolean>;
  /** Marks a running job as to be cancelled (the owner of the run aborts it). */
  requestCancel(id: string): Promise<void>;
  /** Deletes a job that has ended, with its log; false if it has not ended (or is missing). */
  remove(id: string): Promise<boolean>;
  /**
   * Appends log lines; lines beyond `maxLines` are dropped (one note says so). With a `key`, the
   * lines of that writer the store already holds are skipped, so a batch retried after an unknown
   * outcome is not written twice ({@linkcode LogBatchKey}).
   */
  appendLog(id: string, lines: string[], maxLines: number, key?: LogBatchKey): Promise<void>;
  /** Log lines with `seq > after`, at most `limit`. */
  readLog(id: string, after: number, limit: number): Promise<LogLine[]>;
  /**
   * After a crash: jobs left running by `workerId`s other than the current one are queued again
   * (while attempts remain) or failed with reason `interrupted`.
   */
  recoverInterrupted(
    currentWorker: string,
    options: { policy: "requeue" | "fail"; maxAttempts: number },
  ): Promise<{ requeued: string[]; failed: string[] }>;
  /** Closes the database. */
  close(): void | Promise<void>;
}

/** What {@linkcode JobStore.heartbeat} answers. */
export interface HeartbeatAnswer {
  /** Runs this worker no longer holds: abort them, their results would be refused. */
  lost: string[];
  /** Runs the user asked to cancel. */
  cancel: string[];
}

/** Assembles {@linkcode StoreStats} from `(state, reason, n)` rows and run durations (seconds). */
export function buildStats(rows: Row[], durations: number[]): StoreStats {
  const states: Record<JobState, number> = {
    queued: 0,
    running: 0,
    succeeded: 0,
    failed: 0,
    cancelled: 0,
  };
  const reasons: Partial<Record<JobReason, number>> = {};
  for (const r of rows) {
    const st = r.state as JobState;
    const n = Number(r.n);
    states[st] = (states[st] ?? 0) + n;
    if ((st === "failed" || st === "cancelled") && r.reason) {
      const k = r.reason as JobReason;
      reasons[k] = (reasons[k] ?? 0) + n;
    }
  }
  const buckets = DURATION_BUCKETS.map((le) => ({
    le,
    count: durations.filter((d) => d <= le).length,
  }));
  return {
    states,
    reasons,
    durations: { count: durations.length, sum: durations.reduce((a, b) => a + b, 0), buckets },
  };
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  user TEXT NOT NULL,
  state TEXT NOT NULL,
  recipe TEXT NOT NULL,
  recipe_path TEXT NOT NULL,
  params TEXT NOT NULL,
  seed INTEGER,
  inputs TEXT NOT NULL,
  datasets TEXT NOT NULL,
  job_dir TEXT NOT NULL,
  limits TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0,
  exit_code INTEGER,
  reason TEXT,
  error TEXT,
  progress_done REAL NOT NULL DEFAULT 0,
  progress_total REAL NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  gpu INTEGER,
  worker_id TEXT,
  manifest TEXT,
  log_lines INTEGER NOT NULL DEFAULT 0,
  log_run TEXT,
  log_next INTEGER NOT NULL DEFAULT 0,
  seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_user ON jobs(user, created_at);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);
CREATE TABLE IF NOT EXISTS job_logs (
  job_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  line TEXT NOT NULL,
  PRIMARY KEY (job_id, seq)
);
`;

/** A database row. */
export type Row = Record<string, unknown>;

/** What one log append writes: new rows, and the job's new log counters. */
export interface LogBatchPlan {
  seqs: number[];
  texts: string[];
  logLines: number;
  logRun: string | null;
  logNext: number;
}

/**
 * Plans a log append from the job's `log_lines, log_run, log_next`: skips the lines of the same
 * writer already held (`log_next − from`), caps at `maxLines` with one note, shortens long lines.
 * Null when nothing is to be written.
 */
export function planLogBatch(
  row: Row,
  lines: string[],
  maxLines: number,
  key?: LogBatchKey,
): LogBatchPlan | null {
  let n = Number(row.log_lines);
  const held = key && row.log_run === key.run ? Math.max(0, Number(row.log_next) - key.from) : 0;
  const fresh = held > 0 ? lines.slice(held) : lines;
  if (fresh.length === 0 || n > maxLines) return null;
  const seqs: number[] = [];
  const texts: string[] = [];
  for (const line of fresh) {
    n++;
    seqs.push(n);
    if (n > maxLines) {
      texts.push(`[petrel] log truncated after ${maxLines} lines`);
      break;
    }
    texts.push(line.length > 4000 ? `${line.slice(0, 4000)}…` : line);
  }
  return {
    seqs,
    texts,
    logLines: n,
    logRun: key ? key.run : (row.log_run as string | null) ?? null,
    logNext: key ? key.from + lines.length : Number(row.log_next),
  };
}

/**
 * The values of a finishing job's update: `state, finished_at, exit_code, reason, error,
 * manifest` (now), then the job's `id` and the claim check (`claim given?`, worker, attempt).
 */
export function finishValues(
  id: string,
  o: JobOutcome,
  claim: JobClaim | undefined,
): (string | number | null)[] {
  return [
    o.state,
    Date.now(),
    o.exitCode,
    o.reason ?? null,
    o.error ?? null,
    o.manifest ?? null,
    id,
    claim ? 1 : null,
    claim?.workerId ?? null,
    claim?.attempt ?? null,
  ];
}

/**
 * The values of a new job's columns `id, user, recipe, recipe_path, params, seed, inputs,
 * datasets, job_dir, limits`, in that order (both stores insert them so).
 */
export function newJobValues(job: NewJob): (string | number | null)[] {
  return [
    job.id,
    job.user,
    job.recipe,
    job.recipePath,
    JSON.stringify(job.params),
    job.seed ?? null,
    JSON.stringify(job.inputs),
    JSON.stringify(job.datasets),
    job.jobDir,
    JSON.stringify(job.limits),
  ];
}

/** A database row of `jobs` as a {@linkcode JobRecord} (shared by both stores). */
export function toRecord(r: Row): JobRecord {
  return {
    id: r.id as string,
    user: r.user as string,
    state: r.state as JobState,
    recipe: r.recipe as string,
    recipePath: r.recipe_path as string,
    params: JSON.parse(r.params as string),
    seed: r.seed === null ? undefined : Number(r.seed),
    inputs: JSON.parse(r.inputs as string),
    datasets: JSON.parse(r.datasets as string),
    jobDir: r.job_dir as string,
    limits: JSON.parse(r.limits as string),
    createdAt: Number(r.created_at),
    startedAt: r.started_at === null ? null : Number(r.started_at),
    finishedAt: r.finished_at === null ? null : Number(r.finished_at),
    attempts: Number(r.attempts),
    exitCode: r.exit_code === null ? null : Number(r.exit_code),
    reason: (r.reason as JobReason | null) ?? null,
    error: (r.error as string | null) ?? null,
    progressDone: Number(r.progress_done),
    progressTotal: Number(r.progress_total),
    cancelRequested: Number(r.cancel_requested) !== 0,
    gpu: r.gpu === null ? null : Number(r.gpu),
    workerId: (r.worker_id as string | null) ?? null,
    manifest: (r.manifest as string | null) ?? null,
    logLines: Number(r.log_lines),
  };
}

/** {@linkcode JobStore} in one SQLite file (WAL journal, synchronous commits). */
export class SqliteJobStore implements JobStore {
  #db: DatabaseSync;

  /** Opens (creating if needed) the database at `path`. */
  constructor(path: string) {
    privateDatabaseFiles(path); // 0600 before SQLite creates -wal/-shm with the same mode
    this.#db = new DatabaseSync(path);
    this.#db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;");
    privateDatabaseFiles(path);
    this.#db.exec(SCHEMA);
    // databases made before log batch keys: add their columns (SQLite has no ADD COLUMN IF NOT EXISTS)
    const cols = new Set(
      (this.#db.prepare("PRAGMA table_info(jobs)").all() as Row[]).map((r) => String(r.name)),
    );
    if (!cols.has("log_run")) this.#db.exec("ALTER TABLE jobs ADD COLUMN log_run TEXT");
    if (!cols.has("log_next")) {
      this.#db.exec("ALTER TABLE jobs ADD COLUMN log_next INTEGER NOT NULL DEFAULT 0");
    }
  }

  #tx<T>(f: () => T): T {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const r = f();
      this.#db.exec("COMMIT");
      return r;
    } catch (e) {
      this.#db.exec("ROLLBACK");
      throw e;
    }
  }

  #get(id: string): JobRecord | undefined {
    const r = this.#db.prepare("SELECT * FROM jobs WHERE id = ?").get(id) as Row | undefined;
    return r ? toRecord(r) : undefined;
  }

  /** Stores a new queued job unless its user has `maxActive` active jobs already. */
  insert(job: NewJob, options: { maxActive?: number } = {}): Promise<JobRecord | undefined> {
    const now = Date.now();
    const stored = this.#tx(() => {
      if (options.maxActive !== undefined) {
        const active = this.#db.prepare(
          "SELECT COUNT(*) AS n FROM jobs WHERE user = ? AND state IN ('queued', 'running')",
        ).get(job.user) as Row;
        if (Number(active.n) >= options.maxActive) return false;
      }
      const seq = Number(
        (this.#db.prepare("SELECT COALESCE(MAX(seq), 0) + 1 AS s FROM jobs").get() as Row).s,
      );
      this.#db.prepare(
        `INSERT INTO jobs (id, user, state, recipe, recipe_path, params, seed, inputs, datasets,
          job_dir, limits, created_at, seq) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(...newJobValues(job), now, seq);
      return true;
    });
    return Promise.resolve(stored ? this.#get(job.id) : undefined);
  }

  /** One job, or undefined. */
  get(id: string): Promise<JobRecord | undefined> {
    return Promise.resolve(this.#get(id));
  }

  /** A user's jobs, newest first. */
  list(user: string, options: { limit?: number } = {}): Promise<JobRecord[]> {
    const rows = this.#db.prepare(
      "SELECT * FROM jobs WHERE user = ? ORDER BY seq DESC LIMIT ?",
    ).all(user, options.limit ?? 200) as Row[];
    return Promise.resolve(rows.map(toRecord));
  }

  /** Number of the user's queued or running jobs. */
  countActive(user: string): Promise<number> {
    const r = this.#db.prepare(
      "SELECT COUNT(*) AS n FROM jobs WHERE user = ? AND state IN ('queued', 'running')",
    ).get(user) as Row;
    return Promise.resolve(Number(r.n));
  }

  /** Atomically moves the next queued job to running and returns it. */
  claimNext(workerId: string, gpu: number): Promise<JobRecord | undefined> {
    const id = this.#tx(() => {
      const r = this.#db.prepare(
        `SELECT j.id FROM jobs j WHERE j.state = 'queued'
         ORDER BY (SELECT COUNT(*) FROM jobs r WHERE r.user = j.user AND r.state = 'running'),
                  j.seq
         LIMIT 1`,
      ).get() as Row | undefined;
      if (!r) return undefined;
      this.#db.prepare(
        `UPDATE jobs SET state = 'running', started_at = ?, attempts = attempts + 1,
          worker_id = ?, gpu = ?, progress_done = 0, progress_total = 0 WHERE id = ?`,
      ).run(Date.now(), workerId, gpu, r.id as string);
      return r.id as string;
    });
    return Promise.resolve(id === undefined ? undefined : this.#get(id));
  }

  /** Records progress of a running job. */
  setProgress(id: string, done: number, total: number): Promise<void> {
    this.#db.prepare(
      "UPDATE jobs SET progress_done = ?, progress_total = ? WHERE id = ? AND state = 'running'",
    ).run(done, total, id);
    return Promise.resolve();
  }

  /** Ends a running job; false if it was not running (or `claim` is not the current run). */
  finish(id: string, o: JobOutcome, claim?: JobClaim): Promise<boolean> {
    const r = this.#db.prepare(
      `UPDATE jobs SET state = ?, finished_at = ?, exit_code = ?, reason = ?, error = ?,
        manifest = ? WHERE id = ? AND state = 'running'
        AND (? IS NULL OR (worker_id = ? AND attempts = ?))`,
    ).run(...finishValues(id, o, claim));
    return Promise.resolve(Number(r.changes) === 1);
  }

  /** Which of `runs` this worker lost or should cancel (one process owns the file: no leases). */
  heartbeat(workerId: string, runs: (JobClaim & { id: string })[]): Promise<HeartbeatAnswer> {
    const out: HeartbeatAnswer = { lost: [], cancel: [] };
    for (const run of runs) {
      const j = this.#get(run.id);
      if (!j || j.state !== "running" || j.workerId !== workerId || j.attempts !== run.attempt) {
        out.lost.push(run.id);
      } else if (j.cancelRequested) out.cancel.push(run.id);
    }
    return Promise.resolve(out);
  }

  /** Nothing to do: one process owns the file, and recovery at its next start takes the runs. */
  retire(_workerId: string): Promise<void> {
    return Promise.resolve();
  }

  /** Counts by state and reason, and the histogram of succeeded runs' durations. */
  stats(): Promise<StoreStats> {
    const rows = this.#db.prepare("SELECT state, reason, COUNT(*) AS n FROM jobs GROUP BY 1, 2")
      .all() as Row[];
    const durs = this.#db.prepare(
      `SELECT (finished_at - started_at) / 1000.0 AS d FROM jobs
        WHERE state = 'succeeded' AND started_at IS NOT NULL AND finished_at IS NOT NULL`,
    ).all() as Row[];
    return Promise.resolve(buildStats(rows, durs.map((r) => Number(r.d))));
  }

  /** Cancels a job that is still queued. */
  cancelQueued(id: string): Promise<boolean> {
    const r = this.#db.prepare(
      `UPDATE jobs SET state = 'cancelled', finished_at = ?, reason = 'cancelled',
        error = 'cancelled by the user before it started', cancel_requested = 1
        WHERE id = ? AND state = 'queued'`,
    ).run(Date.now(), id);
    return Promise.resolve(Number(r.changes) === 1);
  }

  /** Marks a running job as to be cancelled. */
  requestCancel(id: string): Promise<void> {
    this.#db.prepare("UPDATE jobs SET cancel_requested = 1 WHERE id = ?").run(id);
    return Promise.resolve();
  }

  /** Deletes a job that has ended, with its log. */
  remove(id: string): Promise<boolean> {
    const removed = this.#tx(() => {
      const r = this.#db.prepare(
        "DELETE FROM jobs WHERE id = ? AND state IN ('succeeded', 'failed', 'cancelled')",
      ).run(id);
      if (Number(r.changes) !== 1) return false;
      this.#db.prepare("DELETE FROM job_logs WHERE job_id = ?").run(id);
      return true;
    });
    return Promise.resolve(removed);
  }

  /** Appends log lines, keeping at most `maxLines` (plus one note); see {@linkcode LogBatchKey}. */
  appendLog(id: string, lines: string[], maxLines: number, key?: LogBatchKey): Promise<void> {
    if (lines.length === 0) return Promise.resolve();
    this.#tx(() => {
      const r = this.#db.prepare("SELECT log_lines, log_run, log_next FROM jobs WHERE id = ?")
        .get(id) as Row | undefined;
      if (!r) return;
      const plan = planLogBatch(r, lines, maxLines, key);
      if (!plan) return;
      const ins = this.#db.prepare("INSERT INTO job_logs (job_id, seq, line) VALUES (?, ?, ?)");
      for (let i = 0; i < plan.seqs.length; i++) ins.run(id, plan.seqs[i], plan.texts[i]);
      this.#db.prepare("UPDATE jobs SET log_lines = ?, log_run = ?, log_next = ? WHERE id = ?")
        .run(plan.logLines, plan.logRun, plan.logNext, id);
    });
    return Promise.resolve();
  }

  /** Log lines with `seq > after`. */
  readLog(id: string, after: number, limit: number): Promise<LogLine[]> {
    const rows = this.#db.prepare(
      "SELECT seq, line FROM job_logs WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?",
    ).all(id, after, limit) as Row[];
    return Promise.resolve(rows.map((r) => ({ seq: Number(r.seq), line: r.line as string })));
  }

  /** Re-queues or fails jobs left running by a previous server process. */
  recoverInterrupted(
    currentWorker: string,
    options: { policy: "requeue" | "fail"; maxAttempts: number },
  ): Promise<{ requeued: string[]; failed: string[] }> {
    const out = { requeued: [] as string[], failed: [] as string[] };
    this.#tx(() => {
      const rows = this.#db.prepare(
        "SELECT id, attempts, cancel_requested FROM jobs WHERE state = 'running' AND (worker_id IS NULL OR worker_id != ?)",
      ).all(currentWorker) as Row[];
      for (const r of rows) {
        const id = r.id as string;
        const cancelled = Number(r.cancel_requested) !== 0;
        if (
          !cancelled && options.policy === "requeue" && Number(r.attempts) < options.maxAttempts
        ) {
          this.#db.prepare(
            "UPDATE jobs SET state = 'queued', worker_id = NULL, started_at = NULL WHERE id = ?",
          ).run(id);
          out.requeued.push(id);
        } else {
          const why = cancelled
            ? "the server stopped while the job was being cancelled"
            : options.policy === "requeue"
            ? `the server stopped while the job was running, and it had used all ${options.maxAttempts} attempts`
            : "the server stopped while the job was running (restart policy: fail)";
          this.#db.prepare(
            `UPDATE jobs SET state = ?, finished_at = ?, reason = ?, error = ? WHERE id = ?`,
          ).run(
            cancelled ? "cancelled" : "failed",
            Date.now(),
            cancelled ? "cancelled" : "interrupted",
            why,
            id,
          );
          out.failed.push(id);
        }
      }
    });
    return Promise.resolve(out);
  }

  /** Closes the database. */
  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}
