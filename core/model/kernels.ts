/**
 * Recording helpers for the kernels of `shaders/em.wgsl` (Poisson likelihood, EM and penalised-EM
 * updates, neighbourhood priors). They only record dispatches; nothing is read back.
 *
 * @module
 */

import type { GpuArray, GpuContext, KernelRecorder } from "../gpu/context.ts";

/** Fields of the `Params` uniform block of `shaders/em.wgsl`. */
export interface EmParams {
  /** Number of elements the dispatch covers. */
  n: number;
  /** Bit 0: multiplicative factors bound; bit 1: additive term bound; bit 2: anatomical weights. */
  flags?: number;
  /** Element offset into the output (log-likelihood terms). */
  offset?: number;
  /** Prior kind: 0 quadratic, 1 relative difference. */
  mode?: number;
  /** Penalty or coupling strength. */
  beta?: number;
  /** RDP edge-preservation parameter γ. */
  gamma?: number;
  /** RDP denominator offset ε. */
  eps?: number;
  /** nx, ny, nz, number of neighbours. */
  dims?: readonly [number, number, number, number];
}

/**
 * Packs an {@linkcode EmParams} block into a (content-cached) uniform buffer.
 *
 * @example
 * ```ts
 * import { defaultContext, emParams } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const z = ctx.array([3], Float32Array.of(-1, 0.5, 2));
 * const x = ctx.array([3]);
 * // what recordClampCopy records: the Params block at binding 0, x at 5 and z at 9
 * const params = emParams(ctx, { n: 3 });
 * const bindings = [params, null, null, null, null, x, null, null, null, z];
 * ctx.run((rec) => rec.dispatch1d("em", "clamp_copy", bindings, 3));
 * ```
 */
export function emParams(ctx: GpuContext, p: EmParams): GPUBuffer {
  const buf = new ArrayBuffer(48);
  new Uint32Array(buf, 0, 4).set([p.n, p.flags ?? 0, p.offset ?? 0, p.mode ?? 0]);
  new Float32Array(buf, 16, 4).set([p.beta ?? 0, p.gamma ?? 0, p.eps ?? 0, 0]);
  new Uint32Array(buf, 32, 4).set(p.dims ?? [0, 0, 0, 0]);
  return ctx.uniform(new Uint32Array(buf));
}

const dummies = new WeakMap<GpuContext, GpuArray>();

/**
 * A 4-element placeholder array bound where a kernel's optional input is absent.
 *
 * @example
 * ```ts
 * import { defaultContext, placeholder } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const none = placeholder(ctx); // one per context, shared by every kernel that needs it
 * none === placeholder(ctx); // true
 * ```
 */
export function placeholder(ctx: GpuContext): GpuArray {
  let d = dummies.get(ctx);
  if (!d) {
    d = ctx.array([4]);
    dummies.set(ctx, d);
  }
  return d;
}

function sameLength(what: string, n: number, ...arrays: (GpuArray | null | undefined)[]): void {
  for (const a of arrays) {
    if (a && a.length !== n) {
      throw new RangeError(`${what}: array of ${a.length} elements, expected ${n}`);
    }
  }
}

/** Projection-domain inputs of the forward model of one subset. */
export interface ProjectionTerms {
  /** `A x` */
  proj: GpuArray;
  /** Multiplicative factors `m` (attenuation × normalisation), or null for 1. */
  multiplicative: GpuArray | null;
  /** Additive expected counts `a` (randoms + scatter), or null for 0. */
  additive: GpuArray | null;
}

function projBindings(
  ctx: GpuContext,
  t: ProjectionTerms,
  data: GpuArray | null,
  out: GpuArray,
): { flags: number; bindings: (GpuArray | null)[] } {
  const ph = placeholder(ctx);
  const flags = (t.multiplicative ? 1 : 0) | (t.additive ? 2 : 0);
  return {
    flags,
    // Bindings a kernel does not use statically must be left out (layout "auto").
    bindings: [t.proj, t.multiplicative ?? ph, t.additive ?? ph, data, out],
  };
}

