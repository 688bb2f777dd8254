/**
 * Provenance manifests: what ran (recipe + sha256, parameters, seed), on what (sha256 of every
 * input and model, adapter, versions), what came out (sha256 of every output) and how long it
 * took. The sandbox runner writes `manifest.json` into the output folder of every run.
 *
 * @module
 */

import { z } from "zod";
import denoJson from "../../deno.json" with { type: "json" };
import { sha256Bytes, sha256File, walkFiles } from "./hash.ts";

/**
 * Name of the manifest file in an output folder (reserved: recipes cannot write it).
 *
 * @example
 * ```ts
 * import { MANIFEST_NAME, readManifest } from "@petrel/petrel";
 * const m = await readManifest(`out/osem/${MANIFEST_NAME}`);
 * ```
 */
export const MANIFEST_NAME = "manifest.json";

/**
 * Manifest format identifier.
 *
 * @example
 * ```ts
 * import { MANIFEST_FORMAT } from "@petrel/petrel";
 * const raw = JSON.parse(await Deno.readTextFile("out/osem/manifest.json"));
 * if (raw.format !== MANIFEST_FORMAT) throw new Error(`not a ${MANIFEST_FORMAT} manifest`);
 * ```
 */
export const MANIFEST_FORMAT = "petrel-manifest/1";

/**
 * One hashed file.
 *
 * @example
 * ```ts
 * import { HashedFileSchema, sha256File } from "@petrel/petrel";
 * const path = "sim/prompts.npy";
 * const entry = HashedFileSchema.parse({
 *   path,
 *   bytes: (await Deno.stat(path)).size,
 *   sha256: await sha256File(path),
 * });
 * ```
 */
