/**
 * `petrel verify`: reruns the recipe of a manifest into a fresh folder and compares the outputs
 * (bit identity via sha256; for numeric files, the largest absolute and relative difference).
 *
 * @module
 */

import { decodeNifti } from "../io/nifti.ts";
import { decodeNpy } from "../io/npy.ts";
import { sha256File } from "./hash.ts";
import { type Manifest, MANIFEST_NAME, readManifest } from "./manifest.ts";
import { within } from "./paths.ts";
import { petrelRoot, runSandboxed, type SandboxOptions, type SandboxResult } from "./sandbox.ts";

/** Comparison of one output between the recorded run and the rerun. */
export interface OutputComparison {
  /** Path relative to the output folder. */
  path: string;
  /**
   * identical: same sha256; different: bytes differ; missing: not produced by the rerun; extra:
   * only in the rerun; not-compared: declared nondeterministic by the recipe (in the rerun).
   */
  status: "identical" | "different" | "missing" | "extra" | "not-compared";
  /** For different numeric outputs (.nii, .nii.gz, .npy, .f32): the largest |a − b|. */
  maxAbsDiff?: number;
  /** maxAbsDiff divided by the largest |a| of the recorded output. */
  maxRelDiff?: number;
  /** Number of elements that differ (numeric outputs). */
  differing?: number;
  /** Why no numeric comparison was made, if so. */
  note?: string;
}

/** What {@linkcode verifyManifest} returns. */
export interface VerifyReport {
  manifest: Manifest;
  /** Folder of the rerun's outputs. */
  rerunDir: string;
  rerun: SandboxResult;
  /** True when the rerun ran on an adapter with the same description, vendor and architecture. */
  sameAdapter: boolean;
  /** The recipe file changed since the recorded run. */
  recipeChanged: boolean;
  /** Inputs or models whose sha256 changed (or that vanished) since the recorded run. */
  changedInputs: string[];
  outputs: OutputComparison[];
  /**
   * Every recorded output was reproduced bit for bit and nothing extra was written (outputs the
   * rerun declared nondeterministic are not compared).
   */
  bitIdentical: boolean;
  /** The paths the manifest asked to read (recipe, inputs, models), checked before the rerun. */
  roots: string[];
}

/** Options of {@linkcode verifyManifest}. */
export interface VerifyOptions {
  /** Where the rerun writes (default: a new temporary folder). */
  outDir?: string;
  /** Passed to the sandbox. */
  onLog?: SandboxOptions["onLog"];
  onProgress?: SandboxOptions["onProgress"];
  signal?: AbortSignal;
  /**
   * Folders besides the default ones (the manifest folder's parent, petrel's `examples/` and
   * `models/`) under which the manifest's recipe, input and model roots may lie; `"/"` allows any.
   */
  allowRoots?: string[];
}

/**
 * A manifest whose roots lie outside the allowed folders (nothing was run).
 *
 * @example
 * ```ts
 * import { UntrustedRootError, verifyManifest } from "@petrel/petrel";
 * try {
 *   await verifyManifest("downloads/osem/manifest.json");
 * } catch (e) {
 *   // its recipe or inputs lie outside downloads/ and petrel's examples/ and models/
 *   if (e instanceof UntrustedRootError) console.error(e.message);
 *   else throw e;
 * }
 * ```
 */
export class UntrustedRootError extends Error {
  override name = "UntrustedRootError";
}

