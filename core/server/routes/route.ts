/**
 * The route table of the API: each module under `routes/` returns a list of {@linkcode Route}s
 * (a path pattern below `/api/` and a handler per method), and `app.ts` dispatches to them after
 * authentication. A path that matches with another method answers 405 listing the allowed ones.
 *
 * @module
 */
import type { ServerConfig, UserConfig } from "../config.ts";
import type { JobEvents, JobRunner } from "../queue.ts";
import type { RecipeDescription } from "../sandbox.ts";
import type { JobRecord, JobStore } from "../store.ts";
import { HttpError } from "../http.ts";

/** What the handler needs. */
export interface AppContext {
  /** The validated configuration. */
  config: ServerConfig;
  /** Job storage and queue. */
  store: JobStore;
  /** The runner of queued jobs. */
  runner: JobRunner;
  /** Change notifications (long-poll, SSE). */
  events: JobEvents;
  /** Describes a recipe (description and JSON Schema of its parameters); default: the sandbox's. */
  describeRecipe?: (path: string) => Promise<RecipeDescription>;
}

/** One authenticated API request as a route sees it. */
export interface RouteRequest {
  /** The request. */
  req: Request;
  /** Its parsed URL. */
  url: URL;
  /** The user its token belongs to. */
  user: UserConfig;
  /** Values of the pattern's `:name` segments, and `*` for the rest of the path. */
  params: Record<string, string>;
}

/** Answers one route. */
export type RouteHandler = (r: RouteRequest) => Promise<Response> | Response;

/**
 * A path below `/api/` (segments: literals, `:name` for one segment, a final `*` for one or more)
 * and its handlers by method, in the order the 405 answer lists them.
 */
export interface Route {
  /** E.g. `jobs/:id/files/*`. */
  path: string;
  /** Handlers by HTTP method. */
  methods: Record<string, RouteHandler>;
}

const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The job `id` if it exists AND belongs to `user`; otherwise 404 (the same answer for another
 * user's job as for a missing one).
 */
export async function ownJob(store: JobStore, user: UserConfig, id: string): Promise<JobRecord> {
  if (!JOB_ID.test(id)) throw new HttpError(404, `no job '${id}'`);
  const job = await store.get(id);
  if (!job || job.user !== user.name) throw new HttpError(404, `no job '${id}'`);
  return job;
}

/**
 * Matches path segments (after `/api/`) against a route pattern; the parameters, or undefined.
 *
 * @example
 * ```ts
 * matchRoute("jobs/:id/files/*", ["jobs", "42", "files", "a", "b.png"]);
 * // { id: "42", "*": "a/b.png" }
 * ```
 */
export function matchRoute(
  pattern: string,
  parts: string[],
): Record<string, string> | undefined {
  const segs = pattern.split("/");
  const rest = segs[segs.length - 1] === "*";
  if (rest ? parts.length < segs.length : parts.length !== segs.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i];
    if (rest && i === segs.length - 1) params["*"] = parts.slice(i).join("/");
    else if (s.startsWith(":")) params[s.slice(1)] = parts[i];
    else if (s !== parts[i]) return undefined;
  }
  return params;
}

/**
 * Finds the route for `parts` and `method`: the first matching route with a handler for `method`
 * and its parameters; 405 when the path matches only with other methods; undefined when no route
 * matches.
 */
export function findRoute(
  routes: readonly Route[],
  method: string,
  parts: string[],
): { handler: RouteHandler; params: Record<string, string> } | undefined {
  const allowed: string[] = [];
  for (const r of routes) {
    const params = matchRoute(r.path, parts);
    if (!params) continue;
    if (Object.hasOwn(r.methods, method)) return { handler: r.methods[method], params };
    for (const m of Object.keys(r.methods)) if (!allowed.includes(m)) allowed.push(m);
  }
  if (allowed.length === 0) return undefined;
  throw new HttpError(
    405,
    `method ${method} is not allowed here; expected ${allowed.join(" or ")}`,
  );
}