/**
 * Records `out = m ⊙ proj + a`.
 *
 * @example
 * ```ts
 * import { defaultContext, recordExpected } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const proj = ctx.array([3], Float32Array.of(10, 20, 30)); // A x
 * const atten = ctx.array([3], Float32Array.of(0.5, 0.5, 1)); // m
 * const randoms = ctx.array([3], Float32Array.of(1, 1, 1)); // a
 * const ybar = ctx.array([3]);
 * ctx.run((rec) => recordExpected(rec, { proj, multiplicative: atten, additive: randoms }, ybar));
 * console.log(await ybar.read()); // Float32Array [6, 11, 31]
 * ```
 */
export function recordExpected(rec: KernelRecorder, t: ProjectionTerms, out: GpuArray): void {
  const n = t.proj.length;
  sameLength("recordExpected", n, t.multiplicative, t.additive, out);
  const { flags, bindings } = projBindings(rec.ctx, t, null, out);
  rec.dispatch1d("em", "expected", [emParams(rec.ctx, { n, flags }), ...bindings], n);
}

/**
 * Records `out = m ⊙ y / (m ⊙ proj + a)` (0 where y = 0 or the expectation is ≤ 0).
 *
 * @example
 * ```ts
 * import { defaultContext, recordEmRatio } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const proj = ctx.array([3], Float32Array.of(2, 4, 8)); // A x
 * const counts = ctx.array([3], Float32Array.of(4, 0, 8)); // y
 * const ratio = ctx.array([3]);
 * ctx.run((rec) => recordEmRatio(rec, { proj, multiplicative: null, additive: null }, counts, ratio));
 * console.log(await ratio.read()); // Float32Array [2, 0, 1]: back-project it for the EM update
 * ```
 */
export function recordEmRatio(
  rec: KernelRecorder,
  t: ProjectionTerms,
  data: GpuArray,
  out: GpuArray,
): void {
  const n = t.proj.length;
  sameLength("recordEmRatio", n, t.multiplicative, t.additive, data, out);
  const { flags, bindings } = projBindings(rec.ctx, t, data, out);
  rec.dispatch1d("em", "em_ratio", [emParams(rec.ctx, { n, flags }), ...bindings], n);
}

/**
 * Records the per-bin log-likelihood terms `y log(ybar / y) − ybar + y` (y > 0) or `−ybar`
 * (y = 0) into `out[offset …]`.
 *
 * @example
 * ```ts
 * import { defaultContext, recordLogLikelihoodTerms } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const proj = ctx.array([2], Float32Array.of(2, 3)); // ybar (no m, no a)
 * const counts = ctx.array([2], Float32Array.of(2, 0)); // y
 * const terms = ctx.array([2]);
 * const t = { proj, multiplicative: null, additive: null };
 * ctx.run((rec) => recordLogLikelihoodTerms(rec, t, counts, { array: terms, offset: 0 }));
 * console.log(await terms.read()); // Float32Array [0, -3]: sum them with recordSum
 * ```
 */
export function recordLogLikelihoodTerms(
  rec: KernelRecorder,
  t: ProjectionTerms,
  data: GpuArray,
  out: { array: GpuArray; offset: number },
): void {
  const n = t.proj.length;
  sameLength("recordLogLikelihoodTerms", n, t.multiplicative, t.additive, data);
  if (out.offset + n > out.array.length) {
    throw new RangeError(
      `recordLogLikelihoodTerms: ${n} terms at offset ${out.offset} overflow ${out.array.length}`,
    );
  }
  const { flags, bindings } = projBindings(rec.ctx, t, data, out.array);
  rec.dispatch1d(
    "em",
    "loglik_terms",
    [emParams(rec.ctx, { n, flags, offset: out.offset }), ...bindings],
    n,
  );
}

