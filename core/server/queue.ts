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
  #running = new Map<string, { abort: AbortController; done: Promise<void> }>();
  #stopping = false;
  #kicking = false;
  #again = false;

  /** A runner over `store`; call {@linkcode JobRunner.kick} to start taking jobs. */
  constructor(store: JobStore, options: JobRunnerOptions) {
    this.#store = store;
    this.#o = options;
    this.#slots = new Array(options.gpus * options.jobsPerGpu).fill(false);
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
      console.error("petrel serve: could not take jobs from the queue:", e);
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
          const done = this.#run(job, abort.signal).catch((e) => {
            console.error(`petrel serve: job ${job.id} could not be recorded:`, e);
          }).finally(() => {
            this.#slots[slot] = false;
            this.#running.delete(job.id);
            this.#o.events.emit(job.id);
            if (!this.#stopping) this.kick();
          });
          this.#running.set(job.id, { abort, done });
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
    const all = [...this.#running.values()];
    for (const r of all) r.abort.abort();
    await Promise.all(all.map((r) => r.done.catch(() => {})));
  }

  async #run(job: JobRecord, signal: AbortSignal): Promise<void> {
    const store = this.#store;
    const events = this.#o.events;
    const outDir = jobOutDir(job);
    let pending: string[] = [];
    let progress: [number, number] | undefined;
    const flush = async (): Promise<void> => {
      if (pending.length) {
        const lines = pending;
        pending = [];
        await store.appendLog(job.id, lines, this.#o.maxLogLines);
      }
      if (progress) {
        const [d, t] = progress;
        progress = undefined;
        await store.setProgress(job.id, d, t);
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
    if (this.#stopping) {
      // Server shutdown: leave the job `running`; recovery decides at the next start.
      await flush();
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
    await flush();
    let manifest: string | undefined;
    if (result.manifestPath?.startsWith(`${outDir}/`)) {
      manifest = result.manifestPath.slice(outDir.length + 1);
    }
    await store.finish(job.id, { state, exitCode: result.exitCode, reason, error, manifest });
  }
}

class CancelledBeforeStart extends Error {}
