/**
 * Neighbourhood priors for MAP-EM: `R(x) = ½ Σ_j Σ_{k∈N(j)} w_jk φ(x_j, x_k)` with the quadratic
 * potential `φ = ½ (x_j − x_k)²` or the relative-difference potential (Nuyts et al. 2002)
 * `φ = (x_j − x_k)² / (x_j + x_k + γ |x_j − x_k| + ε)`. The MAP objective is `L(x) − β R(x)`.
 *
 * Weights `w_jk` are inverse distances (in mm, nearest neighbour = 1) over a 4/8 (in-plane) or
 * 6/18/26 (3D) neighbourhood, optionally multiplied by symmetric anatomical weights derived from an
 * MR image on the same grid (Bowsher-like or Gaussian similarity).
 *
 * The EM update uses De Pierro's separable surrogate: for the quadratic prior it is exact (a
 * majoriser: monotone); for RDP the pair curvature is evaluated at the current image, which is a
 * separable quadratic approximation rather than a guaranteed majoriser (no one-step-late division).
 *
 * @module
 */

import type { GpuArray, GpuContext, KernelRecorder } from "../gpu/context.ts";
import { recordSum } from "../gpu/ops.ts";
import { type ImageGrid, imageGrid, voxelCount } from "../geometry/grid.ts";
import { emParams, placeholder } from "../model/kernels.ts";

/** A neighbour offset in voxels and its distance weight. */
export interface NeighbourOffset {
  dx: number;
  dy: number;
  dz: number;
  /** Inverse-distance weight (nearest neighbour = 1). */
  weight: number;
}

/** Supported neighbourhood sizes: 4/8 in-plane, 6/18/26 in 3D. */
export type NeighbourhoodSize = 4 | 8 | 6 | 18 | 26;

/**
 * Neighbour offsets of a neighbourhood with inverse-distance weights (distances in mm, so
 * anisotropic voxels are weighted correctly), listed so that offset `i` and its opposite are
 * both present.
 *
 * @example
 * ```ts
 * import { centredGrid, neighbourhoodOffsets } from "@petrel/petrel";
 * const grid = centredGrid([128, 128, 1], [2, 2, 2]);
 * const offsets = neighbourhoodOffsets(grid, 8); // in-plane: 4 edge and 4 diagonal neighbours
 * offsets.map((o) => o.weight); // 1 for edges, 1/√2 ≈ 0.707 for diagonals
 * ```
 */
export function neighbourhoodOffsets(
  grid: ImageGrid,
  neighbours: NeighbourhoodSize,
): NeighbourOffset[] {
  const threeD = neighbours === 6 || neighbours === 18 || neighbours === 26;
  if (![4, 8, 6, 18, 26].includes(neighbours)) {
    throw new RangeError(`neighbours must be 4, 8 (in-plane) or 6, 18, 26 (3D), got ${neighbours}`);
  }
  const maxNonZero = neighbours === 4 || neighbours === 6
    ? 1
    : neighbours === 18 || neighbours === 8
    ? 2
    : 3;
  const v = grid.voxelSizeMm;
  const out: NeighbourOffset[] = [];
  const dmin = threeD ? Math.min(v[0], v[1], v[2]) : Math.min(v[0], v[1]);
  for (let dz = threeD ? -1 : 0; dz <= (threeD ? 1 : 0); dz++) {
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const nz = (dx !== 0 ? 1 : 0) + (dy !== 0 ? 1 : 0) + (dz !== 0 ? 1 : 0);
        if (nz === 0 || nz > maxNonZero) continue;
        const d = Math.hypot(dx * v[0], dy * v[1], dz * v[2]);
        out.push({ dx, dy, dz, weight: dmin / d });
      }
    }
  }
  return out;
}

/**
 * How anatomical weights are derived from an MR image.
 *
 * @example
 * ```ts
 * import type { AnatomicalWeighting } from "@petrel/petrel";
 * const bowsher: AnatomicalWeighting = { method: "bowsher", keep: 3 }; // 3 of 8 neighbours per voxel
 * const similarity: AnatomicalWeighting = { method: "similarity", sigma: 0.1 }; // σ: 10 % of the MR range
 * ```
 */
