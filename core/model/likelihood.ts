/**
 * Poisson log-likelihood of measured counts under a {@linkcode ForwardModel}, its gradient and the
 * EM back projection `A_kᵀ(m_k ⊙ y_k / ybar_k)` that every EM-type algorithm is built from.
 *
 * The log-likelihood is `L(x) = Σ_i y_i log ybar_i − ybar_i` (the data-only term `−log y_i!` is
 * dropped). On the device it is summed as `Σ y log(ybar/y) − ybar + y`, which is small near the
 * optimum and therefore precise in float32; the data-only constant `Σ y log y − y` is added on the
 * host in float64 ({@linkcode PoissonLikelihood.constant}). Sums use the deterministic reduction.
 *
 * @module
 */

import type { GpuArray, KernelRecorder } from "../gpu/context.ts";
import { recordSum } from "../gpu/ops.ts";
import type { ForwardModel } from "./forward_model.ts";
import { recordAxpyInPlace, recordEmRatio, recordLogLikelihoodTerms } from "./kernels.ts";

/**
 * The Poisson likelihood of data `y` (split into the model's subsets) under `model`.
 *
 * @example
 * ```ts
 * import { defaultContext, mlem, MMR_VOXEL_MM, mmrLike2d, PoissonLikelihood, readSinogram, ringForwardModel } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const { data: counts, scanner } = await readSinogram("in/prompts.npy"); // measured prompts
 * const model = ringForwardModel(ctx, scanner, { grid: scanner.imageGrid(128, MMR_VOXEL_MM) });
 * const likelihood = new PoissonLikelihood(model, counts);
 * const x = await mlem(likelihood, { iterations: 20 });
 * console.log(await likelihood.logLikelihood(x)); // L(x) = Σ y log ybar − ybar
 * ```
 */
export class PoissonLikelihood {
  /** Per-subset device arrays of the measured counts. */
  readonly data: readonly GpuArray[];
  /** `Σ_i y_i log y_i − y_i` (float64): add it to the device sum to get `L(x)`. */
  readonly constant: number;
  /** Total measured counts. */
  readonly totalCounts: number;
  #terms: GpuArray | null = null;

  /**
   * @param model the forward model (its subsets decide how the data are split)
   * @param counts measured counts for the full data array (non-negative, finite)
   */
  constructor(readonly model: ForwardModel, counts: ArrayLike<number>) {
    if (counts.length !== model.binCount) {
      throw new RangeError(
        `PoissonLikelihood: got ${counts.length} counts, expected one per bin (${model.binCount})`,
      );
    }
    let c = 0;
    let total = 0;
    for (let i = 0; i < counts.length; i++) {
      const y = counts[i];
      if (!(y >= 0) || !Number.isFinite(y)) {
        throw new RangeError(
          `PoissonLikelihood: count ${i} is ${y}; counts must be finite and ≥ 0`,
        );
      }
      if (y > 0) c += y * Math.log(y) - y;
      total += y;
    }
    this.constant = c;
    this.totalCounts = total;
    this.data = model.split(counts);
  }

