/**
 * File helpers shared by every petrel reader and writer: atomic writes (temporary name in the
 * same folder, then rename), reads that turn Deno's permission errors into a sentence naming the
 * `--allow-*` flag that is missing, and gzip detection.
 *
 * @module
 */

import { constants as zlibConstants, gunzipSync, gzipSync } from "node:zlib";
import type { z } from "zod";

/**
 * Thrown for files that cannot be parsed: corrupt, truncated, wrong dtype or shape.
 *
 * @example
 * ```ts
 * import { FormatError, readNifti } from "@petrel/petrel";
 * try {
 *   await readNifti("in/mu.nii");
 * } catch (e) {
 *   if (e instanceof FormatError) console.error(`not a usable NIfTI: ${e.message}`);
 *   else throw e;
 * }
 * ```
 */
export class FormatError extends Error {
  /** Error name. */
  override name = "FormatError";
}

/**
 * Thrown when Deno's permissions or the operating system refuse access to a file.
 *
 * @example
 * ```ts
 * import { FilePermissionError, readSinogram } from "@petrel/petrel";
 * try {
 *   await readSinogram("/data/study/prompts.npy");
 * } catch (e) {
 *   // e.g. "cannot read /data/study/prompts.json: Deno was not granted read access; run with --allow-read=…"
 *   if (e instanceof FilePermissionError) console.error(e.message);
 *   else throw e;
 * }
 * ```
 */
export class FilePermissionError extends Error {
  /** Error name. */
  override name = "FilePermissionError";
}

/** True for a `Deno.errors.NotCapable` (missing `--allow-*` flag; Deno ≥ 2). */
function isNotCapable(e: unknown): boolean {
  // deno-lint-ignore no-explicit-any
  const NotCapable = (Deno.errors as any).NotCapable;
  return (NotCapable !== undefined && e instanceof NotCapable) ||
    (e instanceof Error && e.name === "NotCapable");
}

/**
 * Rewrites a file-system error into one with a clear message: for missing Deno permissions the
 * message names the flag (`--allow-read` / `--allow-write`), for OS refusals the path and mode.
 * Other errors pass through unchanged.
 *
 * @example
 * ```ts
 * import { explainFileError } from "@petrel/petrel";
 * const path = "out/recon.raw";
 * try {
 *   await Deno.writeFile(path, new Uint8Array(16));
 * } catch (e) {
 *   throw explainFileError(e, "write", path); // names --allow-write=out/recon.raw when that is missing
 * }
 * ```
 */
export function explainFileError(e: unknown, op: "read" | "write", path: string): Error {
  const flag = op === "read" ? "--allow-read" : "--allow-write";
  if (isNotCapable(e)) {
    return new FilePermissionError(
      `cannot ${op} ${path}: Deno was not granted ${op} access; run with ${flag}=${path} ` +
        `(or a folder above it)`,
      { cause: e },
    );
  }
  if (e instanceof Deno.errors.PermissionDenied) {
    return new FilePermissionError(
      `cannot ${op} ${path}: permission denied (by Deno's ${flag} or the file system's ` +
        `access rights); grant ${flag}=${path} and check the file's owner and mode`,
      { cause: e },
    );
  }
  if (e instanceof Deno.errors.NotFound) {
    return new Deno.errors.NotFound(
      op === "read"
        ? `cannot read ${path}: no such file`
        : `cannot write ${path}: its folder does not exist`,
      { cause: e },
    );
  }
  return e instanceof Error ? e : new Error(String(e));
}

/**
 * Reads a whole file, with {@linkcode explainFileError} messages on failure.
 *
 * @example
 * ```ts
 * import { decodeNpy, readBytes } from "@petrel/petrel";
 * const { data, shape } = decodeNpy(await readBytes("in/prompts.npy"), "in/prompts.npy");
 * ```
 */
export async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw explainFileError(e, "read", path);
  }
}

/**
 * Reads a UTF-8 text file, with {@linkcode explainFileError} messages on failure.
 *
 * @example
 * ```ts
 * import { parseInterfile, readText } from "@petrel/petrel";
 * const header = parseInterfile(await readText("in/mu.hv"), "in/mu.hv");
 * ```
 */
export async function readText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw explainFileError(e, "read", path);
  }
}

/**
 * Reads a JSON sidecar and validates it with `schema`: a {@linkcode FormatError} names the file
 * and, for a sidecar that does not fit, the first offending field (`what` names the kind).
 * Returns the validated sidecar and the JSON as written (to tell given fields from defaults).
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * const Sidecar = z.object({ shape: z.array(z.number().int().positive()) });
 * const { sidecar } = await readJsonSidecar("in/prompts.json", Sidecar, "sinogram");
 * sidecar.shape; // e.g. [129, 224, 3]
 * ```
 */