export type AnatomicalWeighting =
  | {
    /**
     * Bowsher-like: each voxel keeps the `keep` neighbours most similar in MR intensity; the pair
     * weight is the average of the two voxels' choices (0, ½ or 1), which keeps it symmetric.
     */
    method: "bowsher";
    keep: number;
  }
  | {
    /** Gaussian similarity `exp(−(g_j − g_k)² / (2 (σ · range(g))²))`, symmetric by construction. */
    method: "similarity";
    sigma: number;
  };

function opposite(offsets: readonly NeighbourOffset[], i: number): number {
  const o = offsets[i];
  const j = offsets.findIndex((p) => p.dx === -o.dx && p.dy === -o.dy && p.dz === -o.dz);
  if (j < 0) throw new Error("neighbourhood offsets must come in opposite pairs");
  return j;
}

/**
 * Symmetric anatomical pair weights `[K, nvox]` (entry `k·nvox + j` weighs voxel j and its
 * neighbour `offsets[k]`) from an MR image on the same grid.
 *
 * @example
 * ```ts
 * import { anatomicalWeights, defaultContext, neighbourhoodOffsets, quadraticPrior, readImage } from "@petrel/petrel";
 * const { data: mr, grid } = await readImage("in/t1_on_pet_grid.nii"); // MR resampled to the PET grid
 * const offsets = neighbourhoodOffsets(grid, 8);
 * // Bowsher-like: each voxel keeps its 3 most MR-similar neighbours
 * const anatomical = anatomicalWeights(mr, grid, { offsets, weighting: { method: "bowsher", keep: 3 } });
 * const prior = quadraticPrior(await defaultContext(), grid, { beta: 1, neighbours: 8, anatomical });
 * ```
 */
export function anatomicalWeights(
  mr: ArrayLike<number>,
  grid: ImageGrid,
  options: { offsets: readonly NeighbourOffset[]; weighting: AnatomicalWeighting },
): Float32Array {
  const g = imageGrid(grid);
  const n = voxelCount(g);
  if (mr.length !== n) {
    throw new RangeError(`anatomicalWeights: MR image has ${mr.length} voxels, expected ${n}`);
  }
  const offs = options.offsets;
  const K = offs.length;
  const [nx, ny, nz] = g.shape;
  const nb = (j: number, k: number): number => {
    const i = j % nx;
    const jy = Math.floor(j / nx) % ny;
    const kz = Math.floor(j / (nx * ny));
    const x = i + offs[k].dx;
    const y = jy + offs[k].dy;
    const z = kz + offs[k].dz;
    if (x < 0 || y < 0 || z < 0 || x >= nx || y >= ny || z >= nz) return -1;
    return x + nx * (y + ny * z);
  };
  const out = new Float32Array(K * n);
  const w = options.weighting;
  if (w.method === "similarity") {
    if (!(w.sigma > 0)) throw new RangeError(`similarity sigma must be > 0, got ${w.sigma}`);
    let lo = Infinity;
    let hi = -Infinity;
    for (let j = 0; j < n; j++) {
      lo = Math.min(lo, mr[j]);
      hi = Math.max(hi, mr[j]);
    }
    const s = w.sigma * Math.max(hi - lo, 1e-30);
    for (let j = 0; j < n; j++) {
      for (let k = 0; k < K; k++) {
        const q = nb(j, k);
        if (q >= 0) out[k * n + j] = Math.exp(-((mr[j] - mr[q]) ** 2) / (2 * s * s));
      }
    }
    return out;
  }
  if (!(Number.isInteger(w.keep) && w.keep >= 1 && w.keep <= K)) {
    throw new RangeError(`Bowsher keep must be an integer in 1 … ${K}, got ${w.keep}`);
  }
  const chosen = new Uint8Array(K * n);
  const cand: { k: number; d: number }[] = [];
  for (let j = 0; j < n; j++) {
    cand.length = 0;
    for (let k = 0; k < K; k++) {
      const q = nb(j, k);
      if (q >= 0) cand.push({ k, d: Math.abs(mr[j] - mr[q]) });
    }
    cand.sort((a, b) => a.d - b.d || a.k - b.k);
    for (let c = 0; c < Math.min(w.keep, cand.length); c++) chosen[cand[c].k * n + j] = 1;
  }
  for (let j = 0; j < n; j++) {
    for (let k = 0; k < K; k++) {
      const q = nb(j, k);
      if (q < 0) continue;
      out[k * n + j] = 0.5 * (chosen[k * n + j] + chosen[opposite(offs, k) * n + q]);
    }
  }
  return out;
}

