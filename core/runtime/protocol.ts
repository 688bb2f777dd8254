/**
 * The line protocol between the sandbox runner and its child process: the harness writes
 * structured messages as single lines `PREFIX + JSON` to its private channel (`channel.ts`), a
 * file the recipe cannot write; the child's stdout and stderr are log lines only.
 *
 * The child cannot be trusted, so the runner treats these messages as hints (progress, log,
 * adapter, error kind). Success is decided by the exit status, and outputs are hashed by the
 * runner itself.
 *
 * @module
 */

import type { AdapterReport } from "../gpu/context.ts";

/**
 * Marks a protocol line on the harness channel (ASCII record separator + tag).
 *
 * @example
 * ```ts
 * import { PROTOCOL_PREFIX } from "@petrel/petrel";
 * const line = "\u001epetrel:" + JSON.stringify({ t: "progress", done: 2, total: 4 });
 * line.startsWith(PROTOCOL_PREFIX); // true: a harness message, not a log line
 * ```
 */
export const PROTOCOL_PREFIX = "\u001epetrel:";

/** Kind of failure reported by the harness. */
export type HarnessErrorKind = "permission" | "params" | "input" | "recipe" | "output-quota";

/** Job description the runner sends to the harness on stdin (one JSON document). */
export interface HarnessSpec {
  mode: "run" | "describe";
  recipe: string;
  inputs: string[];
  models: string[];
  outDir: string;
  params: Record<string, unknown>;
  seed: number;
  /** Quota the harness enforces in `writeOutput` (the runner enforces it too). */
  maxOutputBytes: number;
  /** The harness channel (a file only the harness may write; see channel.ts). */
  channel: string;
}

/** A message from the harness. */
export type HarnessMessage =
  | { t: "adapter"; adapter: AdapterReport | null; error?: string; ms: number }
  | { t: "imported"; ms: number }
  | { t: "params"; params: Record<string, unknown> }
  | { t: "describe"; description: string | null; schema: unknown }
  | { t: "progress"; done: number; total: number }
  | { t: "done"; ms: number }
  | { t: "nondeterministic"; paths: string[] }
  | { t: "error"; kind: HarnessErrorKind; message: string; resource?: string };

/**
 * Encodes a message as one protocol line (without the newline); `stringify` lets the harness use
 * the `JSON.stringify` it captured before importing the recipe.
 */
export function encodeMessage(msg: HarnessMessage, stringify = JSON.stringify): string {
  return PROTOCOL_PREFIX + stringify(msg);
}

/** Decodes a protocol line; returns null for plain log lines and malformed messages. */
export function decodeMessage(line: string): HarnessMessage | null {
  if (!line.startsWith(PROTOCOL_PREFIX)) return null;
  try {
    const msg = JSON.parse(line.slice(PROTOCOL_PREFIX.length));
    if (msg && typeof msg === "object" && typeof msg.t === "string") return msg as HarnessMessage;
  } catch {
    // a recipe printing garbage after the prefix: treat as not-a-message
  }
  return null;
}

const PERMISSION_RE = /Requires (\w+) access to "?([^"]*?)"?,? (?:run again|$)/;

/** What a permission error was about. */
export interface PermissionInfo {
  /** Deno permission name: read, write, net, env, run, ffi, sys, import. */
  permission: string;
  /** The resource asked for (path, host:port, variable, command, library, sys call). */
  resource: string;
}

/**
 * Recognises Deno's permission errors (NotCapable / PermissionDenied / module-load TypeErrors),
 * also when wrapped (e.g. core/io's FilePermissionError keeps the original as `cause`).
 */
export function permissionInfo(err: unknown): PermissionInfo | null {
  let wrapped: Error | null = null;
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 6; e = e.cause, depth++) {
    const m = PERMISSION_RE.exec(e.message);
    if (m) return { permission: m[1], resource: m[2] };
    const remote = /A remote specifier was requested: "([^"]+)"/.exec(e.message) ??
      /Could not find a matching package for '([^']+)'/.exec(e.message);
    if (remote) return { permission: "import", resource: remote[1] };
    if (
      !wrapped &&
      (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied ||
        e.name === "FilePermissionError")
    ) wrapped = e;
  }
  return wrapped ? { permission: "unknown", resource: wrapped.message } : null;
}

/** A one-sentence explanation of a denied permission for users. */
export function permissionMessage(info: PermissionInfo): string {
  const what: Record<string, string> = {
    read: `read "${info.resource}"`,
    write: `write "${info.resource}"`,
    net: `open a network connection to ${info.resource}`,
    env: `read the environment variable ${info.resource}`,
    run: `start the program "${info.resource}"`,
    ffi: `load the native library "${info.resource}"`,
    sys: `query system information (${info.resource})`,
    import:
      `import code from ${info.resource} (only petrel and its pinned npm packages can be imported)`,
  };
  const tried = what[info.permission]
    ? `the recipe tried to ${what[info.permission]}`
    : info.resource;
  return `permission denied: ${tried}; a petrel run may only read its inputs, models and petrel itself, and write its output folder`;
}
