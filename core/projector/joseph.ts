/**
 * Joseph's ray-driven projector in WGSL (`shaders/joseph.wgsl`): forward and exact adjoint for
 * any LOR set and image grid, bit-reproducible on a given adapter.
 *
 * @module
 */

import type { GpuArray, GpuContext, KernelRecorder } from "../gpu/context.ts";
import { WORKGROUP_SIZE } from "../gpu/context.ts";
import { type ImageGrid, imageGrid } from "../geometry/grid.ts";
import type { LorSet } from "../geometry/lors.ts";
import { checkShape, type LinearOperator } from "./operator.ts";
import { FixedPointBack } from "./fixed_point.ts";
import { chunkBuffer } from "./chunk.ts";

/** Options of {@linkcode JosephProjector}. */
export interface JosephOptions {
  /**
   * Maximum LORs per dispatch; by default as many as the adapter's storage-binding limit allows.
   * Exposed so tests can force chunking on small problems.
   */
  maxLorsPerChunk?: number;
  /**
   * Mirror single z-slices in uniform buffers for the forward projection of in-plane rays
   * (default: on fallback/CPU adapters, where uniform loads are ~10× cheaper; needs ≤ 4 slices of
   * ≤ 16384 voxels).
   */
  uniformSlices?: boolean;
}

interface Chunk {
  first: number;
  count: number;
  endpoints: GPUBuffer;
  params: GPUBuffer;
}

/**
 * Joseph projector `P`: image on `grid` → line integrals (mm · activity) along `lors`.
 *
 * The forward projection is a gather (one invocation per LOR). Back projection accumulates in
 * 64-bit fixed point with integer atomics: its result does not depend on thread scheduling. One
 * fixed-point unit is about 2^-30 of the largest single contribution max|y| · step.
 *
 * @example
 * ```ts
 * import { adjointToHost, applyToHost, defaultContext, JosephProjector, MMR_VOXEL_MM, mmrLike2d } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const P = new JosephProjector(ctx, scanner.lors(), scanner.imageGrid(128, MMR_VOXEL_MM));
 * const sino = await applyToHost(ctx, P, new Float32Array(128 * 128).fill(1));
 * const back = await adjointToHost(ctx, P, sino);
 * ```
 */
export class JosephProjector implements LinearOperator {
  readonly inShape: readonly number[];
  readonly outShape: readonly number[];
  readonly grid: ImageGrid;
  readonly lorCount: number;
  #chunks: Chunk[] = [];
  #back: FixedPointBack;
  #resolveParams: GPUBuffer;
  /** Uniform mirrors of the image's z-slices (CPU adapters, ≤ 4 slices of ≤ 16384 voxels). */
  #slices: GPUBuffer[] = [];