/** Prior potential. */
export type PriorKind = "quadratic" | "relative-difference";

/**
 * Options of {@linkcode NeighbourhoodPrior}.
 *
 * @example
 * ```ts
 * import { defaultContext, MMR_VOXEL_MM, mmrLike2d, type PriorOptions, relativeDifferencePrior } from "@petrel/petrel";
 * const options: PriorOptions = {
 *   beta: 0.5, // objective L(x) − β R(x)
 *   neighbours: 8, // in-plane: 4 edge + 4 diagonal neighbours
 *   gamma: 2, // RDP edge preservation
 *   epsilon: 1e-3, // RDP denominator offset, image units
 * };
 * const grid = mmrLike2d().imageGrid(128, MMR_VOXEL_MM);
 * const rdp = relativeDifferencePrior(await defaultContext(), grid, options);
 * ```
 */
export interface PriorOptions {
  /** Penalty strength β ≥ 0 (objective `L(x) − β R(x)`). */
  beta: number;
  /** Neighbourhood size (default 8 for single-slice grids, 26 otherwise). */
  neighbours?: NeighbourhoodSize;
  /** Symmetric anatomical pair weights `[K, nvox]` from {@linkcode anatomicalWeights}. */
  anatomical?: Float32Array;
  /** RDP edge-preservation parameter γ ≥ 0 (default 2). */
  gamma?: number;
  /** RDP denominator offset ε > 0 in image units (default 1e-6, absolute). */
  epsilon?: number;
}

/**
 * A quadratic or relative-difference neighbourhood prior on an image grid (usually made with
 * {@linkcode quadraticPrior} or {@linkcode relativeDifferencePrior}).
 *
 * @example
 * ```ts
 * import { centredGrid, defaultContext, NeighbourhoodPrior } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const grid = centredGrid([4, 4, 1], [2, 2, 2]);
 * const prior = new NeighbourhoodPrior(ctx, grid, "relative-difference", { beta: 1, gamma: 2 });
 * const x = ctx.array(grid.shape, Float32Array.from({ length: 16 }, (_, i) => 1 + (i % 4)));
 * const { value, gradient } = await prior.evaluate(x); // R(x) (without β) and ∇R(x)
 * prior.destroy();
 * ```
 */
export class NeighbourhoodPrior {
  /** Penalty strength β. */
  readonly beta: number;
  /** γ (RDP). */
  readonly gamma: number;
  /** ε (RDP). */
  readonly epsilon: number;
  /** Neighbour offsets and distance weights. */
  readonly offsets: readonly NeighbourOffset[];
  readonly grid: ImageGrid;
  #offsets: GPUBuffer;
  #anat: GpuArray | null;

