/**
 * Score-prior benchmark: denoiser forward (ε) and VJP times for one 3-slice stack (default 128²)
 * with onnxruntime-web — wasm (`--threads`, default 1: with 2 threads ORT-web's VJP took minutes on
 * the loaded 2-core machines), plus WebGPU when the adapter is a real GPU — beside
 * onnxruntime-node's native CPU time for the same graphs as a reference, and the host-side
 * Tweedie + DDIM step.
 *
 *   deno run -A bench/prior_bench.ts [--model models/fdg_prior]
 *       [--reps 5] [--warmup 2] [--threads 1] [--no-node] [--json]
 *
 * (`onnxruntime-node` is mapped in deno.json and imported dynamically; its prebuilt native
 * binaries ship in the npm package.) The VJP
 * graph has a fixed shape: the stack size is taken from it.
 *
 * @module
 */

import { Command } from "commander";
import { loadPrior, readInitialParams } from "../core/diffusion/load.ts";
import { probeAdapter } from "../core/diffusion/provider.ts";
import type { ScorePrior } from "../core/diffusion/prior.ts";
import { parsePriorMetadata } from "../core/diffusion/metadata.ts";
import { readOnnxHeader } from "../core/diffusion/onnx_proto.ts";
import { ddimStep, tweedie } from "../core/diffusion/sampler.ts";
import { Rng } from "../core/random.ts";
import { DEFAULT_PRIOR_DIR } from "../core/diffusion/default_prior.ts";

const o = new Command("prior_bench")
  .option(
    "--model <dir>",
    "prior directory (denoiser.onnx, vjp.onnx, lora_init)",
    DEFAULT_PRIOR_DIR,
  )
  .option("--reps <n>", "timed repetitions", "5")
  .option("--warmup <n>", "untimed warm-up calls", "2")
  .option(
    "--threads <n>",
    "CPU threads (wasm and onnxruntime-node); see loadPrior's numThreads",
    "1",
  )
  .option("--no-node", "skip the onnxruntime-node reference")
  .option("--json", "print JSON instead of a table", false)
  .option("--quiet", "no progress lines on stderr", false)
  .parse().opts();

const dir = String(o.model);
const reps = Number(o.reps);
const warmup = Number(o.warmup);
const threads = Number(o.threads);

