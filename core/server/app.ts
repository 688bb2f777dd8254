/**
 * The HTTP API and web page of `petrel serve`, as a plain `(Request) => Response` handler (so it
 * can be tested without opening a port). Every `/api/` route but `/api/health` needs
 * `Authorization: Bearer <token>`; a job of another user answers 404 exactly like a missing one.
 *
 * @module
 */
import { z } from "zod";
import { Authenticator } from "./auth.ts";
import { type ServerConfig, type UserConfig, userLimits } from "./config.ts";
import { type JobEvents, jobOutDir, type JobRunner } from "./queue.ts";
import type { JobRecord, JobStore } from "./store.ts";
import { describeRecipe, type RecipeDescription } from "./sandbox.ts";

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

/** An HTTP error with a status and a one-sentence message. */
class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const RECIPE_FILE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\.(ts|js|mjs)$/;
const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const paramsSchema = z.record(z.string(), z.unknown());
const seedSchema = z.number().int().min(0).max(2 ** 32 - 1);

/** JSON body of `POST /api/jobs` (alternative to multipart/form-data). */
export const jsonSubmissionSchema = z.object({
  /** Name of a recipe in the server's allow-list. */
  recipe: z.string().optional(),
  /** Source of an uploaded recipe (TypeScript/JavaScript text). */
  recipeSource: z.string().optional(),
  /** File name of the uploaded recipe (default `recipe.ts`). */
  recipeFileName: z.string().optional(),
  params: paramsSchema.default({}),
  seed: seedSchema.optional(),
  /** Names of datasets on the server. */
  datasets: z.array(z.string()).default([]),
  /** Uploaded input files. */
  inputs: z.array(z.object({ name: z.string(), dataBase64: z.string() })).default([]),
}).strict();

interface Submission {
  recipe?: string;
  recipeSource?: Uint8Array;
  recipeFileName?: string;
  params: Record<string, unknown>;
  seed?: number;
  datasets: string[];
  inputs: { name: string; data: Uint8Array }[];
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
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

/** Reads a request body, refusing more than `max` bytes (also when Content-Length lies). */
async function readBody(req: Request, max: number): Promise<Uint8Array<ArrayBuffer>> {
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

function decodeBase64(s: string, what: string): Uint8Array {
  try {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    throw new HttpError(400, `${what} is not valid base64`);
  }
}

function parseJsonField(s: string, what: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    throw new HttpError(400, `${what} is not valid JSON`);
  }
}

async function parseSubmission(req: Request, maxUpload: number): Promise<Submission> {
  const rawType = req.headers.get("content-type") ?? "";
  const type = rawType.toLowerCase(); // for matching only: the multipart boundary is case-sensitive
  if (type.startsWith("application/json")) {
    const raw = await readBody(req, Math.ceil(maxUpload * 4 / 3) + 65536);
    const parsed = jsonSubmissionSchema.safeParse(
      parseJsonField(new TextDecoder().decode(raw), "the request body"),
    );
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new HttpError(400, `invalid submission: ${i.path.join(".") || "body"}: ${i.message}`);
    }
    const b = parsed.data;
    return {
      recipe: b.recipe,
      recipeSource: b.recipeSource === undefined
        ? undefined
        : new TextEncoder().encode(b.recipeSource),
      recipeFileName: b.recipeFileName,
      params: b.params,
      seed: b.seed,
      datasets: b.datasets,
      inputs: b.inputs.map((f) => ({
        name: f.name,
        data: decodeBase64(f.dataBase64, `input '${f.name}'`),
      })),
    };
  }
  if (type.startsWith("multipart/form-data")) {
    const raw = await readBody(req, maxUpload + 65536);
    let form: FormData;
    try {
      form = await new Response(raw, { headers: { "content-type": rawType } }).formData();
    } catch {
      throw new HttpError(400, "the multipart/form-data body could not be parsed");
    }
    const known = new Set(["recipe", "recipeFile", "params", "seed", "datasets", "inputs"]);
    for (const k of form.keys()) {
      if (!known.has(k)) {
        throw new HttpError(400, `unknown form field '${k}'; expected ${[...known].join(", ")}`);
      }
    }
    const text = (k: string): string | undefined => {
      const v = form.get(k);
      if (v === null) return undefined;
      if (typeof v !== "string") throw new HttpError(400, `form field '${k}' must be text`);
      return v;
    };
    const recipeFile = form.get("recipeFile");
    if (recipeFile !== null && typeof recipeFile === "string") {
      throw new HttpError(400, "form field 'recipeFile' must be a file");
    }
    const paramsText = text("params");
    const params = paramsSchema.safeParse(
      paramsText ? parseJsonField(paramsText, "form field 'params'") : {},
    );
    if (!params.success) throw new HttpError(400, "form field 'params' must be a JSON object");
    const seedText = text("seed");
    let seed: number | undefined;
    if (seedText !== undefined && seedText !== "") {
      const s = seedSchema.safeParse(Number(seedText));
      if (!s.success) throw new HttpError(400, "form field 'seed' must be an integer ≥ 0");
      seed = s.data;
    }
    const datasets = form.getAll("datasets").flatMap((v) => {
      if (typeof v !== "string") throw new HttpError(400, "form field 'datasets' must be text");
      return v.split(",").map((s) => s.trim()).filter((s) => s);
    });
    const inputs = [];
    for (const v of form.getAll("inputs")) {
      if (typeof v === "string") throw new HttpError(400, "form field 'inputs' must be files");
      inputs.push({ name: v.name, data: new Uint8Array(await v.arrayBuffer()) });
    }
    return {
      recipe: text("recipe") || undefined,
      recipeSource: recipeFile ? new Uint8Array(await recipeFile.arrayBuffer()) : undefined,
      recipeFileName: recipeFile ? recipeFile.name : undefined,
      params: params.data,
      seed,
      datasets,
      inputs,
    };
  }
  throw new HttpError(
    415,
    `unsupported content type '${
      type || "(none)"
    }'; expected application/json or multipart/form-data`,
  );
}