function parentOf(p: string): string {
  const i = p.replace(/\/+$/, "").lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

/**
 * The folders a manifest's roots may lie under without being allowed explicitly: the parent of
 * the manifest's folder (where a run's sibling input folders live, e.g. `sim/` beside `osem/`,
 * or a server job's `in/` beside `out-1/`), petrel's `examples/` and `experiments/` (its own
 * recipes) and petrel's `models/` (the shipped prior, `petrel recon ddip`'s default). The parent
 * is not used when it is `/`.
 *
 * @example
 * ```ts
 * import { defaultAllowedRoots } from "@petrel/petrel";
 * // [".../runs" (the manifest folder's parent), ".../petrel/examples", ".../petrel/experiments",
 * //  ".../petrel/models"]
 * const roots = await defaultAllowedRoots("runs/osem/manifest.json");
 * ```
 */
export async function defaultAllowedRoots(manifestPath: string): Promise<string[]> {
  const dir = parentOf(await Deno.realPath(manifestPath));
  const base = parentOf(dir);
  // petrel's own models/ holds the prior `petrel recon ddip` uses by default
  const root = petrelRoot();
  return [
    ...(base === "/" ? [dir] : [base]),
    `${root}/examples`,
    `${root}/experiments`,
    `${root}/models`,
  ];
}

async function checkRoots(
  manifestPath: string,
  manifest: Manifest,
  allow: readonly string[],
): Promise<string[]> {
  const roots = [manifest.recipe.path, ...manifest.inputRoots, ...manifest.modelRoots];
  const allowed = [
    ...await defaultAllowedRoots(manifestPath),
    ...await Promise.all(allow.map((a) => Deno.realPath(a).catch(() => a))),
  ];
  for (const r of roots) {
    let real = r;
    try {
      real = await Deno.realPath(r);
    } catch {
      // missing: the rerun reports it; the recorded path is checked instead
    }
    if (!r.startsWith("/") || !allowed.some((a) => within(real, a) && within(r, a))) {
      throw new UntrustedRootError(
        `${manifestPath} asks to read "${r}", outside the folders a manifest may name ` +
          `(${allowed.join(", ")}); a manifest is untrusted input: check it and allow the ` +
          `folder explicitly (petrel verify --allow-root <folder>)`,
      );
    }
  }
  return roots;
}

// Outputs are compared NaN-aware (compareArrays), so the readers must not refuse NaN/Inf here.
const NAN_AWARE = { allowNonFinite: true } as const;

/**
 * Decodes a numeric output to float values, or null when the format is not numeric.
 *
 * @example
 * ```ts
 * import { compareArrays, numericContents } from "@petrel/petrel";
 * const a = numericContents("osem.nii", await Deno.readFile("run1/osem.nii"));
 * const b = numericContents("osem.nii", await Deno.readFile("run2/osem.nii"));
 * if (a && b) console.log(compareArrays(a, b).maxRelDiff);
 * ```
 */
export function numericContents(
  path: string,
  bytes: Uint8Array,
): Float64Array | Float32Array | null {
  if (/\.nii(\.gz)?$/.test(path)) return decodeNifti(bytes, path, NAN_AWARE).data;
  if (path.endsWith(".npy")) {
    const a = decodeNpy(bytes, path, NAN_AWARE);
    return a.raw instanceof Float64Array ? a.raw : a.data;
  }
  if (path.endsWith(".f32") && bytes.byteLength % 4 === 0) {
    return new Float32Array(bytes.slice().buffer);
  }
  return null;
}

/**
 * Largest absolute/relative difference between two numeric arrays of equal length.
 *
 * @example
 * ```ts
 * import { compareArrays } from "@petrel/petrel";
 * compareArrays(Float32Array.of(1, 2, 4), Float32Array.of(1, 2, 3));
 * // { maxAbsDiff: 1, maxRelDiff: 0.25, differing: 1 }
 * ```
 */
export function compareArrays(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
): { maxAbsDiff: number; maxRelDiff: number; differing: number } {
  let maxAbs = 0;
  let maxRef = 0;
  let differing = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    const same = a[i] === b[i] || (Number.isNaN(a[i]) && Number.isNaN(b[i]));
    if (!same) {
      differing++;
      maxAbs = Math.max(maxAbs, Number.isNaN(d) ? Infinity : d);
    }
    if (Number.isFinite(a[i])) maxRef = Math.max(maxRef, Math.abs(a[i]));
  }
  return { maxAbsDiff: maxAbs, maxRelDiff: maxRef > 0 ? maxAbs / maxRef : maxAbs, differing };
}

async function changedFiles(recorded: Manifest["inputs"]): Promise<string[]> {
  const changed: string[] = [];
  for (const f of recorded) {
    try {
      if ((await sha256File(f.path)) !== f.sha256) changed.push(f.path);
    } catch {
      changed.push(f.path);
    }
  }
  return changed;
}