export async function readJsonSidecar<S extends z.ZodType>(
  path: string,
  schema: S,
  what: string,
): Promise<{ sidecar: z.output<S>; raw: unknown }> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readText(path));
  } catch (e) {
    if (e instanceof SyntaxError) {
      throw new FormatError(`${path}: not valid JSON (${e.message})`, { cause: e });
    }
    throw e;
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new FormatError(
      `${path}: invalid ${what} sidecar at "${issue.path.join(".")}": ${issue.message} ` +
        `(see docs/formats.md)`,
    );
  }
  return { sidecar: r.data, raw };
}

function splitPath(path: string): { dir: string; base: string } {
  const i = path.lastIndexOf("/");
  return i < 0
    ? { dir: ".", base: path }
    : { dir: path.slice(0, i) || "/", base: path.slice(i + 1) };
}

/**
 * Writes `bytes` (or UTF-8 `text`) to `path` atomically: the data go to a hidden temporary file
 * in the same folder, which is then renamed over `path`. On any error the temporary file is
 * removed and `path` is left as it was (absent or with its previous content).
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const { dir, base } = splitPath(path);
  const tmp = `${dir}/.${base}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, path);
  } catch (e) {
    try {
      await Deno.remove(tmp);
    } catch {
      // the temporary file was never created (or is already gone)
    }
    throw explainFileError(e, "write", path);
  }
}

/**
 * Writes several files so that either all of them appear or none does (as far as the file
 * system allows): every file is first written to a temporary name, then all are renamed.
 * Used for data + header pairs (NIfTI-free formats, Interfile, sidecars).
 */