function imageBindings(
  x: GpuArray,
  bp: GpuArray | null,
  sens: GpuArray | null,
  a: GpuArray | null,
  b: GpuArray | null,
): (GpuArray | null)[] {
  // Unused bindings stay null: pipelines use layout "auto", which lists only used bindings.
  return [null, null, null, null, null, x, bp, sens, a, b];
}

/**
 * Records the EM update `x ← x ⊙ bp / s` (0 where s ≤ 0).
 *
 * @example
 * ```ts
 * import { defaultContext, recordEmUpdate } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const x = ctx.array([3], Float32Array.of(1, 1, 1));
 * const bp = ctx.array([3], Float32Array.of(2, 3, 4)); // Aᵀ(m y / ybar)
 * const sens = ctx.array([3], Float32Array.of(2, 1, 0)); // Aᵀ m
 * ctx.run((rec) => recordEmUpdate(rec, x, bp, sens));
 * console.log(await x.read()); // Float32Array [1, 3, 0]
 * ```
 */
export function recordEmUpdate(
  rec: KernelRecorder,
  x: GpuArray,
  bp: GpuArray,
  sens: GpuArray,
): void {
  const n = x.length;
  sameLength("recordEmUpdate", n, bp, sens);
  rec.dispatch1d("em", "em_update", [
    emParams(rec.ctx, { n }),
    ...imageBindings(x, bp, sens, null, null),
  ], n);
}

/**
 * Records the penalised-EM update with per-voxel surrogate coefficients: `x` becomes the
 * maximiser of `c log x − s x − (A/2) x² + Bz x` with `c = x ⊙ bp`.
 *
 * @example
 * ```ts
 * import { defaultContext, penalisedSolve, recordPenalisedUpdate } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const one = (v: number) => ctx.array([1], [v]);
 * const x = one(1);
 * // c = x · bp = 2, s = 1, A = 1, Bz = 0.5 (A and Bz from NeighbourhoodPrior.recordCoefficients)
 * ctx.run((rec) => recordPenalisedUpdate(rec, x, { bp: one(2), sens: one(1), a: one(1), bz: one(0.5) }));
 * console.log((await x.read())[0], penalisedSolve(1, 0.5, 1, 2)); // both ≈ 1.1861
 * ```
 */
export function recordPenalisedUpdate(
  rec: KernelRecorder,
  x: GpuArray,
  terms: { bp: GpuArray; sens: GpuArray; a: GpuArray; bz: GpuArray },
): void {
  const n = x.length;
  sameLength("recordPenalisedUpdate", n, terms.bp, terms.sens, terms.a, terms.bz);
  rec.dispatch1d("em", "pen_update", [
    emParams(rec.ctx, { n }),
    ...imageBindings(x, terms.bp, terms.sens, terms.a, terms.bz),
  ], n);
}

/**
 * Records the HQS x-step update: `x ← ½[(z − s/β) + √((z − s/β)² + 4 x_em s/β)]` with
 * `x_em = x ⊙ bp / s` (evaluated without dividing by s or β).
 *
 * @example
 * ```ts
 * import { defaultContext, recordXStepUpdate } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const one = (v: number) => ctx.array([1], [v]);
 * const x = one(1);
 * // x_em = 1 · 2 / 1 = 2, z = 1, s/β = 1: x ← ½[0 + √(0 + 8)] = √2
 * ctx.run((rec) => recordXStepUpdate(rec, x, { bp: one(2), sens: one(1), z: one(1), beta: 1 }));
 * console.log((await x.read())[0]); // ≈ 1.4142
 * ```
 */
export function recordXStepUpdate(
  rec: KernelRecorder,
  x: GpuArray,
  terms: { bp: GpuArray; sens: GpuArray; z: GpuArray; beta: number },
): void {
  const n = x.length;
  sameLength("recordXStepUpdate", n, terms.bp, terms.sens, terms.z);
  rec.dispatch1d("em", "xstep_update", [
    emParams(rec.ctx, { n, beta: terms.beta }),
    ...imageBindings(x, terms.bp, terms.sens, null, terms.z),
  ], n);
}

