/**
 * The child's streams: stdout and stderr split into log lines (each cut at 8 KiB, 8 MiB per
 * run), and the harness channel's messages folded into what the runner knows about the run.
 *
 * @module
 */

import type { AdapterReport } from "../gpu/context.ts";
import type { HarnessErrorKind, HarnessMessage } from "./protocol.ts";

/** Longest log line passed on (longer ones are cut) and total log bytes passed on per run. */
const MAX_LINE = 8192;
const MAX_LOG_BYTES = 8 << 20;
/** Most paths a run may declare nondeterministic. */
const MAX_NONDETERMINISTIC = 1000;

/** What the harness reported through its channel. */
export interface HarnessReport {
  harnessError?: { kind: HarnessErrorKind; message: string };
  done: boolean;
  adapter: AdapterReport | null;
  adapterMs: number | null;
  importMs: number | null;
  runMs: number | null;
  params: Record<string, unknown> | null;
  describe: { description: string | null; schema: unknown } | null;
  nondeterministic: string[];
}

/** An empty {@linkcode HarnessReport}. */
export function emptyReport(): HarnessReport {
  return {
    done: false,
    adapter: null,
    adapterMs: null,
    importMs: null,
    runMs: null,
    params: null,
    describe: null,
    nondeterministic: [],
  };
}

/** Folds one channel message into `r` (first report of each kind wins); progress goes to `onProgress`. */
export function applyMessage(
  r: HarnessReport,
  msg: HarnessMessage,
  onProgress?: (done: number, total: number) => void,
): void {
  switch (msg.t) {
    case "adapter":
      if (r.adapterMs === null) {
        r.adapter = msg.adapter;
        r.adapterMs = msg.ms;
      }
      break;
    case "imported":
      r.importMs ??= msg.ms;
      break;
    case "params":
      r.params ??= msg.params;
      break;
    case "describe":
      r.describe ??= { description: msg.description, schema: msg.schema };
      break;
    case "progress":
      if (Number.isFinite(msg.done) && Number.isFinite(msg.total) && onProgress) {
        try {
          onProgress(msg.done, msg.total);
        } catch {
          // a failing callback must not break the runner
        }
      }
      break;
    case "nondeterministic":
      for (const p of Array.isArray(msg.paths) ? msg.paths : []) {
        if (typeof p !== "string" || r.nondeterministic.includes(p)) continue;
        if (r.nondeterministic.length < MAX_NONDETERMINISTIC) r.nondeterministic.push(p);
      }
      break;
    case "done":
      r.done = true;
      r.runMs = msg.ms;
      break;
    case "error":
      r.harnessError ??= { kind: msg.kind, message: String(msg.message) };
      break;
  }
}

/** Passes log lines on to a callback, cut per line and capped per run. */
export class LogSink {
  #bytes = 0;
  #cut = false;
  #on?: (line: string) => void;

  constructor(on?: (line: string) => void) {
    this.#on = on;
  }

  /** Passes one line on (or drops it past the per-run cap, saying so once). */
  line(line: string): void {
    if (!this.#on) return;
    if (this.#bytes > MAX_LOG_BYTES) {
      if (!this.#cut) this.#safe(`[petrel] log truncated after ${MAX_LOG_BYTES} bytes`);
      this.#cut = true;
      return;
    }
    const l = line.length > MAX_LINE ? line.slice(0, MAX_LINE) + " …[cut]" : line;
    this.#bytes += l.length + 1;
    this.#safe(l);
  }

  #safe(l: string): void {
    try {
      this.#on!(l);
    } catch {
      // a failing callback must not break the runner
    }
  }
}

/** Reads `stream` to its end as text lines (an over-long unterminated line is passed on in parts). */
export async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let buf = "";
  try {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      if (buf.length > 4 * MAX_LINE) {
        onLine(buf);
        buf = "";
      }
    }
  } catch {
    // pipe closed by a kill
  }
  if (buf) onLine(buf);
}
