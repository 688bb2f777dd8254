/**
 * Progress display: a bar with ETA redrawn in place on a terminal, plain throttled lines
 * otherwise (logs, CI, pipes).
 *
 * @module
 */

/** Receives progress and log lines of a run. */
export interface ProgressSink {
  /** `done` of `total` steps are finished. */
  update(done: number, total: number): void;
  /** A log line of the run (printed above the bar). */
  log(line: string): void;
  /** Clears the bar (call once at the end). */
  finish(): void;
}

/** Options of {@linkcode progressReporter}. */
export interface ProgressOptions {
  /** Writes text (no newline added), e.g. to stderr. */
  write: (text: string) => void;
  /** Draw a bar in place (terminal) instead of plain lines. */
  tty: boolean;
  /** Label in front of the bar. */
  label?: string;
  /** Clock in ms (for tests). Default `performance.now`. */
  now?: () => number;
  /** Minimum ms between plain progress lines (default 1000). */
  plainIntervalMs?: number;
  /** Bar width in characters (default 30). */
  width?: number;
}

/** "1:05", "12s", "1:02:03". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** Remaining seconds, extrapolated linearly from the elapsed time. */
export function etaSeconds(done: number, total: number, elapsedMs: number): number {
  if (done <= 0 || total <= 0) return NaN;
  return (elapsedMs / 1000) * Math.max(0, total - done) / done;
}

/** Creates a {@linkcode ProgressSink}. */
export function progressReporter(options: ProgressOptions): ProgressSink {
  const now = options.now ?? (() => performance.now());
  const width = options.width ?? 30;
  const label = options.label ? `${options.label} ` : "";
  const start = now();
  let last: { done: number; total: number } | null = null;
  // The rate is measured from the first update on, so that start-up time (imports, model
  // loading) does not inflate the ETA.
  let first: { t: number; done: number } | null = null;
  let lastPlain = -Infinity;
  let lastDraw = -Infinity;
  let drawn = false;

  const line = (done: number, total: number): string => {
    const frac = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
    const pct = `${Math.floor(frac * 100)}%`.padStart(4);
    const eta = formatDuration(
      first && done > first.done
        ? etaSeconds(done - first.done, total - first.done, now() - first.t)
        : etaSeconds(done, total, now() - start),
    );
    const elapsed = formatDuration((now() - start) / 1000);
    if (!options.tty) {
      return `${label}${done}/${total} (${pct.trim()}) elapsed ${elapsed} ETA ${eta}`;
    }
    const fill = Math.round(frac * width);
    return `${label}[${"█".repeat(fill)}${
      "░".repeat(width - fill)
    }] ${pct} ${done}/${total} ETA ${eta}`;
  };
  const clear = (): void => {
    if (drawn) options.write("\r\x1b[2K");
    drawn = false;
  };
  return {
    update(done, total) {
      last = { done, total };
      first ??= { t: now(), done };
      const t = now();
      const final = done >= total;
      if (options.tty) {
        if (!final && t - lastDraw < 80) return;
        lastDraw = t;
        options.write(`\r\x1b[2K${line(done, total)}`);
        drawn = true;
      } else if (final || t - lastPlain >= (options.plainIntervalMs ?? 1000)) {
        lastPlain = t;
        options.write(line(done, total) + "\n");
      }
    },
    log(text) {
      clear();
      options.write(text + "\n");
      if (options.tty && last) {
        options.write(line(last.done, last.total));
        drawn = true;
      }
    },
    finish() {
      clear();
    },
  };
}
