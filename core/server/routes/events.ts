/**
 * Live job routes: `jobs/:id/log` (log lines after a sequence number, long-polled) and
 * `jobs/:id/events` (Server-Sent Events: `log`, `progress`, `state`, `end`).
 *
 * @module
 */
import type { UserConfig } from "../config.ts";
import { jobView, json, TERMINAL } from "../http.ts";
import type { JobRecord } from "../store.ts";
import { type AppContext, ownJob, type Route, type RouteRequest } from "./route.ts";

/** The log and event-stream routes over `ctx`. */
export function eventRoutes(ctx: AppContext): Route[] {
  const { store, events } = ctx;

  async function longPollLog({ user, params, req, url }: RouteRequest): Promise<Response> {
    const id = params.id;
    const after = Math.max(0, Number(url.searchParams.get("after") ?? "0") || 0);
    const wait = Math.min(30_000, Math.max(0, Number(url.searchParams.get("wait") ?? "0") || 0));
    let job = await ownJob(store, user, id);
    let lines = await store.readLog(id, after, 1000);
    if (lines.length === 0 && !TERMINAL.has(job.state) && wait > 0) {
      await events.wait(id, wait, req.signal);
      job = await ownJob(store, user, id);
      lines = await store.readLog(id, after, 1000);
    }
    return json({
      lines,
      next: lines.length ? lines[lines.length - 1].seq : after,
      state: job.state,
      progress: { done: job.progressDone, total: job.progressTotal },
      job: jobView(job),
    });
  }

  function sse(user: UserConfig, job: JobRecord, req: Request): Response {
    const enc = new TextEncoder();
    let after = Math.max(
      0,
      Number(
        req.headers.get("last-event-id") ??
          new URL(req.url).searchParams.get("after") ?? "0",
      ) || 0,
    );
    const stop = new AbortController();
    req.signal?.addEventListener("abort", () => stop.abort());
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        const send = (event: string, data: unknown, id?: number): void => {
          controller.enqueue(
            enc.encode(
              `${id !== undefined ? `id: ${id}\n` : ""}event: ${event}\ndata: ${
                JSON.stringify(data)
              }\n\n`,
            ),
          );
        };
        let lastState = "";
        let lastProgress = "";
        try {
          while (!stop.signal.aborted) {
            const lines = await store.readLog(job.id, after, 500);
            for (const l of lines) send("log", l, l.seq);
            if (lines.length) after = lines[lines.length - 1].seq;
            const j = await ownJob(store, user, job.id);
            const p = `${j.progressDone}/${j.progressTotal}`;
            if (p !== lastProgress) {
              lastProgress = p;
              send("progress", { done: j.progressDone, total: j.progressTotal });
            }
            if (j.state !== lastState) {
              lastState = j.state;
              send("state", jobView(j));
            }
            if (TERMINAL.has(j.state) && lines.length < 500) {
              send("end", { state: j.state });
              break;
            }
            if (lines.length < 500) {
              await events.wait(job.id, 15_000, stop.signal);
              controller.enqueue(enc.encode(": ping\n\n"));
            }
          }
        } catch {
          // client went away
        }
        try {
          controller.close();
        } catch {
          // already closed
        }
      },
      cancel() {
        stop.abort();
      },
    });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
      },
    });
  }

  return [
    { path: "jobs/:id/log", methods: { GET: longPollLog } },
    {
      path: "jobs/:id/events",
      methods: {
        GET: async ({ user, params, req }) => sse(user, await ownJob(store, user, params.id), req),
      },
    },
  ];
}