  /** The ratio `m_k ⊙ y_k / ybar_k` for image `x` (into the model's scratch, returned). */
  #ratio(rec: KernelRecorder, k: number, x: GpuArray): GpuArray {
    const s = this.model.subsets[k];
    const n = s.bins.length;
    const proj = this.model.scratch(n, 0);
    const q = this.model.scratch(n, 1);
    this.model.recordForward(rec, k, x, { proj });
    recordEmRatio(
      rec,
      {
        proj,
        multiplicative: s.multiplicative,
        additive: s.additive,
      },
      this.data[k],
      q,
    );
    return q;
  }

  /** Records `out = A_kᵀ(m_k ⊙ y_k / ybar_k(x))`, the EM back projection of subset `k`. */
  recordEmBackprojection(rec: KernelRecorder, k: number, x: GpuArray, out: GpuArray): void {
    const q = this.#ratio(rec, k, x);
    this.model.subsets[k].op.adjoint(rec, q, out);
  }

  /**
   * Records the EM back projection of all data, `Σ_k A_kᵀ(m_k ⊙ y_k / ybar_k(x))`, into `out`
   * (`tmp`, an image-sized array, is needed when there is more than one subset).
   */
  recordFullEmBackprojection(
    rec: KernelRecorder,
    x: GpuArray,
    out: GpuArray,
    tmp?: GpuArray,
  ): void {
    this.recordEmBackprojection(rec, 0, x, out);
    for (let k = 1; k < this.model.subsetCount; k++) {
      const t = tmp ?? rec.temp(this.model.imageShape);
      this.recordEmBackprojection(rec, k, x, t);
      recordAxpyInPlace(rec, out, t, 1);
    }
  }

  /**
   * Records `out[0] = L(x) − constant` (see the module notes) with a deterministic reduction.
   * Read it back and add {@linkcode PoissonLikelihood.constant} to get `L(x)`.
   */
  recordLogLikelihood(rec: KernelRecorder, x: GpuArray, out: GpuArray): void {
    if (!this.#terms) this.#terms = this.model.ctx.array([this.model.binCount]);
    let offset = 0;
    this.model.subsets.forEach((s, k) => {
      const n = s.bins.length;
      const proj = this.model.scratch(n, 0);
      this.model.recordForward(rec, k, x, { proj });
      recordLogLikelihoodTerms(
        rec,
        { proj, multiplicative: s.multiplicative, additive: s.additive },
        this.data[k],
        { array: this.#terms!, offset },
      );
      offset += n;
    });
    recordSum(rec, out, this.#terms);
  }

  /**
   * Records the gradient `∇L(x) = Σ_k A_kᵀ(m_k ⊙ y_k / ybar_k) − s_k` into `out` (`tmp` as in
   * {@linkcode PoissonLikelihood.recordFullEmBackprojection}).
   */
  recordGradient(rec: KernelRecorder, x: GpuArray, out: GpuArray, tmp?: GpuArray): void {
    this.recordFullEmBackprojection(rec, x, out, tmp);
    recordAxpyInPlace(rec, out, this.model.totalSensitivity(), -1);
  }

  /** `L(x)` read back to the host (one submit). */
  async logLikelihood(x: GpuArray): Promise<number> {
    const out = this.model.ctx.array([1]);
    this.model.ctx.run((rec) => this.recordLogLikelihood(rec, x, out));
    const v = (await out.read())[0];
    out.destroy();
    return v + this.constant;
  }

  /** `∇L(x)` read back to the host (one submit). */
  async gradient(x: GpuArray): Promise<Float32Array> {
    const ctx = this.model.ctx;
    const out = ctx.array(this.model.imageShape);
    ctx.run((rec) => this.recordGradient(rec, x, out));
    const g = await out.read();
    out.destroy();
    return g;
  }

  /** Frees the data arrays. The model is not freed (it may be shared). */
  destroy(): void {
    for (const d of this.data) d.destroy();
    this.#terms?.destroy();
  }
}

/**
 * Plain-TypeScript (float64) Poisson log-likelihood `Σ y log ybar − ybar` of host arrays: the
 * independent reference for tests (−∞ when some ybar ≤ 0 has y > 0).
 *
 * @example
 * ```ts
 * import { poissonLogLikelihood } from "@petrel/petrel";
 * poissonLogLikelihood([2, 0], [2, 3]); // 2 log 2 − 2 − 3 ≈ −3.6137
 * poissonLogLikelihood([1], [0]); // −Infinity: a count where nothing is expected
 * ```
 */
export function poissonLogLikelihood(
  counts: ArrayLike<number>,
  expected: ArrayLike<number>,
): number {
  if (counts.length !== expected.length) {
    throw new RangeError(
      `poissonLogLikelihood: ${counts.length} counts but ${expected.length} expected values`,
    );
  }
  let l = 0;
  for (let i = 0; i < counts.length; i++) {
    const y = counts[i];
    const yb = expected[i];
    if (y > 0) l += yb > 0 ? y * Math.log(yb) - yb : -Infinity;
    else l -= yb;
  }
  return l;
}
