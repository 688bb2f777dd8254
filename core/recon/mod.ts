/**
 * Reconstruction algorithms on the device: MLEM, OSEM, MAP-EM (De Pierro) with quadratic and
 * relative-difference neighbourhood priors (optionally MR-guided), the HQS penalised-EM x-step,
 * Gaussian post-filtering, per-iteration callbacks, and DDIP-HQS with its baselines (the only
 * recon modules that use the score prior in `core/diffusion`).
 *
 * @module
 */
export * from "./algorithms.ts";
export * from "./callbacks.ts";
export * from "./filter.ts";
export * from "./priors.ts";
export * from "./xstep.ts";
export * from "./sweeps.ts";
export * from "./ddip/mod.ts";
