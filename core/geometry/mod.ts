/**
 * Image grids (mm), LOR sets and ring scanners with span-1 sinograms.
 *
 * @module
 */
export * from "./grid.ts";
export * from "./lors.ts";
export * from "./scanner.ts";
export * from "./affine.ts";
export * from "./tof.ts";
