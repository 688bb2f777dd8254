import { ok as assert, rejects as assertRejects } from "node:assert/strict";
import { AdamW } from "../../core/diffusion/adamw.ts";
import type { LoraState } from "../../core/diffusion/lora.ts";
import { withOnnxMetadata } from "../../core/diffusion/onnx_proto.ts";
import { loadPrior, readInitialParams } from "../../core/diffusion/load.ts";
import type { ScorePrior } from "../../core/diffusion/prior.ts";
import { readOnnxHeader } from "../../core/diffusion/onnx_proto.ts";
import { parsePriorMetadata } from "../../core/diffusion/metadata.ts";
import { ddimStep, noiseTo, tweedie, tweedieLossGrad } from "../../core/diffusion/sampler.ts";
import { type NamedTensor, readTensorBundle } from "../../core/diffusion/tensor_bundle.ts";
import { Rng } from "../../core/random.ts";

const DIR = new URL("../fixtures/prior", import.meta.url).pathname;
const FIX = await readTensorBundle(`${DIR}/fixture.json`);
const TOL = JSON.parse(await Deno.readTextFile(`${DIR}/fixture.json`)).tolerance as {
  eps_abs: number;
  grad_rel_to_max: number;
};

function fx(name: string): NamedTensor {
  const t = FIX.get(name);
  if (!t) throw new Error(`fixture has no tensor "${name}"`);
  return t;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert(a.length === b.length, `lengths ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** The fixture's non-zero LoRA parameters (case0.p.*). */
function case0Params(prior: ScorePrior): LoraState {
  const p = prior.createParams();
  for (const name of p.names) p.set(name, fx(`case0.${name}`).data);
  return p;
}

let shared: Promise<ScorePrior> | null = null;
function fixturePrior(): Promise<ScorePrior> {
  shared ??= loadPrior(DIR, { provider: "wasm" });
  return shared;
}

const x = fx("case0.x_t").data;
const mr = fx("case0.mr").data;
const t = fx("case0.t").data[0];

Deno.test("fixture prior loads with its metadata, LoRA layout and VJP graph", async () => {
  const prior = await fixturePrior();
  assert(prior.provider === "wasm" && prior.threads === 1, "1 wasm thread by default");
  assert(prior.canFineTune && prior.fineTuneNote === "");
  assert(prior.meta.format === "petrel-prior-v1" && prior.schedule.T === 1000);
  const params = prior.createParams();
  assert(params.size === prior.meta.lora.init!.count, `${params.size} parameters`);
  assert(JSON.stringify(prior.vjpShape) === "[1,3,16,16]");
  // lora_init has up = 0 and non-zero down factors
  const ups = params.names.filter((n) => n.endsWith(".lora_up"));
  const downs = params.names.filter((n) => n.endsWith(".lora_down"));
  assert(ups.length > 0 && ups.every((n) => params.get(n).every((v) => v === 0)));
  assert(downs.every((n) => maxAbs(params.get(n)) > 0));
});

Deno.test("denoiser ε equals the PyTorch fixture (LoRA on, LoRA init, dynamic shape)", async () => {
  const prior = await fixturePrior();
  const eps = await prior.eps(x, t, mr, case0Params(prior));
  assert(maxAbsDiff(eps, fx("case0.out.eps").data) < TOL.eps_abs);
  const base = await prior.eps(x, t, mr, prior.createParams());
  assert(maxAbsDiff(base, fx("init.out.eps").data) < TOL.eps_abs);
  // B = 2, 16 rows × 12 columns: petrel shape [nx, ny, nz] = [12, 16, 6]
  const dyn = await prior.eps(
    fx("dyn.x_t").data,
    fx("dyn.t").data,
    fx("dyn.mr").data,
    case0Params(prior),
    { shape: [12, 16, 6] },
  );
  assert(maxAbsDiff(dyn, fx("dyn.out.eps").data) < TOL.eps_abs);
});

Deno.test("VJP graph equals PyTorch autograd on the fixture", async () => {
  const prior = await fixturePrior();
  const params = case0Params(prior);
  const { eps, grads } = await prior.vjp(x, t, mr, params, fx("case0.grad_eps").data);
  assert(maxAbsDiff(eps, fx("case0.out.eps").data) < TOL.eps_abs);
  let gmax = 0;
  for (const name of params.names) {
    gmax = Math.max(gmax, maxAbs(fx(`case0.out.grad.${name.slice(2)}`).data));
  }
  for (const name of params.names) {
    const ref = fx(`case0.out.grad.${name.slice(2)}`).data;
    const d = maxAbsDiff(grads.get(name)!, ref);
    assert(d <= TOL.grad_rel_to_max * gmax, `${name}: ${d} vs max ${gmax}`);
  }
});

Deno.test("VJP equals a finite-difference directional derivative of the denoiser", async () => {
  const prior = await fixturePrior();
  const params = case0Params(prior);
  const g = fx("case0.grad_eps").data;
  const { grads } = await prior.vjp(x, t, mr, params, g);
  // random unit direction over all parameters (seeded)
  const rng = new Rng(42);
  const v = new Map<string, Float32Array>();
  let norm = 0;
  for (const name of params.names) {
    const d = rng.normals(params.get(name).length);
    v.set(name, d);
    norm += dot(d, d);
  }
  for (const d of v.values()) d.forEach((_, i) => (d[i] /= Math.sqrt(norm)));
  let analytic = 0;
  for (const name of params.names) analytic += dot(grads.get(name)!, v.get(name)!);
  const h = 1e-2;
  const plus = await prior.eps(x, t, mr, params.plus(v, h));
  const minus = await prior.eps(x, t, mr, params.plus(v, -h));
  let fd = 0;
  for (let i = 0; i < g.length; i++) fd += g[i] * (plus[i] - minus[i]) / (2 * h);
  assert(
    Math.abs(fd - analytic) <= 1e-3 * Math.abs(analytic) + 1e-5,
    `finite difference ${fd} vs VJP ${analytic}`,
  );
});

Deno.test("with LoRA up = 0 the down factors do not change ε (the base model)", async () => {
  const prior = await fixturePrior();
  const base = prior.createParams();
  const shuffled = base.clone();
  const rng = new Rng(7);
  for (const name of shuffled.names.filter((n) => n.endsWith(".lora_down"))) {
    shuffled.set(name, rng.normals(shuffled.get(name).length));
  }
  const e0 = await prior.eps(x, t, mr, base);
  const e1 = await prior.eps(x, t, mr, shuffled);
  assert(maxAbsDiff(e0, e1) < 1e-6, `ε moved by ${maxAbsDiff(e0, e1)}`);
  // and the gradient with respect to every down factor is zero there
  const { grads } = await prior.vjp(x, t, mr, shuffled, fx("case0.grad_eps").data);
  for (const name of shuffled.names.filter((n) => n.endsWith(".lora_down"))) {
    assert(maxAbs(grads.get(name)!) === 0, `${name} gradient ${maxAbs(grads.get(name)!)}`);
  }
});

Deno.test("one AdamW step through the VJP lowers the image-domain Tweedie loss", async () => {
  const prior = await fixturePrior();
  const params = prior.createParams();
  const ab = prior.schedule.alphaBar(t);
  // target: a smooth image in [0, 1] (as an HQS x-step would deliver)
  const target = Float32Array.from(x, (_, i) => 0.5 + 0.3 * Math.sin(i / 9));
  const lossOf = async (p: LoraState): Promise<number> => {
    const x0 = tweedie(x, await prior.eps(x, t, mr, p), ab);
    return tweedieLossGrad(x0, target, ab).loss;
  };
  const before = await lossOf(params);
  const x0 = tweedie(x, await prior.eps(x, t, mr, params), ab);
  const { gradEps } = tweedieLossGrad(x0, target, ab);
  const { grads } = await prior.vjp(x, t, mr, params, gradEps);
  const report = new AdamW().step(params, grads);
  const after = await lossOf(params);
  assert(report.gradNorm > 0 && after < before, `loss ${before} → ${after}`);
});

Deno.test("a seeded DDS chain with the fixture prior is bit-identical on a rerun", async () => {
  const prior = await fixturePrior();
  const run = async (): Promise<Float32Array> => {
    const rng = new Rng(2026);
    const params = prior.createParams();
    let xt = noiseTo(Float32Array.from(mr, (v) => 0.8 * v), prior.schedule.alphaBar(19), rng);
    for (const [ts, tp] of prior.schedule.reverseSteps(20, 4)) {
      const eps = await prior.eps(xt, ts, mr, params);
      const x0 = tweedie(xt, eps, prior.schedule.alphaBar(ts));
      xt = ddimStep(x0, eps, { alphaBarPrev: prior.schedule.alphaBar(tp), eta: 0.85, rng });
    }
    return xt;
  };
  const a = await run();
  const b = await run();
  assert(a.every((v, i) => Number.isFinite(v) && Object.is(v, b[i])));
  assert(a.every((v) => v >= 0 && v <= 1), "the last step returns clip(x̂0, 0, 1)");
});

Deno.test("a prior without vjp.onnx samples and says fine-tuning is off", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "petrel_prior_" });
  try {
    for (const f of ["denoiser.onnx", "lora_init.bin", "lora_init.json"]) {
      await Deno.copyFile(`${DIR}/${f}`, `${tmp}/${f}`);
    }
    const prior = await loadPrior(tmp, { provider: "wasm" });
    assert(!prior.canFineTune && /fine-tuning is off: no vjp\.onnx in /.test(prior.fineTuneNote));
    const eps = await prior.eps(x, t, mr, prior.createParams());
    assert(maxAbsDiff(eps, fx("init.out.eps").data) < TOL.eps_abs);
    const p = prior.createParams();
    await assertRejects(
      async () => await prior.vjp(x, t, mr, p, new Float32Array(x.length)),
      /cannot compute gradients, fine-tuning is off.*sampling still works/,
    );
    await prior.release();
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("wrong metadata or graph inputs give errors naming what is expected", async () => {
  const denoiser = await Deno.readFile(`${DIR}/denoiser.onnx`);
  const vjp = await Deno.readFile(`${DIR}/vjp.onnx`);
  const meta = parsePriorMetadata(readOnnxHeader(denoiser), "fixture");
  const initialParams = await readInitialParams(DIR, meta);
  const raw = JSON.parse(readOnnxHeader(denoiser).metadata.get("petrel")!);
  const withMeta = (m: Record<string, string>): Uint8Array =>
    withOnnxMetadata(denoiser, new Map(Object.entries(m)));
  const load = (d: Uint8Array, v: Uint8Array | null = null) =>
    loadPrior({ denoiser: d, vjp: v, initialParams, label: "test.onnx" }, { provider: "wasm" });

  await assertRejects(load(withMeta({})), /no "petrel" entry .*expected the JSON model card/);
  await assertRejects(load(withMeta({ petrel: "{not json" })), /not valid JSON/);
  await assertRejects(
    load(withMeta({ petrel: JSON.stringify({ ...raw, format: "petrel-prior-v0" }) })),
    /format: .*expected \{format: "petrel-prior-v1"/,
  );
  await assertRejects(
    load(withMeta({ petrel: JSON.stringify({ ...raw, prediction: "v" }) })),
    /prediction/,
  );
  const renamed = structuredClone(raw);
  renamed.lora.params[0].name = "p.nowhere.lora_down";
  await assertRejects(
    load(withMeta({ petrel: JSON.stringify(renamed) })),
    /graph input 3 is "p\.down\.0\.res\.0\.conv1\.lora_down" \[4, 8, 3, 3\] but "p\.nowhere\.lora_down" was expected/,
  );
  const reshaped = structuredClone(raw);
  reshaped.lora.params[0].shape = [4, 8, 3, 1];
  await assertRejects(
    load(withMeta({ petrel: JSON.stringify(reshaped) })),
    /has shape \[4, 8, 3, 3\] but the metadata declares \[4, 8, 3, 1\]/,
  );
  // the graphs swapped: the VJP graph as denoiser has an extra input, the denoiser lacks grad_eps
  await assertRejects(
    load(vjp),
    /graph input \d+ is "grad_eps" .*but no further input was expected/,
  );
  await assertRejects(
    load(denoiser, denoiser),
    /graph input \d+ is nothing but "grad_eps" was expected/,
  );
  await assertRejects(
    loadPrior({ denoiser }, { provider: "wasm" }),
    /no initial values for \d+ adaptable parameter/,
  );
  await assertRejects(loadPrior("/nonexistent/prior"), /no denoiser\.onnx in \/nonexistent\/prior/);
  await assertRejects(
    // deno-lint-ignore no-explicit-any
    loadPrior(DIR, { provider: "cuda" as any }),
    /unknown prior provider "cuda": use "auto", "wasm", "webgpu", "native"/,
  );
});

Deno.test("calls with wrong sizes are refused before reaching onnxruntime", async () => {
  const prior = await fixturePrior();
  const p = prior.createParams();
  await assertRejects(
    async () =>
      await prior.vjp(
        new Float32Array(3 * 32 * 32),
        t,
        new Float32Array(3 * 32 * 32),
        p,
        new Float32Array(3 * 32 * 32),
      ),
    /exported for x_t of shape \[1, 3, 16, 16\]/,
  );
  await assertRejects(
    async () => await prior.eps(x, t, new Float32Array(10), p),
    /mr has 10 values, expected 768/,
  );
  await assertRejects(
    async () => await prior.eps(new Float32Array(3 * 15 * 15), t, new Float32Array(3 * 15 * 15), p),
    /multiples of 2/,
  );
  await assertRejects(async () => await prior.eps(x, 1000, mr, p), /outside \[0, 999\]/);
  await assertRejects(
    async () => await prior.eps(new Float32Array(100), t, mr, p),
    /cannot infer the stack shape/,
  );
});

Deno.test({
  name: "release the shared fixture prior",
  fn: async () => {
    if (shared) await (await shared).release();
  },
});

Deno.test("the native provider (onnxruntime-node) matches PyTorch and is bit-identical on a rerun", async () => {
  const prior = await loadPrior(DIR, { provider: "native" });
  try {
    assert(prior.provider === "native" && prior.threads === 1, "native, 1 thread by default");
    const params = case0Params(prior);
    const eps = await prior.eps(x, t, mr, params);
    assert(maxAbsDiff(eps, fx("case0.out.eps").data) < TOL.eps_abs, "ε vs PyTorch");
    const { grads } = await prior.vjp(x, t, mr, params, fx("case0.grad_eps").data);
    let gmax = 0;
    for (const name of params.names) {
      gmax = Math.max(gmax, maxAbs(fx(`case0.out.grad.${name.slice(2)}`).data));
    }
    for (const name of params.names) {
      const d = maxAbsDiff(grads.get(name)!, fx(`case0.out.grad.${name.slice(2)}`).data);
      assert(d <= TOL.grad_rel_to_max * gmax, `${name}: ${d} vs max ${gmax}`);
    }
    const again = await prior.eps(x, t, mr, params);
    assert(again.every((v, i) => Object.is(v, eps[i])), "rerun is bit-identical");
  } finally {
    await prior.release();
  }
});

Deno.test("the native provider with 2 intra-op threads agrees with PyTorch and with 1 thread", async () => {
  // onnxruntime-node's threads are per session (no process-wide pool as in ORT-web's wasm). The
  // results are not bit-identical to 1 thread (ORT splits some reductions differently), so DDIP
  // keeps 1 thread by default and the benchmarks take 2 only when asked (--threads 2).
  const one = await loadPrior(DIR, { provider: "native" });
  const two = await loadPrior(DIR, { provider: "native", numThreads: 2 });
  try {
    assert(one.threads === 1 && two.threads === 2, "1 and 2 threads");
    const p1 = case0Params(one);
    const p2 = case0Params(two);
    const e1 = await one.eps(x, t, mr, p1);
    const e2 = await two.eps(x, t, mr, p2);
    assert(maxAbsDiff(e2, fx("case0.out.eps").data) < TOL.eps_abs, "ε vs PyTorch");
    assert(maxAbsDiff(e1, e2) < 1e-5, `ε 1 vs 2 threads: ${maxAbsDiff(e1, e2)}`);
    const g = fx("case0.grad_eps").data;
    const v1 = await one.vjp(x, t, mr, p1, g);
    const v2 = await two.vjp(x, t, mr, p2, g);
    let gmax = 0;
    for (const name of p1.names) gmax = Math.max(gmax, maxAbs(v1.grads.get(name)!));
    for (const name of p1.names) {
      const d = maxAbsDiff(v1.grads.get(name)!, v2.grads.get(name)!);
      assert(d <= 1e-5 * gmax, `${name}: 1 vs 2 threads ${d} (max ${gmax})`);
    }
  } finally {
    await one.release();
    await two.release();
  }
});

Deno.test("the native provider with 2 inter-op threads (parallel executor) is bit-identical to sequential", async () => {
  // every node still runs on 1 intra-op thread, so only the order of independent nodes changes
  const seq = await loadPrior(DIR, { provider: "native" });
  const par = await loadPrior(DIR, { provider: "native", interOpThreads: 2 });
  try {
    const ps = case0Params(seq);
    const pp = case0Params(par);
    const es = await seq.eps(x, t, mr, ps);
    const ep = await par.eps(x, t, mr, pp);
    assert(maxAbsDiff(ep, fx("case0.out.eps").data) < TOL.eps_abs, "ε vs PyTorch");
    assert(es.every((v, i) => Object.is(v, ep[i])), "ε bit-identical");
    const g = fx("case0.grad_eps").data;
    const vs = await seq.vjp(x, t, mr, ps, g);
    const vp = await par.vjp(x, t, mr, pp, g);
    assert(vs.eps.every((v, i) => Object.is(v, vp.eps[i])), "VJP ε bit-identical");
    for (const name of ps.names) {
      const a = vs.grads.get(name)!;
      const b = vp.grads.get(name)!;
      assert(a.every((v, i) => Object.is(v, b[i])), `${name}: bit-identical`);
    }
  } finally {
    await seq.release();
    await par.release();
  }
  await assertRejects(
    () => loadPrior(DIR, { provider: "native", interOpThreads: 0 }),
    /interOpThreads must be an integer ≥ 1, got 0/,
  );
});

Deno.test("onnxruntime-web (wasm) with 2 threads, in its own process, agrees with PyTorch and with 1 thread", async () => {
  // ORT-web's thread count is fixed by the first load in a process, so the 2-thread prior runs in
  // a child process (as `petrel recon ddip --set priorThreads=2` does) and hands back ε and the
  // VJP gradients of the fixture's case0.
  const out = await Deno.makeTempFile({ suffix: ".json" });
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  let one: ScorePrior | undefined;
  try {
    const load = new URL("../../core/diffusion/load.ts", import.meta.url).href;
    const bundle = new URL("../../core/diffusion/tensor_bundle.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { loadPrior } from "${load}";
import { readTensorBundle } from "${bundle}";
const fix = await readTensorBundle(${JSON.stringify(`${DIR}/fixture.json`)});
const f = (n: string) => fix.get(n)!.data;
const prior = await loadPrior(${JSON.stringify(DIR)}, { provider: "wasm", numThreads: 2 });
const p = prior.createParams();
for (const name of p.names) p.set(name, f("case0." + name));
const args = [f("case0.x_t"), f("case0.t")[0], f("case0.mr"), p] as const;
const eps = await prior.eps(...args);
const v = await prior.vjp(...args, f("case0.grad_eps"));
const grads = Object.fromEntries(p.names.map((n) => [n, Array.from(v.grads.get(n)!)]));
await Deno.writeTextFile(${
        JSON.stringify(out)
      }, JSON.stringify({ threads: prior.threads, eps: Array.from(eps), grads }));
await prior.release();
`,
    );
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--config",
        new URL("../../deno.json", import.meta.url).pathname,
        "--allow-read",
        "--allow-write",
        "--allow-env",
        script,
      ],
      stderr: "piped",
    }).output();
    assert(r.success, new TextDecoder().decode(r.stderr));
    const two = JSON.parse(await Deno.readTextFile(out)) as {
      threads: number;
      eps: number[];
      grads: Record<string, number[]>;
    };
    assert(two.threads === 2, `threads ${two.threads}`);
    // a prior of its own: the shared one is released by a test above
    one = await loadPrior(DIR, { provider: "wasm" });
    const p1 = case0Params(one);
    const e1 = await one.eps(x, t, mr, p1);
    const e2 = Float32Array.from(two.eps);
    assert(maxAbsDiff(e2, fx("case0.out.eps").data) < TOL.eps_abs, "ε vs PyTorch");
    assert(maxAbsDiff(e1, e2) < 1e-5, `ε 1 vs 2 threads: ${maxAbsDiff(e1, e2)}`);
    const v1 = await one.vjp(x, t, mr, p1, fx("case0.grad_eps").data);
    let gmax = 0;
    for (const name of p1.names) gmax = Math.max(gmax, maxAbs(v1.grads.get(name)!));
    for (const name of p1.names) {
      const d = maxAbsDiff(v1.grads.get(name)!, Float32Array.from(two.grads[name]));
      assert(d <= 1e-5 * gmax, `${name}: 1 vs 2 threads ${d} (max ${gmax})`);
    }
  } finally {
    await one?.release();
    await Deno.remove(out).catch(() => {});
    await Deno.remove(script).catch(() => {});
  }
});
