/**
 * Check an exported petrel prior against PyTorch reference outputs with onnxruntime-web (wasm).
 *
 * Usage: deno run --allow-read --allow-env scripts/prior/check_onnx.ts <dir>/fixture.json
 * The fixture bundle (written by scripts/prior/export.py) names the model folder (`model_dir`,
 * relative to the bundle) holding denoiser.onnx and vjp.onnx. Exits 1 on a mismatch.
 */
import * as ort from "onnxruntime-web";

interface TensorEntry {
  name: string;
  shape: number[];
  offset: number;
}

interface Bundle {
  file: string;
  model_dir: string;
  tolerance: { eps_abs: number; grad_rel_to_max: number };
  tensors: TensorEntry[];
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : path.slice(0, i);
}

/** Load a bundle's tensors by name. */
function loadBundle(path: string): { doc: Bundle; t: Map<string, ort.Tensor> } {
  const doc = JSON.parse(Deno.readTextFileSync(path)) as Bundle;
  const bytes = Deno.readFileSync(`${dirOf(path)}/${doc.file}`);
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const t = new Map<string, ort.Tensor>();
  for (const e of doc.tensors) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    t.set(e.name, new ort.Tensor("float32", all.slice(e.offset, e.offset + n), e.shape));
  }
  return { doc, t };
}

function maxAbsDiff(a: ort.Tensor, b: ort.Tensor): number {
  const x = a.data as Float32Array, y = b.data as Float32Array;
  if (x.length !== y.length) throw new Error(`length ${x.length} != expected ${y.length}`);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

function maxAbs(a: ort.Tensor): number {
  let m = 0;
  for (const v of a.data as Float32Array) m = Math.max(m, Math.abs(v));
  return m;
}

async function main(): Promise<void> {
  const path = Deno.args[0];
  if (!path) throw new Error("usage: check_onnx.ts <fixture.json>");
  ort.env.wasm.numThreads = 1;
  const { doc, t } = loadBundle(path);
  const modelDir = `${dirOf(path)}/${doc.model_dir}`;
  const den = await ort.InferenceSession.create(Deno.readFileSync(`${modelDir}/denoiser.onnx`));
  const vjp = await ort.InferenceSession.create(Deno.readFileSync(`${modelDir}/vjp.onnx`));
  let ok = true;
  const pick = (prefix: string, names: readonly string[]): Record<string, ort.Tensor> => {
    const feeds: Record<string, ort.Tensor> = {};
    for (const n of names) {
      const v = t.get(`${prefix}.${n}`) ?? t.get(`case0.${n}`);
      if (!v) throw new Error(`fixture has no tensor for input ${n}`);
      feeds[n] = v;
    }
    return feeds;
  };
  // case0: denoiser and vjp
  let t0 = performance.now();
  const outD = await den.run(pick("case0", den.inputNames));
  const tDen = performance.now() - t0;
  const eD = maxAbsDiff(outD.eps, t.get("case0.out.eps")!);
  console.log(`denoiser eps: max abs err ${eD.toExponential(2)} (${tDen.toFixed(0)} ms)`);
  ok &&= eD < doc.tolerance.eps_abs;
  t0 = performance.now();
  const outV = await vjp.run(pick("case0", vjp.inputNames));
  const tVjp = performance.now() - t0;
  const eV = maxAbsDiff(outV.eps, t.get("case0.out.eps")!);
  let gMax = 0, gErr = 0;
  for (const n of vjp.outputNames) {
    if (!n.startsWith("grad.")) continue;
    const ref = t.get(`case0.out.${n}`)!;
    gMax = Math.max(gMax, maxAbs(ref));
    gErr = Math.max(gErr, maxAbsDiff(outV[n], ref));
  }
  console.log(
    `vjp eps: max abs err ${eV.toExponential(2)}; grads: max abs err ${gErr.toExponential(2)} ` +
      `(max |grad| ${gMax.toExponential(2)}, ${vjp.outputNames.length - 1} grads, ` +
      `${tVjp.toFixed(0)} ms)`,
  );
  ok &&= eV < doc.tolerance.eps_abs && gErr / gMax < doc.tolerance.grad_rel_to_max;
  // lora_init.bin (= base model) case
  const init = loadBundle(`${modelDir}/lora_init.json`).t;
  const feedsInit = pick("case0", den.inputNames);
  for (const [n, v] of init) feedsInit[n] = v;
  const outInit = await den.run(feedsInit);
  const eInit = maxAbsDiff(outInit.eps, t.get("init.out.eps")!);
  console.log(`denoiser with lora_init: max abs err ${eInit.toExponential(2)}`);
  ok &&= eInit < doc.tolerance.eps_abs;
  // dynamic shape case
  const outDyn = await den.run(pick("dyn", den.inputNames));
  const eDyn = maxAbsDiff(outDyn.eps, t.get("dyn.out.eps")!);
  console.log(`denoiser at ${t.get("dyn.x_t")!.dims}: max abs err ${eDyn.toExponential(2)}`);
  ok &&= eDyn < doc.tolerance.eps_abs;
  // timings: best of 3 runs after the checked (warm-up) run
  const best = async (s: ort.InferenceSession): Promise<number> => {
    let b = Infinity;
    for (let i = 0; i < 3; i++) {
      const t1 = performance.now();
      await s.run(pick("case0", s.inputNames));
      b = Math.min(b, performance.now() - t1);
    }
    return b;
  };
  console.log(
    `timing (wasm, 1 thread, best of 3): denoiser ${(await best(den)).toFixed(0)} ms, ` +
      `vjp ${(await best(vjp)).toFixed(0)} ms at ${t.get("case0.x_t")!.dims}`,
  );
  console.log(ok ? "ONNX outputs match PyTorch" : "MISMATCH between ONNX and PyTorch");
  if (!ok) Deno.exit(1);
}

await main();
