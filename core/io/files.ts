/**
 * File helpers shared by every petrel reader and writer: atomic writes (temporary name in the
 * same folder, then rename), reads that turn Deno's permission errors into a sentence naming the
 * `--allow-*` flag that is missing, and gzip detection.
 *
 * @module
 */

import { gunzipSync, gzipSync } from "node:zlib";

/** Thrown for files that cannot be parsed: corrupt, truncated, wrong dtype or shape. */
export class FormatError extends Error {
  /** Error name. */
  override name = "FormatError";
}

/** Thrown when Deno's permissions or the operating system refuse access to a file. */
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

/** Reads a whole file, with {@linkcode explainFileError} messages on failure. */
export async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw explainFileError(e, "read", path);
  }
}

/** Reads a UTF-8 text file, with {@linkcode explainFileError} messages on failure. */
export async function readText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw explainFileError(e, "read", path);
  }
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

/** Gunzips `bytes` if they are gzip-compressed; otherwise returns them unchanged. */
export function maybeGunzip(bytes: Uint8Array, what: string): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  try {
    const out = gunzipSync(bytes);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (e) {
    throw new FormatError(
      `${what}: the gzip stream is corrupt or truncated (${(e as Error).message}); ` +
        `expected a complete .gz file`,
      { cause: e },
    );
  }
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
