/**
 * Two exports of a prior side by side: the same inputs through the graphs of folder A and folder
 * B, alternating A and B every repetition, on one onnxruntime provider. Prints per graph the
 * median wall and process CPU time of each, their ratio B ÷ A, and how far B's outputs are from
 * A's (ε: max |Δ|; gradients: max |Δ| ÷ max |grad|). Used to compare export forms
 * (`scripts/prior/export.py --vjp-form`) and session options on a loaded machine, where only a
 * ratio taken side by side means anything.
 *
 *   deno run -A --unstable-raw-imports bench/prior_compare.ts --a models/fdg_prior --b /tmp/other
 *       [--provider native|wasm] [--graphs vjp,denoiser] [--reps 7] [--threads-a 1] [--threads-b 1] [--json]
 *
 * Inputs: one 128² stack (x_t and mr smooth patterns, t = 150), A's initial LoRA values with the
 * up factors set to a small pattern (so the LoRA branches are active), grad_eps a small pattern.
 *
 * @module
 */

import process from "node:process";
import { Command } from "commander";
import { readInitialParams } from "../core/diffusion/load.ts";
import { paramInputName, parsePriorMetadata } from "../core/diffusion/metadata.ts";
import { readOnnxHeader } from "../core/diffusion/onnx_proto.ts";
import { createSession, loadOrt, type OrtSession, type OrtTensor } from "../core/diffusion/ort.ts";

const o = new Command("prior_compare")
  .requiredOption("--a <dir>", "prior folder A (the reference, e.g. main's models/fdg_prior)")
  .requiredOption("--b <dir>", "prior folder B")
  .option("--provider <p>", "native (onnxruntime-node) or wasm (onnxruntime-web)", "native")
  .option("--graphs <list>", "graphs to time", "vjp,denoiser")
  .option("--reps <n>", "timed repetitions of each (after one warm-up)", "7")
  .option("--threads-a <n>", "native intra-op threads for A", "1")
  .option("--threads-b <n>", "native intra-op threads for B", "1")
  .option("--json", "print JSON", false)
  .parse().opts();

const provider = String(o.provider) as "native" | "wasm";
if (provider !== "native" && provider !== "wasm") {
  throw new Error(`--provider must be native or wasm, got ${provider}`);
}
const reps = Number(o.reps);
const { ort } = await loadOrt(provider, 1);
const n = 128 * 128 * 3;
const x = Float32Array.from({ length: n }, (_, i) => Math.sin(0.37 * i + 1) * 0.5 + 0.3);
const mr = Float32Array.from({ length: n }, (_, i) => 0.5 + 0.5 * Math.cos(0.11 * i));
const gradEps = Float32Array.from({ length: n }, (_, i) => 1e-3 * Math.cos(i));

async function open(
  dir: string,
  graph: string,
  threads: number,
): Promise<{ s: OrtSession; feeds: Record<string, OrtTensor> }> {
  const bytes = await Deno.readFile(`${dir}/${graph}.onnx`);
  const meta = parsePriorMetadata(readOnnxHeader(bytes), `${dir}/${graph}.onnx`);
  const init = await readInitialParams(dir, meta);
  const feeds: Record<string, OrtTensor> = {
    x_t: new ort.Tensor("float32", x, [1, 3, 128, 128]),
    t: new ort.Tensor("float32", Float32Array.of(150), [1]),
    mr: new ort.Tensor("float32", mr, [1, meta.channels.mr, 128, 128]),
  };
  for (const p of meta.lora.params) {
    const v = init.get(p.name)!;
    const data = p.name.endsWith("lora_up")
      ? Float32Array.from(v, (_, i) => 0.02 * Math.sin(1.3 * i + p.name.length))
      : v;
    feeds[paramInputName(p.name)] = new ort.Tensor("float32", data, p.shape);
  }
  if (graph === "vjp") feeds.grad_eps = new ort.Tensor("float32", gradEps, [1, 3, 128, 128]);
  const s = await createSession(ort, provider, bytes, `${dir}/${graph}.onnx`, threads);
  return { s, feeds };
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const rows = [];
for (const graph of String(o.graphs).split(",")) {
  const sides = [
    await open(String(o.a), graph, Number(o.threadsA)),
    await open(String(o.b), graph, Number(o.threadsB)),
  ];
  const wall: number[][] = [[], []];
  const cpu: number[][] = [[], []];
  const outs: Record<string, Float32Array>[] = [];
  for (let r = 0; r <= reps; r++) {
    for (let k = 0; k < 2; k++) {
      const side = (r % 2 === 0) ? k : 1 - k; // alternate which side goes first
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const out = await sides[side].s.run(sides[side].feeds);
      const dt = performance.now() - t0;
      const c = process.cpuUsage(c0);
      if (r === 0) {
        outs[side] = Object.fromEntries(
          Object.entries(out).map(([name, t]) => [name, t.data as Float32Array]),
        );
      } else {
        wall[side].push(dt);
        cpu[side].push((c.user + c.system) / 1000);
      }
    }
  }
  let epsDiff = 0;
  let gradDiff = 0;
  let gradMax = 0;
  for (const [name, a] of Object.entries(outs[0])) {
    const b = outs[1][name];
    if (!b) throw new Error(`${o.b}/${graph}.onnx has no output ${name}`);
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs(a[i] - b[i]);
      if (name === "eps") epsDiff = Math.max(epsDiff, d);
      else {
        gradDiff = Math.max(gradDiff, d);
        gradMax = Math.max(gradMax, Math.abs(a[i]));
      }
    }
  }
  const row = {
    graph,
    provider,
    wallMsA: +median(wall[0]).toFixed(1),
    wallMsB: +median(wall[1]).toFixed(1),
    wallRatio: +(median(wall[1]) / median(wall[0])).toFixed(3),
    cpuMsA: +median(cpu[0]).toFixed(1),
    cpuMsB: +median(cpu[1]).toFixed(1),
    cpuRatio: +(median(cpu[1]) / median(cpu[0])).toFixed(3),
    epsMaxAbsDiff: epsDiff,
    gradMaxDiffRel: graph === "vjp" ? gradDiff / (gradMax || 1) : null,
    reps,
  };
  rows.push(row);
  for (const side of sides) await side.s.release();
  if (!o.json) {
    console.log(
      `${graph} (${provider}): wall ${row.wallMsA} / ${row.wallMsB} ms (B/A ${row.wallRatio}), CPU ${row.cpuMsA} / ${row.cpuMsB} ms (B/A ${row.cpuRatio}); ε max|Δ| ${
        epsDiff.toExponential(2)
      }${
        row.gradMaxDiffRel === null
          ? ""
          : `, grads max|Δ|/max|g| ${row.gradMaxDiffRel.toExponential(2)}`
      }`,
    );
  }
}
if (o.json) console.log(JSON.stringify({ a: o.a, b: o.b, load: Deno.loadavg(), rows }, null, 1));
