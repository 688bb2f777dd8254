/**
 * Reconstruction algorithms on the device: MLEM, OSEM, MAP-EM (De Pierro) with quadratic and
 * relative-difference neighbourhood priors (optionally MR-guided), the HQS penalised-EM x-step,
 * Gaussian post-filtering and per-iteration callbacks.
 *
 * @module
 */
export * from "./algorithms.ts";
export * from "./callbacks.ts";
export * from "./filter.ts";
export * from "./priors.ts";
export * from "./xstep.ts";
