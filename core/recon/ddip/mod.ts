/**
 * DDIP-HQS (Hashimoto & Gong, arXiv 2507.15078; `docs/ddip.md`): the constants and presets
 * (`config.ts`), the automatic intensity scale (`scale.ts`), one 3-slice stack (`stack.ts`),
 * whole volumes from overlapping stacks (`volume.ts`) and the data-disagreement lever
 * (`residual.ts`). The only recon modules that use the score
 * prior of `core/diffusion`.
 *
 * @module
 */
export * from "./config.ts";
export * from "./scale.ts";
export * from "./stack.ts";
export * from "./volume.ts";
export * from "./joint.ts";
export * from "./residual.ts";
