/**
 * Small HTTP helpers shared by the server's routes: an error with a status, JSON answers, a size-
 * capped body reader, and the public view of a job.
 *
 * @module
 */
import type { JobRecord } from "./store.ts";

/** An HTTP error with a status and a one-sentence message (answered as `{"error": message}`). */
export class HttpError extends Error {
  /** An error answered with `status` and `message`. */
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** States after which a job never changes again. */
export const TERMINAL: ReadonlySet<string> = new Set(["succeeded", "failed", "cancelled"]);

/**
 * A JSON response.
 *
 * @example
 * ```ts
 * const res = json({ ok: true }, 201, { location: "/api/jobs/1" });
 * ```
 */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/** Reads a request body, refusing more than `max` bytes (also when Content-Length lies). */
export async function readBody(req: Request, max: number): Promise<Uint8Array<ArrayBuffer>> {
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > max) {
    throw new HttpError(413, `the request body has ${declared} bytes; at most ${max} are allowed`);
  }
  if (!req.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const c of req.body) {
    n += c.length;
    if (n > max) throw new HttpError(413, `the request body exceeds ${max} bytes`);
    chunks.push(c);
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** The public view of a job: no server paths. */
export function jobView(job: JobRecord): Record<string, unknown> {
  return {
    id: job.id,
    user: job.user,
    state: job.state,
    recipe: job.recipe,
    params: job.params,
    seed: job.seed ?? null,
    // Uploaded file names only (datasets are listed by name; no server path is shown).
    inputs: job.inputs.filter((p) => p.startsWith(`${job.jobDir}/in/`)).map((p) =>
      p.slice(p.lastIndexOf("/") + 1)
    ),
    datasets: job.datasets,
    limits: job.limits,
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    attempts: job.attempts,
    exitCode: job.exitCode,
    reason: job.reason,
    error: job.error,
    progress: { done: job.progressDone, total: job.progressTotal },
    cancelRequested: job.cancelRequested,
    gpu: job.gpu,
    manifest: job.manifest,
  };
}
