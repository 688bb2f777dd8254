/**
 * Simulation: BrainWeb-style label volumes, multi-tracer brain PET/MR studies on a
 * reconstruction grid (activity, T1-like MR, μ-map, label and region masks), the procedural brain
 * phantom, NEMA IEC and Derenzo phantoms, count levels, and the 2.5D stacks dataset builder.
 *
 * @module
 */
export * from "./labels.ts";
export * from "./field.ts";
export * from "./downsample.ts";
export * from "./tracers.ts";
export * from "./simulate.ts";
export * from "./phantom_brain.ts";
export * from "./phantoms.ts";
export * from "./counts.ts";
export * from "./dataset.ts";
export * from "./minc1.ts";
export * from "./brainweb.ts";
export * from "./fine.ts";
