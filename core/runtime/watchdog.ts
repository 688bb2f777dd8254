/**
 * The runner's watch over a running child: the wall-clock limit, cancellation, the output quota
 * (bounded scans, each started when the previous one ended) and the harness channel.
 *
 * @module
 */

import { type OutputLimits, scanOutput } from "./quota.ts";

/** Why the watchdog stopped a run. */
export type KillReason = "timeout" | "output-quota" | "cancelled";

/** What the watchdog watches. */
export interface WatchOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Output folder and its limits ("" in describe mode: no quota scans). */
  outDir: string;
  output: OutputLimits;
  /** Called between scans (reads the harness channel). */
  tick?: () => Promise<void>;
  /** Stops the child. Called at most once. */
  kill: (why: KillReason, detail: string) => void;
}

/** Pause between two rounds of checks. */
const POLL_MS = 100;

/** Starts watching; the returned function stops it. */
export function startWatchdog(o: WatchOptions): () => void {
  let stopped = false;
  let killed = false;
  const kill = (why: KillReason, detail: string): void => {
    if (killed) return;
    killed = true;
    o.kill(why, detail);
  };
  const timer = setTimeout(
    () =>
      kill(
        "timeout",
        `the run exceeded its wall-clock limit of ${o.timeoutMs / 1000} s and was stopped`,
      ),
    o.timeoutMs,
  );
  const onAbort = (): void => kill("cancelled", "the run was cancelled");
  if (o.signal?.aborted) onAbort();
  o.signal?.addEventListener("abort", onAbort);

  let next: ReturnType<typeof setTimeout> | undefined;
  const round = async (): Promise<void> => {
    if (stopped || killed) return;
    try {
      await o.tick?.();
      if (o.outDir) {
        const u = await scanOutput(o.outDir, o.output);
        if (u.over === "bytes") {
          kill(
            "output-quota",
            `the run used more than its output quota of ${o.output.maxBytes} bytes of disk ` +
              `(files and folders) and was stopped`,
          );
        } else if (u.over === "entries") {
          kill(
            "output-quota",
            `the run created more than ${o.output.maxEntries} files and folders and was stopped`,
          );
        }
      }
    } finally {
      if (!stopped && !killed) next = setTimeout(round, POLL_MS);
    }
  };
  next = setTimeout(round, POLL_MS);
  return () => {
    stopped = true;
    clearTimeout(timer);
    clearTimeout(next);
    o.signal?.removeEventListener("abort", onAbort);
  };
}