export const HashedFileSchema = z.object({
  /** Absolute path for inputs/models; path relative to the output folder for outputs. */
  path: z.string(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

/** A hashed file entry of a manifest. */
export type HashedFile = z.infer<typeof HashedFileSchema>;

const AdapterSchema = z.object({
  description: z.string(),
  vendor: z.string(),
  architecture: z.string(),
  isFallback: z.boolean(),
  limits: z.record(z.string(), z.number()),
});

/**
 * zod schema of `manifest.json`.
 *
 * @example
 * ```ts
 * import { ManifestSchema } from "@petrel/petrel";
 * const res = ManifestSchema.safeParse(JSON.parse(await Deno.readTextFile("out/osem/manifest.json")));
 * if (res.success) console.log(res.data.seed, res.data.versions.petrel, res.data.result.ok);
 * ```
 */
export const ManifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  recipe: z.object({ path: z.string(), sha256: z.string() }),
  /** Parameters after validation (defaults filled in); raw ones if validation failed. */
  params: z.record(z.string(), z.unknown()),
  seed: z.number(),
  /** The root paths given to the run (files or folders). */
  inputRoots: z.array(z.string()),
  modelRoots: z.array(z.string()),
  inputs: z.array(HashedFileSchema),
  models: z.array(HashedFileSchema),
  outputs: z.array(HashedFileSchema),
  /**
   * Outputs the recipe declared nondeterministic (`ctx.nondeterministic`, e.g. wall-clock
   * timings): hashed like the others, not compared by `petrel verify`.
   */
  nondeterministicOutputs: z.array(z.string()).optional(),
  versions: z.object({
    petrel: z.string(),
    deno: z.string(),
    v8: z.string(),
    typescript: z.string(),
    /** Version pinned in petrel's deno.json (used by recipes that run ONNX models). */
    onnxruntimeWeb: z.string().nullable(),
    /** sha256 over petrel's own sources the child may load (see {@linkcode petrelSourcesHash}). */
    petrelSources: z.string().optional(),
  }),
  adapter: AdapterSchema.nullable(),
  limits: z.object({
    timeoutMs: z.number(),
    memoryMb: z.number(),
    maxOutputBytes: z.number(),
    maxOutputEntries: z.number().optional(),
    maxProcesses: z.number().optional(),
  }),
  /** The OS layers the run had (see docs/security.md) and its measured peak memory. */
  sandbox: z.object({
    namespaces: z.string().nullable(),
    memory: z.string().nullable(),
    processes: z.string().nullable(),
    peakMemoryMb: z.number().nullable(),
  }).nullable().optional(),
  timings: z.object({
    startedAt: z.string(),
    finishedAt: z.string(),
    totalMs: z.number(),
    gpuInitMs: z.number().nullable(),
    importMs: z.number().nullable(),
    runMs: z.number().nullable(),
  }),
  result: z.object({
    ok: z.boolean(),
    exitCode: z.number().nullable(),
    reason: z.string().optional(),
    error: z.string().optional(),
  }),
});

/** Contents of `manifest.json`. */
export type Manifest = z.infer<typeof ManifestSchema>;

/**
 * Versions recorded in manifests.
 *
 * @example
 * ```ts
 * import { runtimeVersions } from "@petrel/petrel";
 * const { petrel, deno, onnxruntimeWeb } = runtimeVersions(); // as recorded in every manifest
 * ```
 */
export function runtimeVersions(): Manifest["versions"] {
  const ort = (denoJson.imports as Record<string, string>)["onnxruntime-web"];
  return {
    petrel: denoJson.version,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    onnxruntimeWeb: ort ? (/@([^/]+)$/.exec(ort)?.[1] ?? ort) : null,
  };
}

/**
 * Hashes every file under each root (files or folders), in a stable order.
 *
 * @example
 * ```ts
 * import { hashTree } from "@petrel/petrel";
 * const inputs = await hashTree(["sim", "models/prior.onnx"]); // { path, bytes, sha256 } per file
 * ```
 */
export async function hashTree(roots: readonly string[]): Promise<HashedFile[]> {
  const out: HashedFile[] = [];
  for (const root of roots) {
    for (const f of await walkFiles(root)) {
      out.push({ path: f.path, bytes: f.bytes, sha256: await sha256File(f.path) });
    }
  }
  return out;
}

/**
 * sha256 over petrel's own sources that a run may load: `mod.ts`, `deno.json`, `deno.lock` (which
 * pins every npm package), `shaders/`, `core/` without `server/`, and `experiments/`. It hashes the sorted list of
 * `relative path, sha256` lines, so any added, removed or changed file changes it.
 *
 * @example
 * ```ts
 * import { petrelRoot, petrelSourcesHash, readManifest } from "@petrel/petrel";
 * const m = await readManifest("out/osem/manifest.json");
 * if (m.versions.petrelSources !== (await petrelSourcesHash(petrelRoot()))) {
 *   console.warn("petrel's sources changed since this run");
 * }
 * ```
 */
export async function petrelSourcesHash(root: string): Promise<string> {
  const lines: string[] = [];
  const roots = ["mod.ts", "deno.json", "deno.lock", "shaders", "core", "experiments"];
  for (const r of roots) {
    let files;
    try {
      files = await walkFiles(`${root}/${r}`);
    } catch {
      continue; // absent in this checkout
    }
    for (const f of files) {
      const rel = f.path.slice(root.length + 1);
      if (rel.startsWith("core/server/")) continue;
      lines.push(`${rel}\t${await sha256File(f.path)}`);
    }
  }
  lines.sort();
  return sha256Bytes(lines.join("\n") + "\n");
}

/**
 * Hashes the outputs of a run (paths relative to `outDir`, the manifest itself excluded).
 *
 * @example
 * ```ts
 * import { hashOutputs } from "@petrel/petrel";
 * const outputs = await hashOutputs("out/osem"); // paths relative to out/osem, manifest.json excluded
 * ```
 */
export async function hashOutputs(outDir: string): Promise<HashedFile[]> {
  const out: HashedFile[] = [];
  for (const f of await walkFiles(outDir)) {
    if (f.relative === MANIFEST_NAME) continue;
    out.push({ path: f.relative, bytes: f.bytes, sha256: await sha256File(f.path) });
  }
  return out;
}

/** Writes `data` to `path` through a temporary file and a rename (never half-written). */
async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.petrel-tmp-${crypto.randomUUID().slice(0, 8)}`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Writes a manifest (validated) as pretty JSON.
 *
 * @example
 * ```ts
 * import { readManifest, writeManifest } from "@petrel/petrel";
 * const manifest = await readManifest("out/osem/manifest.json");
 * await writeManifest("archive/osem/manifest.json", manifest); // validated, written atomically
 * ```
 */
export async function writeManifest(path: string, manifest: Manifest): Promise<void> {
  ManifestSchema.parse(manifest);
  await writeFileAtomic(path, JSON.stringify(manifest, null, 2) + "\n");
}

/**
 * Reads and validates a manifest; the error names the file and the first problem.
 *
 * @example
 * ```ts
 * import { readManifest } from "@petrel/petrel";
 * const m = await readManifest("out/osem/manifest.json"); // throws naming the file and the problem
 * console.log(m.params, m.seed, m.outputs.map((f) => f.path));
 * ```
 */
export async function readManifest(path: string): Promise<Manifest> {
  let raw: unknown;
  try {
    raw = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(`cannot read manifest ${path}: ${(e as Error).message}`);
  }
  const res = ManifestSchema.safeParse(raw);
  if (!res.success) {
    const i = res.error.issues[0];
    throw new Error(
      `${path} is not a petrel manifest (${MANIFEST_FORMAT}): ${i.path.join(".")}: ${i.message}`,
    );
  }
  return res.data;
}
