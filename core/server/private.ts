/**
 * File modes of the server's own data: the data folder and job folders are 0700 and the SQLite
 * database (with the `-wal`, `-shm` and `-journal` files SQLite creates beside it) 0600, so other
 * local users can read neither jobs nor the queue, whatever the umask.
 *
 * @module
 */

/** Mode of folders only the server's user may enter. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of files only the server's user may read. */
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Creates `path` (and missing parents) as 0700 and sets 0700 on it if it already existed.
 *
 * @example
 * ```ts
 * await privateDir("/srv/petrel/data/jobs");
 * ```
 */
export async function privateDir(path: string): Promise<void> {
  await Deno.mkdir(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  await Deno.chmod(path, PRIVATE_DIR_MODE);
}

/**
 * Makes an SQLite database file private before and after it is opened: creates it empty with
 * 0600 when absent (SQLite gives the `-wal`/`-shm` files the database's mode) and sets 0600 on
 * the database and its companion files that exist (repairing databases made by older versions).
 *
 * @example
 * ```ts
 * privateDatabaseFiles("/srv/petrel/data/petrel.db");
 * ```
 */
export function privateDatabaseFiles(path: string): void {
  const f = Deno.openSync(path, { create: true, write: true, mode: PRIVATE_FILE_MODE });
  f.close();
  for (const p of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) {
    try {
      Deno.chmodSync(p, PRIVATE_FILE_MODE);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
}
