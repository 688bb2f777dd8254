import { ok as assert, throws as assertThrows } from "node:assert/strict";
import { AdamW } from "../../core/diffusion/adamw.ts";
import { LoraState } from "../../core/diffusion/lora.ts";

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number): void {
  assert(a.length === b.length, `lengths ${a.length} vs ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    assert(Math.abs(a[i] - b[i]) <= tol, `index ${i}: ${a[i]} vs ${b[i]} (tol ${tol})`);
  }
}

function state(): LoraState {
  return new LoraState(
    [{ name: "p.a", shape: [4] }, { name: "p.b", shape: [2, 2] }],
    new Map([
      ["p.a", Float32Array.of(0.5, -1.25, 2.0, 0.0)],
      ["p.b", Float32Array.of(0.1, 0.2, -0.3, 0.4)],
    ]),
  );
}

const GRADS: Array<[number[], number[]]> = [
  [[3.0, -4.0, 0.5, 1.0], [0.2, -0.1, 0.0, 2.0]], // norm 5.5 > 1: clipped
  [[0.01, 0.02, -0.03, 0.0], [0.0, 0.1, 0.2, -0.05]], // norm 0.23: not clipped
  [[-1.0, 2.0, 0.25, -0.5], [1.5, 0.0, -0.7, 0.3]],
];

// torch 1.13: clip_grad_norm_([a, b], 1.0); AdamW([a, b], lr=5e-4, weight_decay=0.01).step()
const TORCH = [
  {
    norm: 5.504543781280518,
    a: [0.49949750304222107, -1.2494938373565674, 1.9994900226593018, -0.0004999999073334038],
    b: [0.09949950128793716, 0.20049899816513062, -0.29999852180480957, 0.39949801564216614],
  },
  {
    norm: 0.23216374218463898,
    a: [0.499153196811676, -1.249163031578064, 1.9992786645889282, -0.0008350264979526401],
    b: [0.0991639718413353, 0.20019176602363586, -0.30036911368370056, 0.39921486377716064],
  },
  {
    norm: 2.853506565093994,
    a: [0.4991013705730438, -1.249198079109192, 1.9989380836486816, -0.0007994797779247165],
    b: [0.09882698208093643, 0.1999540477991104, -0.3003017008304596, 0.3989158570766449],
  },
];

Deno.test("AdamW with clipping follows torch's clip_grad_norm_ + AdamW for three steps", () => {
  const p = state();
  const opt = new AdamW({ lr: 5e-4, weightDecay: 0.01, clipNorm: 1.0 });
  for (let k = 0; k < 3; k++) {
    const v0 = p.version;
    const r = opt.step(
      p,
      new Map([["p.a", Float32Array.from(GRADS[k][0])], ["p.b", Float32Array.from(GRADS[k][1])]]),
    );
    assert(Math.abs(r.gradNorm - TORCH[k].norm) < 1e-5, `norm ${r.gradNorm}`);
    assert(r.step === k + 1 && p.version > v0);
    close(p.get("p.a"), TORCH[k].a, 2e-7);
    close(p.get("p.b"), TORCH[k].b, 2e-7);
  }
});

Deno.test("AdamW first step equals the hand-computed update", () => {
  // step 1: m̂ = g·c, v̂ = (g·c)², so p ← p(1 − lr·λ) − lr·g·c/(|g·c| + ε), c = clip/(‖g‖ + 1e-6)
  const lr = 1e-2;
  const wd = 0.1;
  const p = new LoraState(
    [{ name: "p.w", shape: [3] }],
    new Map([["p.w", Float32Array.of(1, -2, 0.5)]]),
  );
  const g = Float32Array.of(0.6, -0.8, 0.0);
  const opt = new AdamW({ lr, weightDecay: wd, clipNorm: 0.5, eps: 1e-8 });
  const r = opt.step(p, new Map([["p.w", g]]));
  const c = 0.5 / (1 + 1e-6);
  assert(Math.abs(r.clipScale - c) < 1e-7 && Math.abs(r.gradNorm - 1) < 1e-7);
  const expected = [1, -2, 0.5].map((x, i) => {
    const gc = g[i] * c;
    return x * (1 - lr * wd) - (lr * gc) / (Math.abs(gc) + 1e-8);
  });
  close(p.get("p.w"), expected, 1e-6);
  // a fresh optimiser (reset) repeats the first step exactly
  const q = new LoraState(
    [{ name: "p.w", shape: [3] }],
    new Map([["p.w", Float32Array.of(1, -2, 0.5)]]),
  );
  opt.reset();
  opt.step(q, new Map([["p.w", g]]));
  close(q.get("p.w"), p.get("p.w"), 0);
});

Deno.test("AdamW rejects missing, mis-sized and non-finite gradients", () => {
  const p = state();
  const opt = new AdamW();
  assertThrows(
    () => opt.step(p, new Map([["p.a", new Float32Array(4)]])),
    /no gradient for parameter "p.b"/,
  );
  assertThrows(
    () => opt.step(p, new Map([["p.a", new Float32Array(3)], ["p.b", new Float32Array(4)]])),
    /has 3 elements, expected 4/,
  );
  assertThrows(
    () =>
      opt.step(p, new Map([["p.a", Float32Array.of(NaN, 0, 0, 0)], ["p.b", new Float32Array(4)]])),
    /not finite/,
  );
  assertThrows(() => new AdamW({ lr: -1 }), /invalid AdamW options: lr/);
});
