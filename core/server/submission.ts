/**
 * `POST /api/jobs`: parses a submission (JSON or multipart/form-data, size-capped while it streams
 * in), checks it against the configuration and the user's limits, writes the uploaded files
 * atomically into a fresh job folder and stores the queued job.
 *
 * @module
 */
import { PRIVATE_DIR_MODE } from "./private.ts";
import { z } from "zod";
import { type ServerConfig, type UserConfig, userLimits } from "./config.ts";
import { HttpError, readBody } from "./http.ts";
import type { JobRecord, JobStore } from "./store.ts";

const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const RECIPE_FILE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\.(ts|js|mjs)$/;

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

/** A parsed submission, before it is checked against the configuration. */
export interface Submission {
  /** Allow-listed recipe name. */
  recipe?: string;
  /** Uploaded recipe source. */
  recipeSource?: Uint8Array;
  /** Uploaded recipe file name. */
  recipeFileName?: string;
  /** Recipe parameters. */
  params: Record<string, unknown>;
  /** Seed of the run. */
  seed?: number;
  /** Dataset names. */
  datasets: string[];
  /** Uploaded input files. */
  inputs: { name: string; data: Uint8Array }[];
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

/** Parses the body of `POST /api/jobs` (JSON or multipart), at most `maxUpload` bytes of files. */
export async function parseSubmission(req: Request, maxUpload: number): Promise<Submission> {
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

/**
 * Checks a parsed submission of `user` against the configuration and limits, writes its files
 * into `<dataDir>/jobs/<user>/<id>/` and stores it as queued; throws {@linkcode HttpError} 400,
 * 403, 413 or 429 (nothing is left behind then).
 */
export async function acceptSubmission(
  sub: Submission,
  ctx: { config: ServerConfig; store: JobStore; user: UserConfig },
): Promise<JobRecord> {
  const { config, store, user } = ctx;
  const limits = userLimits(config, user);
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
  await Deno.mkdir(`${jobDir}/in`, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (sub.recipeSource) {
    recipePath = `${jobDir}/recipe/${sub.recipeFileName || "recipe.ts"}`;
    await Deno.mkdir(`${jobDir}/recipe`, { mode: PRIVATE_DIR_MODE });
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
  return job;
}
