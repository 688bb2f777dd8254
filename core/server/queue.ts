/**
 * The job runner: takes queued jobs from a {@linkcode JobStore} into a fixed number of slots
 * (GPUs × jobs per GPU), runs each through the sandbox, and records logs, progress and outcome.
 *
 * @module
 */
import { PRIVATE_DIR_MODE } from "./private.ts";
import type { JobReason, JobRecord, JobStore } from "./store.ts";
import type { SandboxOptions, SandboxResult } from "./sandbox.ts";

/** The sandbox entry point (`runSandboxed` of `core/runtime/sandbox.ts`, injectable for tests). */
export type SandboxRunner = (options: SandboxOptions) => Promise<SandboxResult>;

/** Wakes waiters when a job's log, progress or state changed (within this process). */
export class JobEvents {
  #waiters = new Map<string, Set<() => void>>();

  /** Signals that job `id` changed. */
  emit(id: string): void {
    const set = this.#waiters.get(id);
    if (!set) return;
    this.#waiters.delete(id);
    for (const f of set) f();
  }

  /** Resolves at the next change of job `id`, after `timeoutMs`, or when `signal` aborts. */
  wait(id: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = this.#waiters.get(id);
      if (!set) this.#waiters.set(id, set = new Set());
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        this.#waiters.get(id)?.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener("abort", done);
      set.add(done);
    });
  }
}

/** Options of a {@linkcode JobRunner}. */
export interface JobRunnerOptions {
  /** Identifies this server process in the store (claimed jobs carry it). */
  workerId: string;
  /** Number of GPUs. */
  gpus: number;
  /** Jobs run at once per GPU. */
  jobsPerGpu: number;
  /** Model paths every job may read. */
  models: string[];
  /** Log lines kept per job. */
  maxLogLines: number;
  /** The sandbox. */
  runSandboxed: SandboxRunner;
  /** Change notifications. */
  events: JobEvents;
  /**
   * Heartbeat period in milliseconds (a shared database: renews the runs' leases, aborts runs
   * whose lease was lost or whose cancellation was asked on another machine). Default: none.
   */
  heartbeatMs?: number;
  /** Looks for queued jobs this often (milliseconds), for jobs submitted elsewhere. Default: none. */
  pollMs?: number;
  /** Recovers jobs of dead workers this often (a shared database). Default: only at start. */
  recover?: { everyMs: number; policy: "requeue" | "fail"; maxAttempts: number };
  /** Job folders must lie under this folder (a worker's shared data folder). */
  dataDir?: string;
  /** Prefix of this process's messages (default `petrel serve`). */
  name?: string;
}

/** The folder a job's attempt writes to (each attempt its own, so an orphan cannot mix in). */
export function jobOutDir(job: Pick<JobRecord, "jobDir" | "attempts">): string {
  return `${job.jobDir}/out-${Math.max(1, job.attempts)}`;
}

/** Runs queued jobs in a bounded number of slots. */
export class JobRunner {
  #store: JobStore;
  #o: JobRunnerOptions;
  #slots: boolean[];
  #running = new Map<
    string,
    { abort: AbortController; done: Promise<void>; attempt: number; lost: boolean }
  >();
  #timers: ReturnType<typeof setInterval>[] = [];
  #beating = false;
  #stopping = false;
  #kicking = false;
  #again = false;

