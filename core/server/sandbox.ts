/**
 * The sandbox the server runs jobs through: `runSandboxed` of `core/runtime/sandbox.ts` (a child
 * `deno run` per job with least permissions, wall-clock limit, memory cap, output quota).
 *
 * @module
 */
export { runSandboxed } from "../runtime/sandbox.ts";
export type { SandboxOptions, SandboxResult } from "../runtime/sandbox.ts";
