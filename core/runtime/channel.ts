/**
 * The harness channel: a file in a folder private to the runner, through which the harness
 * sends its messages (adapter, params, progress, done, error) as JSON lines. The child is granted
 * write access to that one file; the harness opens it before the recipe is imported and then
 * revokes the permission, so the recipe can neither open nor name a writable channel. Its stdout
 * and stderr are plain log lines, whatever they contain.
 *
 * @module
 */

import { decodeMessage, type HarnessMessage } from "./protocol.ts";

/** Longest channel line the runner accepts (longer ones are dropped). */
const MAX_MESSAGE = 1 << 20;

/** The runner's end of a channel. */
export class ChannelReader {
  readonly dir: string;
  readonly path: string;
  #offset = 0;
  #buf = "";
  #decoder = new TextDecoder();
  #reading: Promise<void> | null = null;

  private constructor(dir: string) {
    this.dir = dir;
    this.path = `${dir}/channel`;
  }

  /** Creates the private folder (mode 0700) and the empty channel file. */
  static async create(): Promise<ChannelReader> {
    const dir = await Deno.makeTempDir({ prefix: "petrel-run-" });
    await Deno.chmod(dir, 0o700);
    const c = new ChannelReader(dir);
    await Deno.writeFile(c.path, new Uint8Array(), { mode: 0o600 });
    return c;
  }

  /** Reads what was appended since the last call and hands each complete message to `on`. */
  read(on: (msg: HarnessMessage) => void): Promise<void> {
    // One read at a time: the watchdog polls, and the runner drains after the exit.
    const next = (this.#reading ?? Promise.resolve()).then(() => this.#readOnce(on));
    this.#reading = next.catch(() => {});
    return next;
  }

  async #readOnce(on: (msg: HarnessMessage) => void): Promise<void> {
    let f: Deno.FsFile;
    try {
      f = await Deno.open(this.path, { read: true });
    } catch {
      return;
    }
    try {
      await f.seek(this.#offset, Deno.SeekMode.Start);
      const chunk = new Uint8Array(64 << 10);
      while (true) {
        const n = await f.read(chunk);
        if (n === null || n === 0) break;
        this.#offset += n;
        this.#buf += this.#decoder.decode(chunk.subarray(0, n), { stream: true });
        let i;
        while ((i = this.#buf.indexOf("\n")) >= 0) {
          const line = this.#buf.slice(0, i);
          this.#buf = this.#buf.slice(i + 1);
          const msg = decodeMessage(line);
          if (msg) on(msg);
        }
        if (this.#buf.length > MAX_MESSAGE) this.#buf = "";
      }
    } finally {
      f.close();
    }
  }

  /** Removes the private folder. */
  async close(): Promise<void> {
    await this.#reading;
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
