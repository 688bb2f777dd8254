import { ok as assert, throws as assertThrows } from "node:assert/strict";
import { ddimStep, noiseTo, tweedie, tweedieLossGrad } from "../../core/diffusion/sampler.ts";
import { Rng } from "../../core/random.ts";

const N = 300;
function ramp(n: number, f: (i: number) => number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => f(i));
}

Deno.test("Tweedie inverts forward noising when ε is the true noise", () => {
  const x0 = ramp(N, (i) => 0.5 + 0.4 * Math.sin(i / 7));
  const n = new Rng(3).normals(N);
  for (const ab of [0.9999, 0.659, 0.05]) {
    const xt = noiseTo(x0, ab, n);
    const back = tweedie(xt, n, ab);
    for (let i = 0; i < N; i++) {
      // analytic: x_t = √ᾱ x0 + √(1−ᾱ) n exactly (up to float32 rounding of x_t)
      assert(Math.abs(xt[i] - (Math.sqrt(ab) * x0[i] + Math.sqrt(1 - ab) * n[i])) < 1e-6);
      assert(Math.abs(back[i] - x0[i]) < 5e-6 / Math.sqrt(ab), `${back[i]} vs ${x0[i]}`);
    }
  }
  // the same seed gives the same noised image
  const a = noiseTo(x0, 0.5, new Rng(11));
  const b = noiseTo(x0, 0.5, new Rng(11));
  assert(a.every((v, i) => v === b[i]));
});

Deno.test("image-domain loss gradient w.r.t. ε matches central differences", () => {
  const ab = 0.6590385082317941;
  const xt = ramp(40, (i) => Math.cos(i));
  const eps = ramp(40, (i) => 0.3 * Math.sin(3 * i));
  const target = ramp(40, (i) => 0.2 + 0.01 * i);
  const lossAt = (e: Float32Array): number => {
    const x0 = tweedie(xt, e, ab, new Float32Array(40));
    let s = 0;
    for (let i = 0; i < 40; i++) s += (x0[i] - target[i]) ** 2;
    return s / 40;
  };
  const { loss, gradEps } = tweedieLossGrad(tweedie(xt, eps, ab), target, ab);
  assert(Math.abs(loss - lossAt(eps)) < 1e-6);
  // float64 central differences on a few coordinates
  const sqrtAb = Math.sqrt(ab);
  const s1 = Math.sqrt(1 - ab);
  for (const i of [0, 7, 39]) {
    const h = 1e-3;
    const f = (d: number): number => {
      let s = 0;
      for (let k = 0; k < 40; k++) {
        const x0 = (xt[k] - s1 * (eps[k] + (k === i ? d : 0))) / sqrtAb;
        s += (x0 - target[k]) ** 2;
      }
      return s / 40;
    };
    const fd = (f(h) - f(-h)) / (2 * h);
    assert(Math.abs(fd - gradEps[i]) < 1e-6 * Math.max(1, Math.abs(fd)), `${fd} vs ${gradEps[i]}`);
  }
});

Deno.test("DDIM/DDS step equals the method's formula, seeded and clipped", () => {
  const x0 = ramp(N, (i) => -0.2 + (1.4 * i) / N); // spans below 0 and above 1
  const eps = ramp(N, (i) => Math.sin(i));
  const abPrev = 0.7;
  const eta = 0.85;
  const u = new Rng(5).normals(N);
  const out = ddimStep(x0, eps, { alphaBarPrev: abPrev, eta, rng: new Rng(5) });
  const withNoise = ddimStep(x0, eps, { alphaBarPrev: abPrev, eta, noise: u });
  for (let i = 0; i < N; i++) {
    const c = Math.min(1, Math.max(0, x0[i]));
    const ref = Math.sqrt(abPrev) * c + eta * Math.sqrt(1 - abPrev) * u[i] +
      Math.sqrt(1 - eta * eta) * Math.sqrt(1 - abPrev) * eps[i];
    assert(Math.abs(out[i] - ref) < 1e-6, `${out[i]} vs ${ref}`);
    assert(out[i] === withNoise[i]);
  }
  // η = 0 is deterministic DDIM and needs no noise; ᾱ_prev = 1 returns clip(x̂0)
  const det = ddimStep(x0, eps, { alphaBarPrev: abPrev, eta: 0 });
  for (let i = 0; i < N; i++) {
    const c = Math.min(1, Math.max(0, x0[i]));
    assert(Math.abs(det[i] - (Math.sqrt(abPrev) * c + Math.sqrt(1 - abPrev) * eps[i])) < 1e-6);
  }
  const last = ddimStep(x0, eps, { alphaBarPrev: 1, eta, rng: new Rng(1) });
  assert(last.every((v, i) => v === Math.fround(Math.min(1, Math.max(0, x0[i])))));
  const unclipped = ddimStep(x0, eps, { alphaBarPrev: 1, eta: 0, clip: null });
  assert(unclipped.every((v, i) => v === x0[i]));
});

Deno.test("sampler functions reject mismatched arrays and bad parameters", () => {
  const a = new Float32Array(4);
  assertThrows(() => tweedie(a, new Float32Array(3), 0.5), /4 and 3 elements/);
  assertThrows(() => tweedie(a, a, 0), /ᾱ_t must be in \(0, 1\]/);
  assertThrows(() => ddimStep(a, a, { alphaBarPrev: 0.5, eta: 0.5 }), /pass `rng` or `noise`/);
  assertThrows(() => ddimStep(a, a, { alphaBarPrev: 0.5, eta: 1.5 }), /η must be in \[0, 1\]/);
});