interface Row {
  runtime: string;
  graph: "eps" | "vjp" | "host step";
  shape: string;
  loadMs: number | null;
  medianMs: number;
  minMs: number;
  reps: number;
  note?: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function progress(msg: string): void {
  if (!o.quiet) console.error(`[prior_bench] ${msg}`);
}

async function time(fn: () => Promise<unknown>): Promise<{ median: number; min: number }> {
  for (let i = 0; i < warmup; i++) await fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  return { median: median(ts), min: Math.min(...ts) };
}

/**
 * The table row of a timed graph: `t`'s median and minimum over the `reps` calls on the stack
 * `shape`, so every runtime's rows carry the same figures.
 */
function timedRow(
  t: { median: number; min: number },
  row: { runtime: string; graph: Row["graph"]; loadMs: number | null; note?: string },
): Row {
  return {
    runtime: row.runtime,
    graph: row.graph,
    shape,
    loadMs: row.loadMs,
    medianMs: t.median,
    minMs: t.min,
    reps,
    note: row.note,
  };
}

const denoiserBytes = await Deno.readFile(`${dir}/denoiser.onnx`);
const vjpBytes = await Deno.readFile(`${dir}/vjp.onnx`).catch(() => null);
const meta = parsePriorMetadata(readOnnxHeader(denoiserBytes), `${dir}/denoiser.onnx`);
const vjpDims = vjpBytes
  ? readOnnxHeader(vjpBytes).inputs[0].shape as number[]
  : [1, meta.channels.pet, 128, 128];
const [, c, h, w] = vjpDims;
const n = c * h * w;
const rng = new Rng(1);
const xt = rng.normals(n);
const mr = Float32Array.from({ length: meta.channels.mr * h * w }, () => rng.uniform());
const gradEps = rng.normals(n);
const t = 150;
const shape = `1×${c}×${h}×${w}`;
const rows: Row[] = [];
const agreement: Record<string, number> = {};

async function benchWeb(provider: "wasm" | "webgpu"): Promise<Float32Array> {
  progress(`loading ${dir} on ORT-web ${provider}`);
  const t0 = performance.now();
  const prior: ScorePrior = await loadPrior(dir, { provider, numThreads: threads });
  const loadMs = performance.now() - t0;
  progress(`loaded in ${loadMs.toFixed(0)} ms; timing eps`);
  const note = prior.provider !== provider ? prior.providerNote : undefined;
  const label = `ORT-web ${prior.provider}${
    prior.provider === "wasm" ? ` (${prior.threads} thr)` : ""
  }`;
  const params = prior.createParams();
  let eps: Float32Array = new Float32Array(0);
  const te = await time(async () => {
    eps = await prior.eps(xt, t, mr, params, { shape: [w, h, c] });
  });
  rows.push(timedRow(te, { runtime: label, graph: "eps", loadMs, note }));
  if (prior.canFineTune) {
    progress(`eps median ${te.median.toFixed(1)} ms; timing vjp`);
    const tv = await time(() => prior.vjp(xt, t, mr, params, gradEps));
    rows.push(timedRow(tv, { runtime: label, graph: "vjp", loadMs: null }));
  }
  await prior.release();
  return eps;
}

const epsWasm = await benchWeb("wasm");
const adapter = await probeAdapter();
if (adapter && !adapter.isFallback) {
  const e = await benchWeb("webgpu");
  agreement["webgpu vs wasm"] = maxDiff(e, epsWasm);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

if (o.node !== false) {
  try {
    const ortNode = await import("onnxruntime-node");
    const init = await readInitialParams(dir, meta);
    const feeds = (withGrad: boolean): Record<string, InstanceType<typeof ortNode.Tensor>> => {
      const f: Record<string, InstanceType<typeof ortNode.Tensor>> = {
        x_t: new ortNode.Tensor("float32", xt, [1, c, h, w]),
        t: new ortNode.Tensor("float32", Float32Array.of(t), [1]),
        mr: new ortNode.Tensor("float32", mr, [1, meta.channels.mr, h, w]),
      };
      for (const p of meta.lora.params) {
        const name = p.name.startsWith("p.") ? p.name : `p.${p.name}`;
        f[name] = new ortNode.Tensor("float32", init.get(p.name)!, p.shape);
      }
      if (withGrad) f.grad_eps = new ortNode.Tensor("float32", gradEps, [1, c, h, w]);
      return f;
    };
    const opts = {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: "all" as const,
    };
    const label = `ORT-node cpu (${threads} thr)`;
    progress("onnxruntime-node");
    const t0 = performance.now();
    const den = await ortNode.InferenceSession.create(denoiserBytes, opts);
    const loadMs = performance.now() - t0;
    let eps: Float32Array = new Float32Array(0);
    const te = await time(async () => {
      eps = (await den.run(feeds(false))).eps.data as Float32Array;
    });
    rows.push(timedRow(te, { runtime: label, graph: "eps", loadMs }));
    agreement["node vs wasm"] = maxDiff(eps, epsWasm);
    if (vjpBytes) {
      const t1 = performance.now();
      const vjp = await ortNode.InferenceSession.create(vjpBytes, opts);
      const vl = performance.now() - t1;
      const tv = await time(() => vjp.run(feeds(true)));
      rows.push(timedRow(tv, { runtime: label, graph: "vjp", loadMs: vl }));
      await vjp.release();
    }
    await den.release();
  } catch (e) {
    rows.push({
      runtime: "ORT-node cpu",
      graph: "eps",
      shape,
      loadMs: null,
      medianMs: NaN,
      minMs: NaN,
      reps: 0,
      note: `onnxruntime-node failed: ${(e as Error).message}`,
    });
  }
}

// host side of one reverse step: Tweedie estimate + DDS/DDIM update with fresh noise
{
  const ab = 0.66;
  const noiseRng = new Rng(2);
  const th = await time(() => {
    const x0 = tweedie(xt, epsWasm, ab);
    ddimStep(x0, epsWasm, { alphaBarPrev: 0.67, eta: 0.85, rng: noiseRng });
    return Promise.resolve();
  });
  rows.push(timedRow(th, { runtime: "TypeScript", graph: "host step", loadMs: null }));
}

const arch = meta.architecture ?? {};
if (o.json) {
  console.log(JSON.stringify(
    {
      model: dir,
      architecture: arch,
      adapter,
      threads,
      reps,
      warmup,
      rows,
      maxAbsDiffEps: agreement,
      date: new Date().toISOString(),
    },
    null,
    2,
  ));
} else {
  console.log(`prior ${dir}: ${JSON.stringify(arch)}`);
  console.log(
    `adapter: ${
      adapter ? `${adapter.description}${adapter.isFallback ? " (fallback)" : ""}` : "none"
    }`,
  );
  const header = ["runtime", "graph", "shape", "load ms", "median ms", "min ms", "reps"];
  const body = rows.map((r) => [
    r.runtime,
    r.graph,
    r.shape,
    r.loadMs === null ? "" : r.loadMs.toFixed(0),
    r.medianMs.toFixed(1),
    r.minMs.toFixed(1),
    String(r.reps),
  ]);
  const widths = header.map((hd, i) => Math.max(hd.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]): string => cells.map((x, i) => x.padEnd(widths[i])).join("  ");
  console.log(line(header));
  console.log(widths.map((wd) => "-".repeat(wd)).join("  "));
  for (const b of body) console.log(line(b));
  for (const r of rows) if (r.note) console.log(`note (${r.runtime}): ${r.note}`);
  for (const [k, v] of Object.entries(agreement)) {
    console.log(`max |Δε| ${k}: ${v.toExponential(2)}`);
  }
}
