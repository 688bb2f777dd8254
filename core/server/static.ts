/**
 * The web page's static files (`core/server/static/`), served with a strict Content-Security-
 * Policy and cached in memory after the first read, and the viewer library vendored from the npm
 * package `@niivue/niivue` (pinned in `deno.json`, installed in petrel's `node_modules/` by
 * `deno install`): its self-contained browser build `dist/index.min.js` and its licence. Nothing is
 * fetched from outside the server.
 *
 * @module
 */
import { petrelRoot } from "../runtime/sandbox.ts";

/** Static files by URL path: file name in `static/` and content type. */
export const STATIC_FILES: Readonly<Record<string, { file: string; type: string }>> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/app.css": { file: "app.css", type: "text/css; charset=utf-8" },
  "/viewer.js": { file: "viewer.js", type: "text/javascript; charset=utf-8" },
  "/vendor/niivue.js": {
    file: "node_modules/@niivue/niivue/dist/index.js",
    type: "text/javascript; charset=utf-8",
  },
  "/vendor/NIIVUE-LICENSE.txt": {
    file: "vendor/NIIVUE-LICENSE.txt",
    type: "text/plain; charset=utf-8",
  },
};

/** The page's Content-Security-Policy: its own scripts and styles only, fetches to itself. */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * A server of the static files: the response for a GET/HEAD of a known path, else undefined.
 *
 * @example
 * ```ts
 * const page = staticFiles();
 * const res = await page("/", "GET"); // index.html with the page's CSP
 * ```
 */
export function staticFiles(): (path: string, method: string) => Promise<Response> | undefined {
  const cache = new Map<string, Uint8Array<ArrayBuffer>>();
  async function serveFile(s: { file: string; type: string }): Promise<Response> {
    let body = cache.get(s.file);
    if (!body) {
      const path = s.file.startsWith("node_modules/")
        ? `${petrelRoot()}/${s.file}`
        : new URL(`./static/${s.file}`, import.meta.url);
      try {
        body = await Deno.readFile(path);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        return new Response(
          `${s.file} is missing: run \`deno install\` in petrel's checkout (the viewer is ` +
            `vendored from the npm package @niivue/niivue)\n`,
          { status: 503, headers: { "content-type": "text/plain; charset=utf-8" } },
        );
      }
      cache.set(s.file, body);
    }
    return new Response(body, {
      headers: {
        "content-type": s.type,
        "content-security-policy": PAGE_CSP,
        "x-content-type-options": "nosniff",
        "cache-control": "no-cache",
      },
    });
  }
  return (path, method) => {
    const s = Object.hasOwn(STATIC_FILES, path) ? STATIC_FILES[path] : undefined;
    if (!s || (method !== "GET" && method !== "HEAD")) return undefined;
    return serveFile(s);
  };
}
