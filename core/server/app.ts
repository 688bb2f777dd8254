/**
 * The HTTP API and web page of `petrel serve`, as a plain `(Request) => Response` handler (so it
 * can be tested without opening a port). Every `/api/` route but `/api/health` needs
 * `Authorization: Bearer <token>`; a job of another user answers 404 exactly like a missing one.
 *
 * The routes live in `routes/` (one module per family, each a list of {@linkcode Route}s), the
 * submission checks in `submission.ts`, the page in `static.ts`.
 *
 * @module
 */
import { Authenticator, type AuthOptions } from "./auth.ts";
import { HttpError, json } from "./http.ts";
import { metricsResponse } from "./metrics.ts";
import { catalogRoutes } from "./routes/catalog.ts";
import { eventRoutes } from "./routes/events.ts";
import { fileRoutes } from "./routes/files.ts";
import { jobRoutes } from "./routes/jobs.ts";
import { type AppContext, findRoute, type Route } from "./routes/route.ts";
import { staticFiles } from "./static.ts";

export type { AppContext, Route } from "./routes/route.ts";
export { jobView } from "./http.ts";
export { jsonSubmissionSchema } from "./submission.ts";

/** All API routes over `ctx`, in matching order. */
export function apiRoutes(ctx: AppContext): Route[] {
  return [...catalogRoutes(ctx), ...jobRoutes(ctx), ...eventRoutes(ctx), ...fileRoutes(ctx)];
}

/** The client's address for per-address rate limits ("local" when unknown). */
function clientAddress(info?: Deno.ServeHandlerInfo): string {
  const a = info?.remoteAddr as Deno.Addr | undefined;
  return a && "hostname" in a ? a.hostname : "local";
}

/** Builds the request handler of the API and the web page. */
export function createHandler(
  ctx: AppContext,
  authOptions?: AuthOptions,
): (req: Request, info?: Deno.ServeHandlerInfo) => Promise<Response> {
  const auth = new Authenticator(ctx.config.users, authOptions);
  const page = staticFiles();
  const routes = apiRoutes(ctx);

  async function route(req: Request, client: string): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname;
    const method = req.method;
    if (path === "/metrics" && (method === "GET" || method === "HEAD")) {
      return await metricsResponse(ctx.store, ctx.runner);
    }
    if (!path.startsWith("/api/")) {
      const res = page(path, method);
      if (res) return await res;
      throw new HttpError(404, `no page '${path}'`);
    }
    if (path === "/api/health") return json({ ok: true });
    const a = await auth.check(req, client);
    if (!a.ok && a.status === 429) {
      return json(
        { error: `too many failed logins from this address; retry in ${a.retryAfterS} s` },
        429,
        { "retry-after": String(a.retryAfterS) },
      );
    }
    if (!a.ok) {
      return json(
        {
          error: a.reason === "invalid"
            ? "the token is not valid; expected 'Authorization: Bearer <token>' with a token issued for this server"
            : "authentication required; expected an 'Authorization: Bearer <token>' header",
        },
        401,
        { "www-authenticate": 'Bearer realm="petrel"' },
      );
    }
    const user = a.user;
    const parts = path.split("/").slice(2); // after "/api"
    const found = findRoute(routes, method, parts);
    if (!found) throw new HttpError(404, `no API route '${method} ${path}'`);
    return await found.handler({ req, url, user, params: found.params });
  }

  // info is Deno.serve's; without it (tests, in-process calls) all requests share one address
  return async (req: Request, info?: Deno.ServeHandlerInfo): Promise<Response> => {
    try {
      return await route(req, clientAddress(info));
    } catch (e) {
      if (e instanceof HttpError) return json({ error: e.message }, e.status);
      console.error(`petrel serve: internal error on ${req.method} ${req.url}:`, e);
      return json({ error: "internal server error" }, 500);
    }
  };
}
