/**
 * Linear operators: Joseph projector (WGSL), Gaussian resolution model, operator algebra and the
 * plain-TypeScript reference projector.
 *
 * @module
 */
export * from "./operator.ts";
export * from "./joseph.ts";
export * from "./ring.ts";
export * from "./ring_oblique.ts";
export * from "./gaussian.ts";
export * from "./reference.ts";
export * from "./tof.ts";
