/**
 * petrel: scriptable PET reconstruction on WebGPU.
 *
 * The public API, by concept (each re-exported from `core/<area>/mod.ts`; layering in
 * `docs/ARCHITECTURE.md`):
 * - `random`, `stats`: the seeded RNG with `subSeed` streams, and `percentile` (leaves);
 * - `gpu`: {@linkcode GpuContext}, device arrays, one-submit kernel recording;
 * - `geometry`: image grids in mm, LOR sets, ring scanners and their sinograms;
 * - `projector`: Joseph projector, Gaussian resolution model, operator algebra;
 * - `model`: the PET forward model `ybar = m ⊙ A x + a`, Poisson likelihood, data simulation;
 * - `recon`: MLEM, OSEM, MAP-EM (quadratic, relative difference), the HQS x-step, DDIP-HQS;
 * - `diffusion`: the ONNX score prior on onnxruntime-web, LoRA state, AdamW, samplers;
 * - `sim`: phantoms, BrainWeb multi-tracer PET/MR simulation, training-set builder, the fine simulator;
 * - `io`: NIfTI, npy, sinograms with JSON sidecars, STIR Interfile, PNG montages;
 * - `metrics`: PSNR, SSIM, NRMSE, ROI statistics, contrast recovery, NEMA IEC;
 * - `runtime`: recipes, sandboxed runs with least permissions, provenance manifests.
 *
 * @example
 * ```ts
 * import { applyToHost, defaultContext, JosephProjector, MMR_VOXEL_MM, mmrLike2d } from "./mod.ts";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const P = new JosephProjector(ctx, scanner.lors(), scanner.imageGrid(128, MMR_VOXEL_MM));
 * const sinogram = await applyToHost(ctx, P, new Float32Array(128 * 128).fill(1));
 * ```
 *
 * @module
 */
export * from "./core/random.ts";
export * from "./core/stats.ts";
export * from "./core/gpu/mod.ts";
export * from "./core/geometry/mod.ts";
export * from "./core/projector/mod.ts";
export * from "./core/model/mod.ts";
export * from "./core/recon/mod.ts";
export * from "./core/diffusion/mod.ts";
export * from "./core/sim/mod.ts";
export * from "./core/io/mod.ts";
export * from "./core/metrics/mod.ts";
export * from "./core/runtime/mod.ts";
