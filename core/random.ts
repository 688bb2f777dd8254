/**
 * Seeded pseudo-random numbers (xoshiro128**, seeded through splitmix32): uniform, normal and
 * Poisson variates that are identical on every platform for the same seed, and {@linkcode subSeed}
 * for independent streams. A leaf module: every layer may import it, it imports nothing.
 *
 * @example
 * ```ts
 * import { Rng, subSeed } from "./random.ts";
 * const rng = new Rng(subSeed(2026, "noise"));
 * const counts = rng.poisson(12.5);
 * const n = rng.normals(16);
 * ```
 *
 * @module
 */

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * A seeded generator. Two instances with the same seed produce the same sequence.
 *
 * @example
 * ```ts
 * import { Rng } from "@petrel/petrel";
 * const rng = new Rng(42);
 * const expected = Float32Array.of(0.5, 12, 250); // expected counts per bin
 * const counts = expected.map((m) => rng.poisson(m)); // same counts for seed 42 on every platform
 * ```
 */
export class Rng {
  #s = new Uint32Array(4);
  #spareNormal: number | null = null;

  constructor(readonly seed: number) {
    if (!Number.isFinite(seed)) {
      throw new RangeError(`Rng seed must be a finite number, got ${seed}`);
    }
    const st = { s: Math.trunc(seed) | 0 };
    for (let i = 0; i < 4; i++) this.#s[i] = splitmix32(st);
    if (this.#s.every((v) => v === 0)) this.#s[0] = 1;
  }

  /** Next raw 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Standard normal variate (Box–Muller, the spare value is cached). */
  normal(): number {
    if (this.#spareNormal !== null) {
      const v = this.#spareNormal;
      this.#spareNormal = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /**
   * Poisson variate with mean `lambda` ≥ 0: inversion for small means, the PTRS transformed
   * rejection method (Hörmann 1993) for means ≥ 10.
   */
  poisson(lambda: number): number {
    if (!(lambda >= 0) || !Number.isFinite(lambda)) {
      throw new RangeError(`Poisson mean must be finite and ≥ 0, got ${lambda}`);
    }
    if (lambda === 0) return 0;
    if (lambda < 10) {
      const l = Math.exp(-lambda);
      let k = 0;
      let p = this.uniform();
      while (p > l) {
        k++;
        p *= this.uniform();
      }
      return k;
    }
    const slam = Math.sqrt(lambda);
    const loglam = Math.log(lambda);
    const b = 0.931 + 2.53 * slam;
    const a = -0.059 + 0.02483 * b;
    const invalpha = 1.1239 + 1.1328 / (b - 3.4);
    const vr = 0.9277 - 3.6224 / (b - 2);
    for (;;) {
      const u = this.uniform() - 0.5;
      const v = this.uniform();
      const us = 0.5 - Math.abs(u);
      const k = Math.floor((2 * a / us + b) * u + lambda + 0.43);
      if (us >= 0.07 && v <= vr) return k;
      if (k < 0 || (us < 0.013 && v > us)) continue;
      if (
        Math.log(v) + Math.log(invalpha) - Math.log(a / (us * us) + b) <=
          -lambda + k * loglam - logFactorial(k)
      ) return k;
    }
  }

  /** Fills a new Float32Array with standard normal variates. */
  normals(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal();
    return out;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

const LOG_FACT_TABLE: number[] = [0];
/**
 * log(k!) exactly for small k, Stirling series beyond.
 *
 * @example
 * ```ts
 * import { logFactorial } from "@petrel/petrel";
 * // Poisson log-likelihood of k = 7 counts with mean 5.2
 * const ll = 7 * Math.log(5.2) - 5.2 - logFactorial(7);
 * ```
 */
export function logFactorial(k: number): number {
  if (k < 256) {
    while (LOG_FACT_TABLE.length <= k) {
      const n = LOG_FACT_TABLE.length;
      LOG_FACT_TABLE.push(LOG_FACT_TABLE[n - 1] + Math.log(n));
    }
    return LOG_FACT_TABLE[k];
  }
  const x = k + 1;
  return (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + 1 / (12 * x) -
    1 / (360 * x ** 3);
}

/**
 * A derived seed for one component of a run (independent streams per component): an FNV-1a hash
 * of `tag` mixed with `seed`.
 *
 * @example
 * ```ts
 * import { Rng, subSeed } from "./random.ts";
 * const lesions = new Rng(subSeed(7, "lesions")); // unaffected by how many "noise" draws happen
 * ```
 */
export function subSeed(seed: number, tag: string): number {
  let h = 0x811c9dc5 ^ (Math.trunc(seed) | 0);
  for (let i = 0; i < tag.length; i++) {
    h = Math.imul(h ^ tag.charCodeAt(i), 0x01000193);
  }
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  h = Math.imul(h ^ (h >>> 12), 0x297a2d39);
  return (h ^ (h >>> 15)) | 0;
}