/**
 * Reruns the run recorded in `manifestPath` (same recipe, inputs, models, parameters, seed and
 * limits) and compares its outputs with the recorded ones. The recorded output folder (the
 * manifest's folder) is read to compare numeric outputs element by element.
 *
 * A manifest is untrusted: before anything runs, its recipe, input and model roots must lie under
 * the default folders ({@linkcode defaultAllowedRoots}) or `options.allowRoots`, else an
 * {@linkcode UntrustedRootError} is thrown.
 *
 * @example
 * ```ts
 * const report = await verifyManifest("osem/manifest.json", { allowRoots: ["sim"] });
 * console.log(report.bitIdentical ? "bit-identical" : report.outputs);
 * ```
 */
export async function verifyManifest(
  manifestPath: string,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const manifest = await readManifest(manifestPath);
  const roots = await checkRoots(manifestPath, manifest, options.allowRoots ?? []);
  const recordedDir = manifestPath.includes("/")
    ? manifestPath.slice(0, manifestPath.lastIndexOf("/"))
    : ".";
  let recipeChanged = true;
  try {
    recipeChanged = (await sha256File(manifest.recipe.path)) !== manifest.recipe.sha256;
  } catch {
    // recipe gone: the rerun reports it
  }
  const changedInputs = [
    ...await changedFiles(manifest.inputs),
    ...await changedFiles(manifest.models),
  ];
  const rerunDir = options.outDir ?? await Deno.makeTempDir({ prefix: "petrel-verify-" });
  const rerun = await runSandboxed({
    recipe: manifest.recipe.path,
    inputs: manifest.inputRoots,
    models: manifest.modelRoots,
    outDir: rerunDir,
    params: manifest.params,
    seed: manifest.seed,
    timeoutMs: manifest.limits.timeoutMs,
    memoryMb: manifest.limits.memoryMb,
    maxOutputBytes: manifest.limits.maxOutputBytes,
    maxOutputEntries: manifest.limits.maxOutputEntries,
    maxProcesses: manifest.limits.maxProcesses,
    onLog: options.onLog,
    onProgress: options.onProgress,
    signal: options.signal,
  });
  let rerunManifest: Manifest | null = null;
  try {
    rerunManifest = await readManifest(`${rerunDir}/${MANIFEST_NAME}`);
  } catch {
    // the rerun failed before writing a manifest
  }
  const a = manifest.adapter;
  const b = rerunManifest?.adapter ?? null;
  const sameAdapter = a !== null && b !== null && a.description === b.description &&
    a.vendor === b.vendor && a.architecture === b.architecture;
  const outputs: OutputComparison[] = [];
  // The rerun's declarations count (its recipe is the one on disk now), not the manifest's.
  const skip = new Set(rerunManifest?.nondeterministicOutputs ?? []);
  const newOutputs = new Map((rerunManifest?.outputs ?? []).map((o) => [o.path, o]));
  for (const o of manifest.outputs) {
    const n = newOutputs.get(o.path);
    newOutputs.delete(o.path);
    if (!n) {
      outputs.push({ path: o.path, status: "missing" });
      continue;
    }
    if (skip.has(o.path)) {
      outputs.push({
        path: o.path,
        status: "not-compared",
        note: "declared nondeterministic by the recipe",
      });
      continue;
    }
    if (n.sha256 === o.sha256) {
      outputs.push({ path: o.path, status: "identical" });
      continue;
    }
    const cmp: OutputComparison = { path: o.path, status: "different" };
    try {
      const before = await Deno.readFile(`${recordedDir}/${o.path}`);
      const after = await Deno.readFile(`${rerunDir}/${o.path}`);
      const x = numericContents(o.path, before);
      const y = numericContents(o.path, after);
      if (!x || !y) cmp.note = "not a numeric format (.nii, .nii.gz, .npy, .f32): bytes differ";
      else if (x.length !== y.length) cmp.note = `sizes differ: ${x.length} vs ${y.length} values`;
      else Object.assign(cmp, compareArrays(x, y));
    } catch (e) {
      cmp.note = `could not compare values: ${(e as Error).message}`;
    }
    outputs.push(cmp);
  }
  for (const p of newOutputs.keys()) outputs.push({ path: p, status: "extra" });
  return {
    manifest,
    rerunDir,
    rerun,
    sameAdapter,
    recipeChanged,
    changedInputs,
    outputs,
    bitIdentical: rerun.ok &&
      outputs.every((o) => o.status === "identical" || o.status === "not-compared"),
    roots,
  };
}