export async function writeFilesAtomic(
  files: readonly { path: string; data: Uint8Array | string }[],
): Promise<void> {
  const tmps: { tmp: string; path: string }[] = [];
  let current = files[0]?.path ?? "";
  try {
    for (const f of files) {
      current = f.path;
      const { dir, base } = splitPath(f.path);
      const tmp = `${dir}/.${base}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
      tmps.push({ tmp, path: f.path });
      await Deno.writeFile(
        tmp,
        typeof f.data === "string" ? new TextEncoder().encode(f.data) : f.data,
      );
    }
    for (const t of tmps) {
      current = t.path;
      await Deno.rename(t.tmp, t.path);
    }
  } catch (e) {
    for (const t of tmps) {
      try {
        await Deno.remove(t.tmp);
      } catch {
        // not created or already renamed
      }
    }
    throw explainFileError(e, "write", current);
  }
}

/** True when `bytes` start with the gzip magic number (1f 8b). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Deflate cannot expand data by more than this factor (RFC 1951: ≤ 258 bytes per ~2 bits). */
const MAX_DEFLATE_RATIO = 1032;

/**
 * Gunzips `bytes` if they are gzip-compressed; otherwise returns them unchanged. With
 * `maxBytes`, inflating stops as soon as the output would exceed it (no more is allocated) and
 * a {@linkcode FormatError} says so: a small file that inflates to gigabytes is refused quickly.
 */
export function maybeGunzip(bytes: Uint8Array, what: string, maxBytes?: number): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  try {
    const out = maxBytes === undefined
      ? gunzipSync(bytes)
      : gunzipSync(bytes, { maxOutputLength: Math.max(1, Math.floor(maxBytes)) });
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (e) {
    if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
      throw new FormatError(
        `${what}: the gzip stream inflates to more than the ${maxBytes} bytes its header ` +
          `declares; refusing it (a corrupt file or a decompression bomb)`,
        { cause: e },
      );
    }
    throw new FormatError(
      `${what}: the gzip stream is corrupt or truncated (${(e as Error).message}); ` +
        `expected a complete .gz file`,
      { cause: e },
    );
  }
}

/**
 * The first bytes of a gzip stream, at least `want` of them when the stream holds that many
 * (fewer only if it is shorter or corrupt), inflated from a prefix of the compressed bytes so
 * that reading a header never inflates the whole file.
 */
export function gunzipPrefix(bytes: Uint8Array, want: number): Uint8Array {
  let out: Uint8Array = new Uint8Array(0);
  for (let k = 1024;; k *= 4) {
    const part = bytes.subarray(0, Math.min(k, bytes.length));
    try {
      const o = gunzipSync(part, {
        finishFlush: zlibConstants.Z_SYNC_FLUSH,
        maxOutputLength: MAX_DEFLATE_RATIO * part.length + 1024,
      });
      out = new Uint8Array(o.buffer, o.byteOffset, o.byteLength);
    } catch {
      // a corrupt stream: the full inflate reports it
      return out;
    }
    if (out.length >= want || part.length === bytes.length) return out;
  }
}

/**
 * Largest output a gzip stream of `compressedBytes` bytes can inflate to: a header declaring more
 * cannot be satisfied, so such a file is refused as truncated without inflating it.
 */
export function maxInflatedSize(compressedBytes: number): number {
  return MAX_DEFLATE_RATIO * compressedBytes + 1024;
}

/** Options of the readers that check values. */
export interface FiniteOptions {
  /**
   * Accept NaN and ±Inf values (default false: a file holding any is refused with a
   * {@linkcode FormatError} naming the file, the count and the first bad index).
   */
  allowNonFinite?: boolean;
}

/**
 * Throws a {@linkcode FormatError} when `data` holds NaN or ±Inf, naming `what` (the file), how
 * many, and the first one's flat index (and its coordinates in `shape`, fastest axis first).
 * A NaN voxel in a μ-map turns a whole reconstruction into zeros, so readers refuse them unless
 * the caller passes `allowNonFinite`.
 *
 * @example
 * ```ts
 * checkFinite(new Float32Array([1, NaN]), "mu.nii"); // throws: "mu.nii: 1 of 2 values …"
 * ```
 */
export function checkFinite(
  data: ArrayLike<number>,
  what: string,
  shape?: readonly number[],
  options: FiniteOptions = {},
): void {
  if (options.allowNonFinite) return;
  let first = -1;
  let nan = 0;
  let inf = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    // v - v is 0 for finite numbers and NaN for NaN and ±Inf: one comparison per value
    if (v - v !== 0) {
      if (first < 0) first = i;
      if (v !== v) nan++;
      else inf++;
    }
  }
  if (first < 0) return;
  let where = `index ${first}`;
  if (shape && shape.length > 1) {
    const c: number[] = [];
    let r = first;
    for (const n of shape) {
      c.push(r % n);
      r = Math.floor(r / n);
    }
    where += ` = [${c.join(", ")}] (fastest axis first)`;
  }
  throw new FormatError(
    `${what}: ${nan + inf} of ${data.length} values are not finite (${nan} NaN, ${inf} ±Inf); ` +
      `the first is at ${where} = ${data[first]}. NaN or Inf in an image or sinogram would ` +
      `spread through a reconstruction; fix the file, or read it with allowNonFinite: true`,
  );
}

/**
 * Resolves `name` (a data file named in a header) against the header's folder and checks that,
 * after following `..` and symbolic links, it lies inside that folder: a header cannot make a
 * reader open `/etc/passwd` or `../../secret`. Returns the resolved real path.
 */
export async function dataFileInside(headerPath: string, name: string): Promise<string> {
  const dir = splitPath(headerPath).dir;
  let realDir: string;
  try {
    realDir = await Deno.realPath(dir);
  } catch (e) {
    // Inputs granted file by file (no read access to the folder): the header's own real folder.
    try {
      realDir = splitPath(await Deno.realPath(headerPath)).dir;
    } catch {
      throw explainFileError(e, "read", dir);
    }
  }
  const joined = name.startsWith("/") ? name : `${dir}/${name}`;
  let real: string;
  try {
    real = await Deno.realPath(joined);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new FormatError(
        `${headerPath}: its data file "${name}" does not exist (looked for ${joined})`,
        { cause: e },
      );
    }
    throw explainFileError(e, "read", joined);
  }
  const root = realDir.endsWith("/") ? realDir : `${realDir}/`;
  if (!real.startsWith(root)) {
    throw new FormatError(
      `${headerPath}: its data file "${name}" resolves to ${real}, outside the header's folder ` +
        `${realDir}; data files must lie in the header's folder (no absolute paths, "..", or ` +
        `symbolic links leading out)`,
    );
  }
  return real;
}

/** Gzips `bytes` (level 6 by default). */
export function gzip(bytes: Uint8Array, level = 6): Uint8Array {
  const out = gzipSync(bytes, { level });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Product of a shape's entries. */
export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Checks that `shape` holds positive integers whose product is `length`. */
export function checkShape(shape: readonly number[], length: number, what: string): void {
  if (shape.length === 0 || !shape.every((n) => Number.isInteger(n) && n > 0)) {
    throw new RangeError(
      `${what}: shape ${JSON.stringify(shape)} must be a non-empty list of positive integers`,
    );
  }
  const n = shapeSize(shape);
  if (n !== length) {
    throw new RangeError(
      `${what}: shape ${JSON.stringify(shape)} holds ${n} values but the data has ${length}`,
    );
  }
}
