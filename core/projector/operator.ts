/**
 * Linear operators on device arrays, and a small algebra (compose, scale, diagonal, adjoint) so
 * that a PET system model reads as written: `A = compose(diagonal(m), P, G)`.
 *
 * @module
 */

import type { GpuArray, GpuContext, KernelRecorder } from "../gpu/context.ts";
import { mul, scale } from "../gpu/ops.ts";

/**
 * A linear map between device arrays, recorded into a command buffer.
 *
 * @example
 * ```ts
 * import { adjointnessTest, defaultContext, type LinearOperator, scale } from "@petrel/petrel";
 * // a custom operator: a global sensitivity factor (self-adjoint), usable wherever petrel takes one
 * const calibration = (shape: readonly number[], factor: number): LinearOperator => ({
 *   inShape: shape,
 *   outShape: shape,
 *   apply: (rec, x, out) => scale(rec, out, x, factor),
 *   adjoint: (rec, y, out) => scale(rec, out, y, factor),
 * });
 * const ctx = await defaultContext();
 * await adjointnessTest(ctx, calibration([128, 128, 1], 0.8)); // relativeError ≈ 0
 * ```
 */
export interface LinearOperator {
  /** Shape of the input (fastest axis first). */
  readonly inShape: readonly number[];
  /** Shape of the output (fastest axis first). */
  readonly outShape: readonly number[];
  /** Records `out = A x`. */
  apply(rec: KernelRecorder, x: GpuArray, out: GpuArray): void;
  /** Records `out = Aᵀ y`. */
  adjoint(rec: KernelRecorder, y: GpuArray, out: GpuArray): void;
  /** Frees device memory the operator owns (not its inputs). */
  destroy?(): void;
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Throws when `arr` does not hold `shape`'s number of elements; names the operator and side.
 *
 * @example
 * ```ts
 * import { checkShape, defaultContext } from "@petrel/petrel";
 * import { throws } from "node:assert/strict";
 * const ctx = await defaultContext();
 * const x = ctx.array([128, 128, 1]);
 * checkShape("MyOperator input", x, [128, 128, 1]); // passes
 * throws(() => checkShape("MyOperator input", x, [64, 64, 1]), RangeError); // names both shapes
 * ```
 */
export function checkShape(
  what: string,
  arr: GpuArray,
  shape: readonly number[],
): void {
  if (arr.length !== size(shape)) {
    throw new RangeError(
      `${what}: array of shape ${
        JSON.stringify(arr.shape)
      } (${arr.length} elements) does not match the expected shape ${JSON.stringify(shape)} (${
        size(shape)
      } elements)`,
    );
  }
}

/**
 * `A₁ ∘ A₂ ∘ … ∘ Aₙ` (Aₙ applied first). Intermediate arrays are allocated once and reused.
 *
 * @example
 * ```ts
 * import { compose, defaultContext, GaussianFilter, JosephProjector, MMR_VOXEL_MM, mmrLike2d } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const P = new JosephProjector(ctx, scanner.lors(), grid);
 * // resolution-modelled projector A = P ∘ G (G: 4 mm FWHM in-plane)
 * const A = compose(ctx, P, new GaussianFilter(ctx, grid, [4, 4, 0]));
 * A.outShape; // [129, 224, 1]
 * ```
 */
export function compose(ctx: GpuContext, ...ops: LinearOperator[]): LinearOperator {
  if (ops.length === 0) throw new RangeError("compose needs at least one operator");
  for (let i = 0; i + 1 < ops.length; i++) {
    if (size(ops[i].inShape) !== size(ops[i + 1].outShape)) {
      throw new RangeError(
        `compose: operator ${i} takes ${JSON.stringify(ops[i].inShape)} but operator ${
          i + 1
        } gives ${JSON.stringify(ops[i + 1].outShape)}`,
      );
    }
  }
  if (ops.length === 1) return ops[0];
  const scratch = ops.slice(1).map((op) => ctx.array(op.outShape));
  return {
    inShape: ops[ops.length - 1].inShape,
    outShape: ops[0].outShape,
    apply(rec, x, out) {
      let cur = x;
      for (let i = ops.length - 1; i >= 0; i--) {
        const dst = i === 0 ? out : scratch[i - 1];
        ops[i].apply(rec, cur, dst);
        cur = dst;
      }
    },
    adjoint(rec, y, out) {
      let cur = y;
      for (let i = 0; i < ops.length; i++) {
        const dst = i === ops.length - 1 ? out : scratch[i];
        ops[i].adjoint(rec, cur, dst);
        cur = dst;
      }
    },
    /** Frees the intermediate arrays (the composed operators keep their own memory). */
    destroy() {
      for (const s of scratch) s.destroy();
    },
  };
}

/**
 * `s · A`.
 *
 * @example
 * ```ts
 * import { defaultContext, JosephProjector, MMR_VOXEL_MM, mmrLike2d, scaled } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const P = new JosephProjector(ctx, scanner.lors(), scanner.imageGrid(128, MMR_VOXEL_MM));
 * const A = scaled(P, 0.1); // e.g. a global calibration factor
 * ```
 */
export function scaled(op: LinearOperator, s: number): LinearOperator {
  return {
    inShape: op.inShape,
    outShape: op.outShape,
    apply(rec, x, out) {
      op.apply(rec, x, out);
      scale(rec, out, out, s);
    },
    adjoint(rec, y, out) {
      op.adjoint(rec, y, out);
      scale(rec, out, out, s);
    },
  };
}

/**
 * `Aᵀ` as an operator of its own.
 *
 * @example
 * ```ts
 * import { applyToHost, defaultContext, JosephProjector, MMR_VOXEL_MM, mmrLike2d, transposed } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const P = new JosephProjector(ctx, scanner.lors(), scanner.imageGrid(128, MMR_VOXEL_MM));
 * const backProject = transposed(P); // sinogram [129, 224, 1] → image [128, 128, 1]
 * const image = await applyToHost(ctx, backProject, new Float32Array(129 * 224).fill(1));
 * ```
 */
export function transposed(op: LinearOperator): LinearOperator {
  return {
    inShape: op.outShape,
    outShape: op.inShape,
    apply: (rec, x, out) => op.adjoint(rec, x, out),
    adjoint: (rec, y, out) => op.apply(rec, y, out),
  };
}

/**
 * Element-wise multiplication by a fixed device array (attenuation, normalisation): self-adjoint.
 *
 * @example
 * ```ts
 * import { compose, defaultContext, diagonal, JosephProjector, MMR_VOXEL_MM, mmrLike2d } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const P = new JosephProjector(ctx, scanner.lors(), scanner.imageGrid(128, MMR_VOXEL_MM));
 * const norm = ctx.array(P.outShape, new Float32Array(scanner.bins).fill(0.9)); // per-bin factors
 * const A = compose(ctx, diagonal(norm), P); // A = diag(m) P
 * ```
 */
export function diagonal(d: GpuArray): LinearOperator {
  return {
    inShape: d.shape,
    outShape: d.shape,
    apply(rec, x, out) {
      mul(rec, out, x, d);
    },
    adjoint(rec, y, out) {
      mul(rec, out, y, d);
    },
  };
}

/**
 * Applies `op` to host data and reads the result back (one submit).
 *
 * @example
 * ```ts
 * import { applyToHost, defaultContext, JosephProjector, MMR_VOXEL_MM, mmrLike2d } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const P = new JosephProjector(ctx, scanner.lors(), scanner.imageGrid(128, MMR_VOXEL_MM));
 * const image = new Float32Array(128 * 128).fill(1);
 * const sinogram = await applyToHost(ctx, P, image); // host in, host out (one submit)
 * ```
 */
export async function applyToHost(
  ctx: GpuContext,
  op: LinearOperator,
  x: Float32Array,
): Promise<Float32Array> {
  const xin = ctx.array(op.inShape, x);
  const out = ctx.array(op.outShape);
  ctx.run((rec) => op.apply(rec, xin, out));
  const r = await out.read();
  xin.destroy();
  out.destroy();
  return r;
}

/**
 * Applies `opᵀ` to host data and reads the result back (one submit).
 *
 * @example
 * ```ts
 * import { adjointToHost, defaultContext, JosephProjector, MMR_VOXEL_MM, mmrLike2d } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const P = new JosephProjector(ctx, scanner.lors(), scanner.imageGrid(128, MMR_VOXEL_MM));
 * // back projection of a flat sinogram: the (unnormalised) sensitivity image
 * const sens = await adjointToHost(ctx, P, new Float32Array(scanner.bins).fill(1));
 * ```
 */
export async function adjointToHost(
  ctx: GpuContext,
  op: LinearOperator,
  y: Float32Array,
): Promise<Float32Array> {
  const yin = ctx.array(op.outShape, y);
  const out = ctx.array(op.inShape);
  ctx.run((rec) => op.adjoint(rec, yin, out));
  const r = await out.read();
  yin.destroy();
  out.destroy();
  return r;
}

/** Result of {@linkcode adjointnessTest}. */
export interface AdjointnessResult {
  /** ⟨A x, y⟩ */
  forward: number;
  /** ⟨x, Aᵀ y⟩ */
  back: number;
  /** |forward − back| / max(|forward|, |back|) */
  relativeError: number;
}

/**
 * Checks ⟨A x, y⟩ = ⟨x, Aᵀ y⟩ for uniform random x, y in [0, 1) drawn from `seed` (inner
 * products accumulated in float64 on the host).
 *
 * @example
 * ```ts
 * import { adjointnessTest, defaultContext, JosephProjector, MMR_VOXEL_MM, mmrLike2d } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const P = new JosephProjector(ctx, scanner.lors(), scanner.imageGrid(128, MMR_VOXEL_MM));
 * const { relativeError } = await adjointnessTest(ctx, P); // ⟨Ax, y⟩ vs ⟨x, Aᵀy⟩ on random vectors
 * console.log(relativeError < 1e-5); // true
 * ```
 */
export async function adjointnessTest(
  ctx: GpuContext,
  op: LinearOperator,
  seed = 1,
): Promise<AdjointnessResult> {
  let s = seed >>> 0 || 1;
  const rand = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
  const x = Float32Array.from({ length: size(op.inShape) }, rand);
  const y = Float32Array.from({ length: size(op.outShape) }, rand);
  const ax = await applyToHost(ctx, op, x);
  const aty = await adjointToHost(ctx, op, y);
  let f = 0;
  let b = 0;
  for (let i = 0; i < y.length; i++) f += ax[i] * y[i];
  for (let i = 0; i < x.length; i++) b += x[i] * aty[i];
  return {
    forward: f,
    back: b,
    relativeError: Math.abs(f - b) / Math.max(Math.abs(f), Math.abs(b), 1e-30),
  };
}
