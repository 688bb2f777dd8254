/**
 * The sandbox the server runs jobs through. TEMPORARY: re-exports the server's own stand-in until
 * `core/runtime/sandbox.ts` lands, then re-exports that.
 *
 * @module
 */
export { runSandboxed } from "./_sandbox_temp.ts";
export type { SandboxOptions, SandboxResult } from "./_sandbox_temp.ts";
