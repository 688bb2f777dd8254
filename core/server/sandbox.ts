/**
 * The sandbox the server runs jobs through: `runSandboxed` of `core/runtime/sandbox.ts` (a child
 * `deno run` per job with least permissions, wall-clock limit, memory cap, output quota).
 *
 * @module
 */
export { describeRecipe, runSandboxed } from "../runtime/sandbox.ts";
export type { RecipeDescription, SandboxOptions, SandboxResult } from "../runtime/sandbox.ts";
