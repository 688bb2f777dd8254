/**
 * The PET forward model `ybar = m ⊙ (A x) + a` over ordered subsets, the Poisson likelihood (value,
 * gradient, EM back projection), data simulation and the EM-family kernel helpers.
 *
 * @module
 */
export * from "./forward_model.ts";
export * from "./likelihood.ts";
export * from "./simulate.ts";
export * from "./kernels.ts";
export * from "./tof.ts";
export * from "./resolution.ts";
