/**
 * `GET /metrics`: the job store's counts in the Prometheus text format (version 0.0.4): queue
 * depth, running jobs, jobs by state, failures by reason, the histogram of run durations, live
 * workers (shared database) and runs in this process. Aggregates only: no user names or job ids.
 *
 * @module
 */
import type { JobRunner } from "./queue.ts";
import type { JobState, JobStore, StoreStats } from "./store.ts";

/**
 * Formats store statistics as Prometheus text.
 *
 * @example
 * ```ts
 * import { prometheusText } from "./metrics.ts";
 * import { SqliteJobStore } from "./store.ts";
 * const store = new SqliteJobStore("data/petrel.db");
 * const text = prometheusText(await store.stats(), { localRunning: 1 }); // JobRunner.runningCount
 * // "# TYPE petrel_jobs_queued gauge\npetrel_jobs_queued 3\n…"
 * ```
 */
export function prometheusText(st: StoreStats, extra: { localRunning?: number } = {}): string {
  const out: string[] = [];
  const metric = (name: string, type: string, help: string, lines: string[]): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
  };
  metric("petrel_jobs_queued", "gauge", "Jobs waiting in the queue.", [
    `petrel_jobs_queued ${st.states.queued}`,
  ]);
  metric("petrel_jobs_running", "gauge", "Jobs running, on every worker.", [
    `petrel_jobs_running ${st.states.running}`,
  ]);
  metric(
    "petrel_jobs",
    "gauge",
    "Stored jobs by state (purged jobs are not counted).",
    (Object.keys(st.states) as JobState[]).map((k) => `petrel_jobs{state="${k}"} ${st.states[k]}`),
  );
  metric(
    "petrel_job_failures",
    "gauge",
    "Stored failed or cancelled jobs by reason.",
    Object.entries(st.reasons).map(([k, v]) => `petrel_job_failures{reason="${k}"} ${v}`),
  );
  const d = st.durations;
  metric("petrel_job_duration_seconds", "histogram", "Run time of succeeded jobs.", [
    ...d.buckets.map((b) => `petrel_job_duration_seconds_bucket{le="${b.le}"} ${b.count}`),
    `petrel_job_duration_seconds_bucket{le="+Inf"} ${d.count}`,
    `petrel_job_duration_seconds_sum ${Number(d.sum.toFixed(3))}`,
    `petrel_job_duration_seconds_count ${d.count}`,
  ]);
  if (st.workers !== undefined) {
    metric(
      "petrel_workers",
      "gauge",
      "Servers and workers seen within their lease (shared database).",
      [
        `petrel_workers ${st.workers}`,
      ],
    );
  }
  if (extra.localRunning !== undefined) {
    metric("petrel_local_running", "gauge", "Jobs running in this server process.", [
      `petrel_local_running ${extra.localRunning}`,
    ]);
  }
  return out.join("\n") + "\n";
}

/** The `GET /metrics` response over a store and the local runner. */
export async function metricsResponse(store: JobStore, runner: JobRunner): Promise<Response> {
  const text = prometheusText(await store.stats(), { localRunning: runner.runningCount });
  return new Response(text, {
    headers: {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
      "cache-control": "no-store",
    },
  });
}