  constructor(
    readonly ctx: GpuContext,
    grid: ImageGrid,
    readonly kind: PriorKind,
    options: PriorOptions,
  ) {
    this.grid = imageGrid(grid);
    if (!(options.beta >= 0) || !Number.isFinite(options.beta)) {
      throw new RangeError(`prior beta must be a finite number ≥ 0, got ${options.beta}`);
    }
    if (kind !== "quadratic" && kind !== "relative-difference") {
      throw new TypeError(`prior kind must be "quadratic" or "relative-difference", got ${kind}`);
    }
    this.beta = options.beta;
    this.gamma = options.gamma ?? 2;
    this.epsilon = options.epsilon ?? 1e-6;
    if (!(this.gamma >= 0)) throw new RangeError(`RDP gamma must be ≥ 0, got ${this.gamma}`);
    if (!(this.epsilon > 0)) throw new RangeError(`RDP epsilon must be > 0, got ${this.epsilon}`);
    const neighbours = options.neighbours ?? (this.grid.shape[2] === 1 ? 8 : 26);
    this.offsets = neighbourhoodOffsets(this.grid, neighbours);
    const flat = new Float32Array(4 * 26); // the kernel's uniform array holds 26 neighbours
    this.offsets.forEach((o, i) => flat.set([o.dx, o.dy, o.dz, o.weight], 4 * i));
    this.#offsets = ctx.uniform(flat);
    const n = voxelCount(this.grid);
    if (options.anatomical && options.anatomical.length !== n * this.offsets.length) {
      throw new RangeError(
        `anatomical weights have ${options.anatomical.length} values, expected ${this.offsets.length} neighbours × ${n} voxels`,
      );
    }
    this.#anat = options.anatomical
      ? ctx.array([options.anatomical.length], options.anatomical)
      : null;
  }

