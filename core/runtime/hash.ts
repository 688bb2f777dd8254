/**
 * SHA-256 of files and folders (streamed), and deterministic folder walks.
 *
 * @module
 */

import { createHash } from "node:crypto";

/** Hex SHA-256 of bytes. */
export function sha256Bytes(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Hex SHA-256 of a file, read in chunks (works for files larger than memory). */
export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  using f = await Deno.open(path, { read: true });
  const buf = new Uint8Array(1 << 20);
  while (true) {
    const n = await f.read(buf);
    if (n === null) break;
    h.update(buf.subarray(0, n));
  }
  return h.digest("hex");
}

/** A file found by {@linkcode walkFiles}. */
export interface WalkedFile {
  /** Absolute path. */
  path: string;
  /** Path relative to the walked root, `/`-separated. */
  relative: string;
  /** Size in bytes. */
  bytes: number;
}

/**
 * Every regular file under `root` (recursively, symlinks not followed), sorted by relative path.
 * A file `root` yields itself with its base name as relative path.
 */
export async function walkFiles(root: string): Promise<WalkedFile[]> {
  const st = await Deno.lstat(root);
  if (st.isFile) {
    return [{ path: root, relative: root.split("/").pop()!, bytes: st.size }];
  }
  const out: WalkedFile[] = [];
  async function rec(dir: string, rel: string): Promise<void> {
    for await (const e of Deno.readDir(dir)) {
      const p = `${dir}/${e.name}`;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await rec(p, r);
      else if (e.isFile) out.push({ path: p, relative: r, bytes: (await Deno.lstat(p)).size });
    }
  }
  if (st.isDirectory) await rec(root, "");
  out.sort((a, b) => (a.relative < b.relative ? -1 : a.relative > b.relative ? 1 : 0));
  return out;
}

/** Total bytes and number of entries under `root` (tolerant of concurrent deletes). */
export async function folderUsage(root: string): Promise<{ bytes: number; entries: number }> {
  let bytes = 0;
  let entries = 0;
  const stack = [root];
  while (stack.length) {
    const dir = stack.pop()!;
    try {
      for await (const e of Deno.readDir(dir)) {
        entries++;
        const p = `${dir}/${e.name}`;
        if (e.isDirectory) stack.push(p);
        else {
          try {
            bytes += (await Deno.lstat(p)).size;
          } catch {
            // vanished between readDir and lstat
          }
        }
      }
    } catch {
      // folder vanished
    }
  }
  return { bytes, entries };
}