  /** A runner over `store`; call {@linkcode JobRunner.kick} to start taking jobs. */
  constructor(store: JobStore, options: JobRunnerOptions) {
    this.#store = store;
    this.#o = options;
    this.#slots = new Array(options.gpus * options.jobsPerGpu).fill(false);
    if (options.heartbeatMs) {
      this.#timers.push(setInterval(() => void this.#heartbeat(), options.heartbeatMs));
    }
    if (options.pollMs) this.#timers.push(setInterval(() => void this.kick(), options.pollMs));
    const rec = options.recover;
    if (rec) {
      this.#timers.push(setInterval(async () => {
        try {
          const r = await store.recoverInterrupted(options.workerId, rec);
          for (const id of [...r.requeued, ...r.failed]) options.events.emit(id);
          if (r.requeued.length) this.kick();
        } catch {
          // The database is unreachable for now; the next round tries again.
        }
      }, rec.everyMs));
    }
  }

  get #name(): string {
    return this.#o.name ?? "petrel serve";
  }

  /** Renews leases; aborts runs that were lost (not recorded) or whose cancellation was asked. */
  async #heartbeat(): Promise<void> {
    if (this.#beating || this.#stopping) return;
    this.#beating = true;
    try {
      const runs = [...this.#running].map(([id, r]) => ({
        id,
        workerId: this.#o.workerId,
        attempt: r.attempt,
      }));
      const answer = await this.#store.heartbeat(this.#o.workerId, runs);
      for (const id of answer.lost) {
        const r = this.#running.get(id);
        if (r && !r.lost) {
          r.lost = true;
          console.error(`${this.#name}: lost the lease of job ${id}; stopping its run`);
          r.abort.abort();
        }
      }
      for (const id of answer.cancel) this.cancel(id);
    } catch {
      // Database unreachable: keep running; a lease lost meanwhile is refused at the end.
    } finally {
      this.#beating = false;
    }
  }

  /** Number of jobs running in this process. */
  get runningCount(): number {
    return this.#running.size;
  }

  /** Fills free slots with queued jobs (call after a submission or when a job ends). Never throws. */
  async kick(): Promise<void> {
    try {
      await this.#fill();
    } catch (e) {
      console.error(`${this.#name}: could not take jobs from the queue: ${(e as Error).message}`);
    }
  }

  async #fill(): Promise<void> {
    if (this.#kicking) {
      this.#again = true;
      return;
    }
    this.#kicking = true;
    try {
      do {
        this.#again = false;
        while (!this.#stopping) {
          const slot = this.#slots.indexOf(false);
          if (slot < 0) break;
          const gpu = Math.floor(slot / this.#o.jobsPerGpu);
          const job = await this.#store.claimNext(this.#o.workerId, gpu);
          if (!job) break;
          // Stopped while claiming: leave it `running`; recovery re-queues it at the next start.
          if (this.#stopping) break;
          this.#slots[slot] = true;
          this.#o.events.emit(job.id);
          const abort = new AbortController();
          const entry = { abort, done: Promise.resolve(), attempt: job.attempts, lost: false };
          this.#running.set(job.id, entry);
          entry.done = this.#run(job, abort.signal, entry).catch((e) => {
            console.error(`${this.#name}: job ${job.id} could not be recorded:`, e);
          }).finally(() => {
            this.#slots[slot] = false;
            this.#running.delete(job.id);
            this.#o.events.emit(job.id);
            if (!this.#stopping) this.kick();
          });
        }
      } while (this.#again && !this.#stopping);
    } finally {
      this.#kicking = false;
    }
  }

  /** Aborts job `id` if it runs in this process; true if it did. */
  cancel(id: string): boolean {
    const r = this.#running.get(id);
    if (!r) return false;
    r.abort.abort();
    return true;
  }

  /**
   * Stops taking jobs and kills the running ones WITHOUT recording an outcome: they stay
   * `running` in the store and are recovered (re-queued or failed) at the next start, exactly as
   * after a crash.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const t of this.#timers) clearInterval(t);
    const all = [...this.#running.values()];
    for (const r of all) r.abort.abort();
    await Promise.all(all.map((r) => r.done.catch(() => {})));
  }

  async #run(job: JobRecord, signal: AbortSignal, entry: { lost: boolean }): Promise<void> {
    const store = this.#store;
    const events = this.#o.events;
    const outDir = jobOutDir(job);
    let pending: string[] = [];
    // this run's log stream: `pending` holds its lines from index `logged` on; a batch retried
    // after an error lands once even if the error hid a commit (LogBatchKey)
    const logRun = crypto.randomUUID();
    let logged = 0;
    let progress: [number, number] | undefined;
    const flush = async (): Promise<void> => {
      if (pending.length) {
        const lines = pending;
        pending = [];
        try {
          await store.appendLog(job.id, lines, this.#o.maxLogLines, { run: logRun, from: logged });
          logged += lines.length;
        } catch (e) {
          pending = [...lines, ...pending]; // kept for the next flush
          const dropped = Math.max(0, pending.length - 10_000); // oldest first, if it piles up
          pending = pending.slice(dropped);
          logged += dropped;
          throw e;
        }
      }
      if (progress) {
        const p = progress;
        progress = undefined;
        try {
          await store.setProgress(job.id, p[0], p[1]);
        } catch (e) {
          progress ??= p;
          throw e;
        }
      }
      events.emit(job.id);
    };
    let flushing = Promise.resolve();
    const timer = setInterval(() => {
      flushing = flushing.then(flush).catch(() => {});
    }, 100);
    let result: SandboxResult;
    try {
      if (job.cancelRequested) throw new CancelledBeforeStart();
      if (this.#o.dataDir && !job.jobDir.startsWith(`${this.#o.dataDir}/`)) {
        throw new Error(
          `the job folder ${job.jobDir} is not under this worker's data folder ` +
            `${this.#o.dataDir}; mount the shared folder at the same path on every machine`,
        );
      }
      await Deno.mkdir(outDir, { recursive: true, mode: PRIVATE_DIR_MODE });
      pending.push(
        `[petrel] attempt ${job.attempts} on GPU slot ${job.gpu}: recipe ${job.recipe}`,
      );
      result = await this.#o.runSandboxed({
        recipe: job.recipePath,
        inputs: job.inputs,
        models: this.#o.models,
        outDir,
        params: job.params,
        seed: job.seed,
        timeoutMs: job.limits.timeoutMs,
        memoryMb: job.limits.memoryMb,
        maxOutputBytes: job.limits.maxOutputBytes,
        signal,
        onLog: (line) => {
          if (pending.length < 10_000) pending.push(line);
        },
        onProgress: (done, total) => {
          progress = [done, total];
        },
      });
    } catch (e) {
      result = e instanceof CancelledBeforeStart
        ? { ok: false, exitCode: null, reason: "cancelled", durationMs: 0 }
        : {
          ok: false,
          exitCode: null,
          reason: "error",
          error: `the sandbox could not run the job: ${(e as Error).message}`,
          durationMs: 0,
        };
    }
    clearInterval(timer);
    await flushing;
    if (this.#stopping || entry.lost) {
      // Shutdown: leave the job `running`; recovery decides at the next start (or when the lease
      // expires). Lost lease: another run has the job; this one's result would be refused.
      await flush().catch(() => {});
      return;
    }
    const reason: JobReason | undefined = result.ok ? undefined : result.reason ?? "error";
    const state = result.ok ? "succeeded" : reason === "cancelled" ? "cancelled" : "failed";
    const error = result.ok ? undefined : result.error ??
      (reason === "cancelled" ? "cancelled by the user" : `the job failed (${reason})`);
    pending.push(
      result.ok
        ? `[petrel] succeeded in ${Math.round(result.durationMs)} ms`
        : `[petrel] ${state} (${reason}): ${error}`,
    );
    let manifest: string | undefined;
    if (result.manifestPath?.startsWith(`${outDir}/`)) {
      manifest = result.manifestPath.slice(outDir.length + 1);
    }
    const outcome = { state, exitCode: result.exitCode, reason, error, manifest } as const;
    const claim = { workerId: this.#o.workerId, attempt: job.attempts };
    // A short database outage must not lose a finished run: retry until the lease would be gone
    // anyway (then the result is refused and the job runs again elsewhere).
    for (let i = 0;; i++) {
      try {
        await flush();
        const ok = await store.finish(job.id, outcome, claim);
        if (!ok && this.#o.heartbeatMs) {
          console.error(`${this.#name}: job ${job.id}: result refused (the lease was lost)`);
        }
        return;
      } catch (e) {
        if (i >= 120 || this.#stopping) throw e;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
}

class CancelledBeforeStart extends Error {}
