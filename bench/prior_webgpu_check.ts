/**
 * onnxruntime-web's WebGPU provider against its wasm provider on the score prior: the known
 * failure is a 3×3 Conv with 6 input channels (the U-Net stem) giving O(1) errors on Mesa
 * llvmpipe. Reports loadPrior's own cross-check (a 16² input; on a mismatch the prior falls back
 * to wasm), then, unless `--quick`, ε and the VJP on a full 128² stack from both providers (max
 * difference relative to max |value|) and their median times.
 *
 *   deno run -A bench/prior_webgpu_check.ts [--model models/fdg_prior] [--reps 3] [--quick] [--json]
 *
 * Exits 0 whether or not WebGPU agrees (it is a report); non-zero only when something fails to
 * run.
 *
 * @module
 */

import { Command } from "commander";
import { loadPrior } from "../core/diffusion/load.ts";
import { probeAdapter } from "../core/diffusion/provider.ts";
import type { ScorePrior } from "../core/diffusion/prior.ts";
import { median } from "./_timing.ts";
import { DEFAULT_PRIOR_DIR } from "../core/diffusion/default_prior.ts";

const o = new Command("prior_webgpu_check")
  .option("--model <dir>", "prior directory", DEFAULT_PRIOR_DIR)
  .option("--reps <n>", "timed repetitions", "3")
  .option("--quick", "only the 16² cross-check of loadPrior", false)
  .option("--json", "print JSON", false)
  .parse().opts();
const dir = String(o.model);
const reps = Number(o.reps);
const log = (m: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${m}`);

const adapter = await probeAdapter();
log(`adapter: ${adapter?.description ?? "none"} (fallback: ${adapter?.isFallback})`);
const checked = await loadPrior(dir, { provider: "webgpu", loadVjp: false });
const crossCheck = { providerAfterCheck: checked.provider, note: checked.providerNote };
log(`loadPrior cross-check: ${checked.provider}: ${checked.providerNote}`);
await checked.release();

interface Compare {
  graph: "eps" | "vjp";
  maxAbsDiff: number;
  maxAbs: number;
  relative: number;
  wasmMs: number;
  webgpuMs: number;
}
const full: Compare[] = [];
if (!o.quick) {
  const wasm = await loadPrior(dir, { provider: "wasm" });
  const gpu = await loadPrior(dir, { provider: "webgpu", crossCheck: false });
  const [b, c, h, w] = wasm.vjpShape ?? [1, wasm.channels, 128, 128];
  const n = b * c * h * w;
  const xt = Float32Array.from({ length: n }, (_, i) => 0.5 + 0.4 * Math.sin(0.013 * i));
  const mr = Float32Array.from(
    { length: b * wasm.meta.channels.mr * h * w },
    (_, i) => 0.5 + 0.5 * Math.cos(0.007 * i),
  );
  const g = Float32Array.from({ length: n }, (_, i) => Math.cos(0.021 * i) / n);
  const shape: [number, number, number] = [w, h, b * c];
  const timeIt = async <T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> => {
    let value = await fn(); // warm-up
    const ts: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      value = await fn();
      ts.push(performance.now() - t0);
    }
    return { value, ms: median(ts) };
  };
  const compare = (graph: "eps" | "vjp", a: Float32Array, bb: Float32Array, ms: number[]) => {
    let d = 0;
    let m = 0;
    for (let i = 0; i < a.length; i++) {
      d = Math.max(d, Math.abs(a[i] - bb[i]));
      m = Math.max(m, Math.abs(a[i]));
    }
    full.push({ graph, maxAbsDiff: d, maxAbs: m, relative: d / m, wasmMs: ms[0], webgpuMs: ms[1] });
    log(
      `${graph}: max |Δ| ${d.toPrecision(3)} of max ${m.toPrecision(3)}; wasm ${
        ms[0].toFixed(0)
      } ms, webgpu ${ms[1].toFixed(0)} ms`,
    );
  };
  const run = (p: ScorePrior) => p.eps(xt, 150, mr, p.createParams(), { shape });
  const ew = await timeIt(() => run(wasm));
  const eg = await timeIt(() => run(gpu));
  compare("eps", ew.value, eg.value, [ew.ms, eg.ms]);
  if (wasm.canFineTune) {
    const flat = (p: ScorePrior) => async () => {
      const r = await p.vjp(xt, 150, mr, p.createParams(), g, { shape });
      return Float32Array.from([...r.grads.values()].flatMap((v) => [...v]));
    };
    const vw = await timeIt(flat(wasm));
    const vg = await timeIt(flat(gpu));
    compare("vjp", vw.value, vg.value, [vw.ms, vg.ms]);
  }
  await wasm.release();
  await gpu.release();
}
const out = { adapter, crossCheck, full };
if (o.json) console.log(JSON.stringify(out, null, 1));
else console.log(JSON.stringify(out));
