/**
 * Exit codes of the `petrel` CLI.
 *
 * @module
 */

import type { SandboxResult } from "../core/runtime/sandbox.ts";

/** What each exit status means (also listed in docs/cli.md). */
export const EXIT = {
  /** Success (for `verify`: bit-identical or within `--rtol`). */
  ok: 0,
  /** Anything else: the recipe failed, outputs differ, the child crashed. */
  other: 1,
  /** Usage: unknown command/option, malformed `--set`, invalid recipe parameters. */
  usage: 2,
  /** Input: missing or unreadable recipe/input/model, malformed file, unusable output folder. */
  input: 3,
  /** The recipe reached for a permission it does not have. */
  permission: 4,
  /** A limit was hit: wall-clock timeout, memory cap or output quota. */
  limit: 5,
  /** Interrupted by Ctrl-C (the run was cancelled). */
  interrupted: 130,
} as const;

/** Exit status for a sandboxed run. */
export function exitCodeFor(r: SandboxResult): number {
  if (r.ok) return EXIT.ok;
  switch (r.reason) {
    case "permission":
      return EXIT.permission;
    case "timeout":
    case "memory":
    case "processes":
    case "output-quota":
      return EXIT.limit;
    case "cancelled":
      return EXIT.interrupted;
  }
  if (r.errorKind === "params") return EXIT.usage;
  if (r.errorKind === "input") return EXIT.input;
  return EXIT.other;
}