  constructor(
    readonly ctx: GpuContext,
    lors: LorSet,
    grid: ImageGrid,
    options: JosephOptions = {},
  ) {
    this.grid = imageGrid(grid);
    if (lors.endpoints.length !== 6 * lors.count) {
      throw new RangeError(
        `JosephProjector: LOR set says ${lors.count} LORs but holds ${lors.endpoints.length / 6}`,
      );
    }
    for (let i = 0; i < lors.endpoints.length; i++) {
      if (!Number.isFinite(lors.endpoints[i])) {
        throw new RangeError(
          `JosephProjector: LOR ${
            Math.floor(i / 6)
          } has a non-finite coordinate; all LOR endpoints must be finite mm`,
        );
      }
    }
    this.lorCount = lors.count;
    this.inShape = [...this.grid.shape];
    this.outShape = [...lors.shape];
    const limits = ctx.adapter.limits;
    // Chunks respect the binding limit for endpoints (24 B/LOR) and keep projection-data offsets
    // aligned to minStorageBufferOffsetAlignment (multiples of 64 LORs × 4 B = 256 B).
    const align = Math.max(64, limits.minStorageBufferOffsetAlignment / 4);
    let perChunk = Math.floor(limits.maxStorageBufferBindingSize / 24);
    perChunk = Math.min(perChunk, WORKGROUP_SIZE * limits.maxComputeWorkgroupsPerDimension * 16);
    if (options.maxLorsPerChunk) perChunk = Math.min(perChunk, options.maxLorsPerChunk);
    perChunk = Math.max(align, Math.floor(perChunk / align) * align);
    // The largest weight of one plane step (voxel / |cos| ≤ √3 · voxel) fixes the fixed-point
    // exponent on the device together with max |y|.
    const log2Step = Math.log2(Math.sqrt(3) * Math.max(...this.grid.voxelSizeMm));
    const [nx, ny, nz] = this.grid.shape;
    if ((options.uniformSlices ?? ctx.adapter.isFallback) && nz <= 4 && nx * ny <= 16384) {
      for (let k = 0; k < nz; k++) {
        this.#slices.push(ctx.device.createBuffer({
          size: 65536,
          usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
        }));
      }
    }
    for (let first = 0; first < lors.count; first += perChunk) {
      const count = Math.min(perChunk, lors.count - first);
      const endpoints = chunkBuffer(ctx, lors.endpoints, first, count, 6);
      this.#chunks.push({
        first,
        count,
        endpoints,
        params: this.#params(count, log2Step),
      });
    }
    const nvox = this.grid.shape[0] * this.grid.shape[1] * this.grid.shape[2];
    this.#back = new FixedPointBack(ctx, nvox);
    this.#resolveParams = this.#params(0, log2Step);
  }

  #params(count: number, log2Step: number): GPUBuffer {
    const g = this.grid;
    const buf = new ArrayBuffer(64);
    new Float32Array(buf, 0, 8).set([...g.originMm, 0, ...g.voxelSizeMm, log2Step]);
    new Uint32Array(buf, 32, 8).set([...g.shape, count, this.#slices.length > 0 ? 1 : 0, 0, 0, 0]);
    return this.ctx.uniform(new Uint32Array(buf));
  }

  #dummy: GPUBuffer | null = null;
  #dummySlice(): GPUBuffer {
    this.#dummy ??= this.ctx.device.createBuffer({ size: 65536, usage: GPUBufferUsage.UNIFORM });
    return this.#dummy;
  }

  /** True when in-plane rays read the image from uniform-buffer slice mirrors. */
  get usesUniformSlices(): boolean {
    return this.#slices.length > 0;
  }

  /** Number of dispatch chunks the LORs were split into. */
  get chunkCount(): number {
    return this.#chunks.length;
  }

  /** Records `out = P x`. */
  apply(rec: KernelRecorder, x: GpuArray, out: GpuArray): void {
    checkShape("JosephProjector.apply input", x, this.inShape);
    checkShape("JosephProjector.apply output", out, this.outShape);
    const sliceBytes = this.grid.shape[0] * this.grid.shape[1] * 4;
    this.#slices.forEach((buf, k) => rec.copyRange(x.buffer, k * sliceBytes, buf, 0, sliceBytes));
    // Unused slots still need a binding: repeat slice 0 (or a dummy) there.
    const slots = [0, 1, 2, 3].map((k) => this.#slices[k] ?? this.#slices[0] ?? this.#dummySlice());
    for (const c of this.#chunks) {
      rec.dispatch1d("joseph", "forward", [
        c.params,
        c.endpoints,
        null,
        { buffer: out.buffer, offset: c.first * 4, size: Math.max(4, c.count * 4) },
        null,
        null,
        null,
        x,
        null,
        null,
        null,
        ...slots,
      ], c.count);
    }
  }

  /** Records `out = Pᵀ y`. */
  adjoint(rec: KernelRecorder, y: GpuArray, out: GpuArray): void {
    checkShape("JosephProjector.adjoint input", y, this.outShape);
    checkShape("JosephProjector.adjoint output", out, this.inShape);
    const back = this.#back;
    back.record(rec, "joseph", this.#resolveParams, y, out, () => {
      for (const c of this.#chunks) {
        rec.dispatch1d("joseph", "back", [
          c.params,
          c.endpoints,
          null,
          null,
          { buffer: y.buffer, offset: c.first * 4, size: Math.max(4, c.count * 4) },
          back.accum,
          back.maxBits,
        ], c.count);
      }
    });
  }

  /** Frees the device buffers. */
  destroy(): void {
    for (const c of this.#chunks) c.endpoints.destroy();
    this.#back.destroy();
    for (const b of this.#slices) b.destroy();
    this.#dummy?.destroy();
  }
}
