/**
 * Recipes, the permission-limited sandbox runner, provenance manifests and `petrel verify`.
 *
 * @module
 */
export * from "./recipe.ts";
export { type InProcessOptions, type InProcessResult, runRecipeInProcess } from "./context.ts";
export * from "./sandbox.ts";
export * from "./manifest.ts";
export * from "./hash.ts";
export * from "./verify.ts";
export { PROTOCOL_PREFIX } from "./protocol.ts";
export * from "./results.ts";
export { InputProblem } from "./paths.ts";
export { type OutputUsage, scanOutput } from "./quota.ts";