  #params(betaScale: number): GPUBuffer {
    const g = this.grid.shape;
    return emParams(this.ctx, {
      n: voxelCount(this.grid),
      flags: this.#anat ? 4 : 0,
      mode: this.kind === "quadratic" ? 0 : 1,
      beta: this.beta * betaScale,
      gamma: this.gamma,
      eps: this.epsilon,
      dims: [g[0], g[1], g[2], this.offsets.length],
    });
  }

  #bindings(x: GpuArray, a: GpuArray, b: GpuArray): (GpuArray | GPUBuffer | null)[] {
    const n = voxelCount(this.grid);
    for (const arr of [x, a, b]) {
      if (arr.length !== n) {
        throw new RangeError(`prior: image of ${arr.length} voxels, expected ${n}`);
      }
    }
    return [
      ...Array(10).fill(null),
      this.#offsets,
      this.#anat ?? placeholder(this.ctx), // statically used by the kernel: always bound
      x,
      a,
      b,
    ];
  }

  /**
   * Records De Pierro surrogate coefficients at image `x`: `a = β' κ`, `bz = β' (κ x − ∇R)` with
   * `β' = β · betaScale` and `κ_j = 2 Σ_k w_jk ∂²φ/∂x_j²` (see `shaders/em.wgsl`).
   */
  recordCoefficients(
    rec: KernelRecorder,
    x: GpuArray,
    out: { a: GpuArray; bz: GpuArray },
    betaScale = 1,
  ): void {
    rec.dispatch1d(
      "em",
      "prior_coeffs",
      [this.#params(betaScale), ...this.#bindings(x, out.a, out.bz)],
      x.length,
    );
  }

  /** Records `grad = ∇R(x)` and `density` with `Σ density = R(x)` (both without β). */
  recordEvaluate(
    rec: KernelRecorder,
    x: GpuArray,
    out: { grad: GpuArray; density: GpuArray },
  ): void {
    rec.dispatch1d(
      "em",
      "prior_eval",
      [this.#params(1), ...this.#bindings(x, out.grad, out.density)],
      x.length,
    );
  }

  /** `R(x)` (without β) and `∇R(x)`, read back. */
  async evaluate(x: GpuArray): Promise<{ value: number; gradient: Float32Array }> {
    const grad = this.ctx.array([x.length]);
    const dens = this.ctx.array([x.length]);
    const total = this.ctx.array([1]);
    this.ctx.run((rec) => {
      this.recordEvaluate(rec, x, { grad, density: dens });
      recordSum(rec, total, dens);
    });
    const [g, v] = await Promise.all([grad.read(), total.read()]);
    for (const a of [grad, dens, total]) a.destroy();
    return { value: v[0], gradient: g };
  }

  /** Frees the device arrays. */
  destroy(): void {
    this.#anat?.destroy(); // the offsets uniform is owned by the context's cache
  }
}

/**
 * A quadratic neighbourhood prior (Gaussian MRF) with strength `beta`.
 *
 * @example
 * ```ts
 * import { defaultContext, mapEm, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, PoissonLikelihood, quadraticPrior, ringForwardModel, simulateCounts } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const nema = nemaIecPhantom(grid);
 * const model = ringForwardModel(ctx, scanner, { grid, muMap: nema.mu, subsets: 4 });
 * const activity = ctx.array(grid.shape, nema.activity);
 * const { counts } = await simulateCounts(model, activity, { trueCounts: 1e6, seed: 1 });
 * const likelihood = new PoissonLikelihood(model, counts);
 * const q = quadraticPrior(ctx, grid, { beta: 0.5 });
 * const x = await mapEm(likelihood, q, { iterations: 10 });
 * ```
 */
export function quadraticPrior(
  ctx: GpuContext,
  grid: ImageGrid,
  options: PriorOptions,
): NeighbourhoodPrior {
  return new NeighbourhoodPrior(ctx, grid, "quadratic", options);
}

/**
 * A relative-difference prior (Nuyts et al. 2002) with strength `beta`, γ and ε.
 *
 * @example
 * ```ts
 * import { defaultContext, mapEm, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, PoissonLikelihood, relativeDifferencePrior, ringForwardModel, simulateCounts } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const nema = nemaIecPhantom(grid);
 * const model = ringForwardModel(ctx, scanner, { grid, muMap: nema.mu, subsets: 4 });
 * const activity = ctx.array(grid.shape, nema.activity);
 * const { counts } = await simulateCounts(model, activity, { trueCounts: 1e6, seed: 1 });
 * const likelihood = new PoissonLikelihood(model, counts);
 * const rdp = relativeDifferencePrior(ctx, grid, { beta: 1, gamma: 2 });
 * const x = await mapEm(likelihood, rdp, { iterations: 10 });
 * rdp.destroy();
 * ```
 */
export function relativeDifferencePrior(
  ctx: GpuContext,
  grid: ImageGrid,
  options: PriorOptions,
): NeighbourhoodPrior {
  return new NeighbourhoodPrior(ctx, grid, "relative-difference", options);
}

/**
 * Plain-TypeScript (float64) value of `R(x)` for tests: the independent reference of the kernel.
 *
 * @example
 * ```ts
 * import { centredGrid, neighbourhoodOffsets, priorValueReference } from "@petrel/petrel";
 * const grid = centredGrid([2, 1, 1], [2, 2, 2]);
 * const offsets = neighbourhoodOffsets(grid, 4);
 * // one pair (x₀, x₁) = (1, 3), counted from both sides: ½ · 2 · ½ (1 − 3)² = 2
 * priorValueReference([1, 3], grid, { kind: "quadratic", offsets }); // 2
 * ```
 */
export function priorValueReference(
  x: ArrayLike<number>,
  grid: ImageGrid,
  options: {
    kind: PriorKind;
    offsets: readonly NeighbourOffset[];
    anatomical?: ArrayLike<number>;
    gamma?: number;
    epsilon?: number;
  },
): number {
  const [nx, ny, nz] = grid.shape;
  const n = nx * ny * nz;
  const gamma = options.gamma ?? 2;
  const eps = options.epsilon ?? 1e-6;
  let r = 0;
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let i = 0; i < nx; i++) {
        const j = i + nx * (y + ny * z);
        options.offsets.forEach((o, k) => {
          const a = i + o.dx;
          const b = y + o.dy;
          const c = z + o.dz;
          if (a < 0 || b < 0 || c < 0 || a >= nx || b >= ny || c >= nz) return;
          const q = a + nx * (b + ny * c);
          const w = o.weight * (options.anatomical ? options.anatomical[k * n + j] : 1);
          const t = x[j] - x[q];
          const phi = options.kind === "quadratic"
            ? 0.5 * t * t
            : (t * t) / (x[j] + x[q] + gamma * Math.abs(t) + eps);
          r += 0.5 * w * phi;
        });
      }
    }
  }
  return r;
}
