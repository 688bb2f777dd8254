/**
 * Result routes: `jobs/:id/files` (the files of the job's output folder) and
 * `jobs/:id/files/<path>` (one file; traversal and symlinks out of the folder refused, served with
 * `nosniff` and a sandboxing CSP, as an attachment unless it is an image).
 *
 * @module
 */
import { HttpError, json } from "../http.ts";
import { jobOutDir } from "../queue.ts";
import { type AppContext, ownJob, type Route, type RouteRequest } from "./route.ts";

const SAFE_TYPES: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  json: "text/plain; charset=utf-8",
  txt: "text/plain; charset=utf-8",
  log: "text/plain; charset=utf-8",
  csv: "text/plain; charset=utf-8",
};

/** Safe path of a file in a job's output folder, or throws 404/400. */
export async function resolveOutput(outDir: string, rel: string): Promise<string> {
  const segs = rel.split("/").map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new HttpError(400, "the file path is not valid percent-encoding");
    }
  });
  for (const s of segs) {
    if (s === "" || s === "." || s === ".." || /[\\/\0]/.test(s)) {
      throw new HttpError(400, "the file path must be relative, without '.', '..' or empty parts");
    }
  }
  const path = `${outDir}/${segs.join("/")}`;
  let real: string, base: string;
  try {
    [real, base] = await Promise.all([Deno.realPath(path), Deno.realPath(outDir)]);
  } catch {
    throw new HttpError(404, "no such file in the job's results");
  }
  if (!real.startsWith(`${base}/`)) throw new HttpError(404, "no such file in the job's results");
  const st = await Deno.lstat(real);
  if (!st.isFile) throw new HttpError(404, "no such file in the job's results");
  return real;
}

/** The regular files under `dir` (relative paths, sorted; `.part` files left out). */
export async function listOutputs(
  dir: string,
  prefix = "",
): Promise<{ path: string; size: number }[]> {
  const out: { path: string; size: number }[] = [];
  let entries: Deno.DirEntry[] = [];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return out;
  }
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await listOutputs(`${dir}/${e.name}`, rel));
    // Half-written files (a run killed mid-write) are never listed.
    else if (e.isFile && !e.name.endsWith(".part") && !e.name.includes(".petrel-tmp-")) {
      out.push({ path: rel, size: (await Deno.lstat(`${dir}/${e.name}`)).size });
    }
  }
  return out;
}

/** The file routes over `ctx`. */
export function fileRoutes(ctx: AppContext): Route[] {
  const { store } = ctx;

  async function download({ user, params }: RouteRequest): Promise<Response> {
    const job = await ownJob(store, user, params.id);
    if (job.attempts === 0) throw new HttpError(404, "the job has not started; it has no results");
    const path = await resolveOutput(jobOutDir(job), params["*"]);
    const ext = path.slice(path.lastIndexOf(".") + 1).toLowerCase();
    const type = SAFE_TYPES[ext] ?? "application/octet-stream";
    const file = await Deno.open(path, { read: true });
    const name = path.slice(path.lastIndexOf("/") + 1);
    return new Response(file.readable, {
      headers: {
        "content-type": type,
        "content-disposition": `${type.startsWith("image/") ? "inline" : "attachment"}; filename="${
          name.replace(/[^A-Za-z0-9_.-]/g, "_")
        }"`,
        "x-content-type-options": "nosniff",
        "content-security-policy": "default-src 'none'; sandbox",
        "cache-control": "private, no-store",
      },
    });
  }

  return [
    {
      path: "jobs/:id/files",
      methods: {
        GET: async ({ user, params }) => {
          const job = await ownJob(store, user, params.id);
          return json({ files: job.attempts ? await listOutputs(jobOutDir(job)) : [] });
        },
      },
    },
    { path: "jobs/:id/files/*", methods: { GET: download } },
  ];
}