/**
 * Records `x ← max(z, 0)`.
 *
 * @example
 * ```ts
 * import { defaultContext, recordClampCopy } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const z = ctx.array([3], Float32Array.of(-1, 0.5, 2)); // e.g. a denoiser's output
 * const x = ctx.array([3]);
 * ctx.run((rec) => recordClampCopy(rec, x, z));
 * console.log(await x.read()); // Float32Array [0, 0.5, 2]
 * ```
 */
export function recordClampCopy(rec: KernelRecorder, x: GpuArray, z: GpuArray): void {
  const n = x.length;
  sameLength("recordClampCopy", n, z);
  rec.dispatch1d("em", "clamp_copy", [
    emParams(rec.ctx, { n }),
    ...imageBindings(x, null, null, null, z),
  ], n);
}

/**
 * Records `x ← x + alpha · y` in place.
 *
 * @example
 * ```ts
 * import { defaultContext, recordAxpyInPlace } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const total = ctx.array([2], Float32Array.of(1, 2)); // e.g. a sum over subsets
 * const part = ctx.array([2], Float32Array.of(10, 20));
 * ctx.run((rec) => recordAxpyInPlace(rec, total, part, 1));
 * console.log(await total.read()); // Float32Array [11, 22]
 * ```
 */
export function recordAxpyInPlace(
  rec: KernelRecorder,
  x: GpuArray,
  y: GpuArray,
  alpha: number,
): void {
  const n = x.length;
  sameLength("recordAxpyInPlace", n, y);
  rec.dispatch1d("em", "axpy_inplace", [
    emParams(rec.ctx, { n, beta: alpha }),
    ...imageBindings(x, y, null, null, null),
  ], n);
}

/**
 * Records `out = exp(−lineIntegrals)` (⊙ `factors` when given): attenuation factors from line
 * integrals of μ, optionally times normalisation factors.
 *
 * @example
 * ```ts
 * import { defaultContext, recordAttenuationFactors } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * // ∫μ along two LORs: 200 mm of water (0.0096/mm) and nothing
 * const lineIntegrals = ctx.array([2], Float32Array.of(200 * 0.0096, 0));
 * const norm = ctx.array([2], Float32Array.of(1, 0.8));
 * const m = ctx.array([2]);
 * ctx.run((rec) => recordAttenuationFactors(rec, lineIntegrals, norm, m));
 * console.log(await m.read()); // ≈ [0.1466, 0.8]
 * ```
 */
export function recordAttenuationFactors(
  rec: KernelRecorder,
  lineIntegrals: GpuArray,
  factors: GpuArray | null,
  out: GpuArray,
): void {
  const n = lineIntegrals.length;
  sameLength("recordAttenuationFactors", n, factors, out);
  rec.dispatch1d("em", "atten_factors", [
    emParams(rec.ctx, { n, flags: factors ? 1 : 0 }),
    lineIntegrals,
    factors ?? placeholder(rec.ctx),
    null,
    null,
    out,
  ], n);
}

/**
 * Plain-TypeScript (float64) twin of the kernels' closed form: the positive maximiser of
 * `c log x − s x − (a/2) x² + bz x` (a = 0: `c / s`).
 *
 * @example
 * ```ts
 * import { penalisedSolve } from "@petrel/petrel";
 * penalisedSolve(0, 0, 2, 6); // 3: the EM update c / s
 * penalisedSolve(1, 0.5, 1, 2); // ≈ 1.1861: (bz − s + √((bz − s)² + 4ac)) / 2a
 * ```
 */
export function penalisedSolve(a: number, bz: number, s: number, c: number): number {
  if (!(a > 0)) return s > 0 ? c / s : 0;
  const b = bz - s;
  const d = Math.sqrt(b * b + 4 * a * c);
  if (b >= 0) return (b + d) / (2 * a);
  const den = d - b;
  return den > 0 ? (2 * c) / den : 0;
}