async function writeAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.part`;
  await Deno.writeFile(tmp, data);
  await Deno.rename(tmp, path);
}

/** Safe path of a file in a job's output folder, or throws 404/400. */
async function resolveOutput(outDir: string, rel: string): Promise<string> {
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

async function listOutputs(dir: string, prefix = ""): Promise<{ path: string; size: number }[]> {
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
    else if (e.isFile && !e.name.endsWith(".part")) {
      out.push({ path: rel, size: (await Deno.lstat(`${dir}/${e.name}`)).size });
    }
  }
  return out;
}

const SAFE_TYPES: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  json: "text/plain; charset=utf-8",
  txt: "text/plain; charset=utf-8",
  log: "text/plain; charset=utf-8",
  csv: "text/plain; charset=utf-8",
};

const STATIC: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/app.css": { file: "app.css", type: "text/css; charset=utf-8" },
};

const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Builds the request handler of the API and the web page. */
export function createHandler(ctx: AppContext): (req: Request) => Promise<Response> {
  const { config, store, runner, events } = ctx;
  const auth = new Authenticator(config.users);
  const staticCache = new Map<string, Uint8Array<ArrayBuffer>>();

  async function staticFile(path: string): Promise<Response> {
    const s = STATIC[path];
    let body = staticCache.get(s.file);
    if (!body) {
      body = await Deno.readFile(new URL(`./static/${s.file}`, import.meta.url));
      staticCache.set(s.file, body);
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

  /** Recipe descriptions, cached by path and modification time (each costs a sandbox start). */
  const described = new Map<string, { mtime: number; info: Promise<RecipeDescription> }>();
  async function recipeInfo(name: string): Promise<Response> {
    if (!Object.hasOwn(config.recipes, name)) throw new HttpError(404, `no recipe '${name}'`);
    const path = config.recipes[name];
    const mtime = (await Deno.stat(path).catch(() => null))?.mtime?.getTime() ?? 0;
    let entry = described.get(path);
    if (!entry || entry.mtime !== mtime) {
      entry = { mtime, info: (ctx.describeRecipe ?? describeRecipe)(path) };
      described.set(path, entry);
    }
    try {
      const info = await entry.info;
      return json({ name, description: info.description, params: info.schema });
    } catch (e) {
      described.delete(path);
      throw new HttpError(500, `recipe '${name}' cannot be loaded: ${(e as Error).message}`);
    }
  }

  /** The job `id` if it exists AND belongs to `user`; otherwise 404. */
  async function ownJob(user: UserConfig, id: string): Promise<JobRecord> {
    if (!JOB_ID.test(id)) throw new HttpError(404, `no job '${id}'`);
    const job = await store.get(id);
    if (!job || job.user !== user.name) throw new HttpError(404, `no job '${id}'`);
    return job;
  }

  async function submit(user: UserConfig, req: Request): Promise<Response> {
    const limits = userLimits(config, user);
    const sub = await parseSubmission(req, limits.maxUploadBytes);
    const uploadAllowed = user.allowUploadedRecipes ?? config.allowUploadedRecipes;
    if ((sub.recipe === undefined) === (sub.recipeSource === undefined)) {
      throw new HttpError(
        400,
        "give exactly one of 'recipe' (a name from the allow-list) or an uploaded recipe",
      );
    }
    let recipePath: string | undefined;
    let recipeLabel: string;
    if (sub.recipe !== undefined) {
      if (!Object.hasOwn(config.recipes, sub.recipe)) {
        throw new HttpError(
          400,
          `unknown recipe '${sub.recipe}'; expected one of: ${
            Object.keys(config.recipes).join(", ") || "(none)"
          }`,
        );
      }
      recipePath = config.recipes[sub.recipe];
      recipeLabel = sub.recipe;
    } else {
      if (!uploadAllowed) throw new HttpError(403, "this user may not upload recipes");
      const name = sub.recipeFileName || "recipe.ts";
      if (!RECIPE_FILE.test(name)) {
        throw new HttpError(
          400,
          `recipe file name '${name}' is not allowed; expected letters, digits, '_', '.', '-' and .ts, .js or .mjs`,
        );
      }
      recipeLabel = `upload:${name}`;
    }
    const datasetPaths: string[] = [];
    sub.datasets = [...new Set(sub.datasets)];
    for (const d of sub.datasets) {
      if (!Object.hasOwn(config.datasets, d)) {
        throw new HttpError(400, `unknown dataset '${d}'; expected one of the server's datasets`);
      }
      datasetPaths.push(config.datasets[d]);
    }
    if (sub.inputs.length > 1000) {
      throw new HttpError(400, `${sub.inputs.length} input files given; at most 1000 are allowed`);
    }
    const names = new Set<string>();
    let total = sub.recipeSource?.length ?? 0;
    for (const f of sub.inputs) {
      if (!FILE_NAME.test(f.name) || f.name.endsWith(".part")) {
        throw new HttpError(
          400,
          `input file name '${f.name}' is not allowed; expected 1-128 letters, digits, '_', '.', '-'`,
        );
      }
      if (names.has(f.name)) throw new HttpError(400, `input file '${f.name}' is given twice`);
      names.add(f.name);
      total += f.data.length;
    }
    if (total > limits.maxUploadBytes) {
      throw new HttpError(
        413,
        `the upload has ${total} bytes; this user may upload at most ${limits.maxUploadBytes}`,
      );
    }
    const tooMany = (): HttpError =>
      new HttpError(
        429,
        `this user already has ${limits.maxActiveJobs} queued or running jobs, the most allowed`,
      );
    // Early answer before writing files; the insert below checks again atomically.
    if ((await store.countActive(user.name)) >= limits.maxActiveJobs) throw tooMany();
    const id = crypto.randomUUID();
    const jobDir = `${config.dataDir}/jobs/${user.name}/${id}`;
    await Deno.mkdir(`${jobDir}/in`, { recursive: true });
    if (sub.recipeSource) {
      recipePath = `${jobDir}/recipe/${sub.recipeFileName || "recipe.ts"}`;
      await Deno.mkdir(`${jobDir}/recipe`);
      await writeAtomic(recipePath, sub.recipeSource);
    }
    const inputs: string[] = [];
    for (const f of sub.inputs) {
      const p = `${jobDir}/in/${f.name}`;
      await writeAtomic(p, f.data);
      inputs.push(p);
    }
    const job = await store.insert({
      id,
      user: user.name,
      recipe: recipeLabel,
      recipePath: recipePath!,
      params: sub.params,
      seed: sub.seed,
      inputs: [...inputs, ...datasetPaths],
      datasets: sub.datasets,
      jobDir,
      limits: {
        timeoutMs: limits.timeoutMs,
        memoryMb: limits.memoryMb,
        maxOutputBytes: limits.maxOutputBytes,
      },
    }, { maxActive: limits.maxActiveJobs });
    if (!job) {
      await Deno.remove(jobDir, { recursive: true }).catch(() => {});
      throw tooMany();
    }
    runner.kick();
    return json(jobView(job), 201, { location: `/api/jobs/${id}` });
  }

  async function cancel(user: UserConfig, id: string): Promise<Response> {
    const job = await ownJob(user, id);
    if (TERMINAL.has(job.state)) return json(jobView(job));
    if (!(await store.cancelQueued(id))) {
      await store.requestCancel(id);
      runner.cancel(id);
    }
    events.emit(id);
    // Wait briefly for the run to end so the answer usually shows the final state.
    for (let i = 0; i < 20; i++) {
      const j = await store.get(id);
      if (j && TERMINAL.has(j.state)) return json(jobView(j));
      await events.wait(id, 250);
    }
    return json(jobView((await store.get(id))!), 202);
  }

  async function longPollLog(user: UserConfig, id: string, req: Request): Promise<Response> {
    const url = new URL(req.url);
    const after = Math.max(0, Number(url.searchParams.get("after") ?? "0") || 0);
    const wait = Math.min(30_000, Math.max(0, Number(url.searchParams.get("wait") ?? "0") || 0));
    let job = await ownJob(user, id);
    let lines = await store.readLog(id, after, 1000);
    if (lines.length === 0 && !TERMINAL.has(job.state) && wait > 0) {
      await events.wait(id, wait, req.signal);
      job = await ownJob(user, id);
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
            const j = await ownJob(user, job.id);
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

  async function download(user: UserConfig, id: string, rel: string): Promise<Response> {
    const job = await ownJob(user, id);
    if (job.attempts === 0) throw new HttpError(404, "the job has not started; it has no results");
    const path = await resolveOutput(jobOutDir(job), rel);
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

  async function route(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname;
    const method = req.method;
    if (!path.startsWith("/api/")) {
      if (STATIC[path] && (method === "GET" || method === "HEAD")) return await staticFile(path);
      throw new HttpError(404, `no page '${path}'`);
    }
    if (path === "/api/health") return json({ ok: true });
    const user = auth.fromRequest(req);
    if (!user) {
      const had = req.headers.has("authorization");
      return json(
        {
          error: had
            ? "the token is not valid; expected 'Authorization: Bearer <token>' with a token issued for this server"
            : "authentication required; expected an 'Authorization: Bearer <token>' header",
        },
        401,
        { "www-authenticate": 'Bearer realm="petrel"' },
      );
    }
    const parts = path.split("/").slice(2); // after "/api"
    const allow = (...m: string[]): void => {
      if (!m.includes(method)) {
        throw new HttpError(
          405,
          `method ${method} is not allowed here; expected ${m.join(" or ")}`,
        );
      }
    };
    if (parts.length === 1 && parts[0] === "me") {
      allow("GET");
      return json({
        user: user.name,
        limits: userLimits(config, user),
        allowUploadedRecipes: user.allowUploadedRecipes ?? config.allowUploadedRecipes,
      });
    }
    if (parts.length === 1 && parts[0] === "recipes") {
      allow("GET");
      return json({ recipes: Object.keys(config.recipes) });
    }
    if (parts.length === 2 && parts[0] === "recipes") {
      allow("GET");
      return await recipeInfo(parts[1]);
    }
    if (parts.length === 1 && parts[0] === "datasets") {
      allow("GET");
      return json({ datasets: Object.keys(config.datasets) });
    }
    if (parts[0] === "jobs") {
      if (parts.length === 1) {
        allow("GET", "POST");
        if (method === "POST") return await submit(user, req);
        const limit = Math.min(1000, Math.max(1, Number(url.searchParams.get("limit")) || 200));
        const jobs = await store.list(user.name, { limit });
        return json({ jobs: jobs.map(jobView) });
      }
      const id = parts[1];
      if (parts.length === 2) {
        allow("GET", "DELETE");
        if (method === "DELETE") return await cancel(user, id);
        return json(jobView(await ownJob(user, id)));
      }
      if (parts.length === 3 && parts[2] === "cancel") {
        allow("POST");
        return await cancel(user, id);
      }
      if (parts.length === 3 && parts[2] === "purge") {
        allow("POST");
        const job = await ownJob(user, id);
        if (!TERMINAL.has(job.state) || !(await store.remove(id))) {
          throw new HttpError(409, `job '${id}' has not ended; cancel it first, then purge it`);
        }
        await Deno.remove(job.jobDir, { recursive: true }).catch(() => {});
        return json({ purged: id });
      }
      if (parts.length === 3 && parts[2] === "log") {
        allow("GET");
        return await longPollLog(user, id, req);
      }
      if (parts.length === 3 && parts[2] === "events") {
        allow("GET");
        return sse(user, await ownJob(user, id), req);
      }
      if (parts.length === 3 && parts[2] === "files") {
        allow("GET");
        const job = await ownJob(user, id);
        return json({ files: job.attempts ? await listOutputs(jobOutDir(job)) : [] });
      }
      if (parts.length >= 4 && parts[2] === "files") {
        allow("GET");
        return await download(user, id, parts.slice(3).join("/"));
      }
    }
    throw new HttpError(404, `no API route '${method} ${path}'`);
  }

  return async (req: Request): Promise<Response> => {
    try {
      return await route(req);
    } catch (e) {
      if (e instanceof HttpError) return json({ error: e.message }, e.status);
      console.error(`petrel serve: internal error on ${req.method} ${req.url}:`, e);
      return json({ error: "internal server error" }, 500);
    }
  };
}
