/**
 * petrel: scriptable PET reconstruction on WebGPU.
 *
 * The public API, by concept (each re-exported from `core/<area>/mod.ts`):
 * - `gpu`: {@linkcode GpuContext}, device arrays, one-submit kernel recording;
 * - `geometry`: image grids in mm, LOR sets, ring scanners and their sinograms;
 * - `projector`: Joseph projector, Gaussian resolution model, operator algebra.
 *
 * @example
 * ```ts
 * import { defaultContext, JosephProjector, mmrLike2d, MMR_VOXEL_MM, applyToHost } from "./mod.ts";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const P = new JosephProjector(ctx, scanner.lors(), scanner.imageGrid(128, MMR_VOXEL_MM));
 * const sinogram = await applyToHost(ctx, P, new Float32Array(128 * 128).fill(1));
 * ```
 *
 * @module
 */
export * from "./core/gpu/mod.ts";
export * from "./core/geometry/mod.ts";
export * from "./core/projector/mod.ts";
