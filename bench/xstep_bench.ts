/**
 * The DDIP x-step (penalised EM towards a target z) in variants, timed side by side on the
 * benchmark stack (`_stack.ts`), each with its distance to the converged x-step solution.
 *
 *   deno run -A bench/xstep_bench.ts [--reps 3] [--iterations 5] [--converged 100] [--json]
 *
 * Variants: `joseph` (the generic projector, the path before the ring projector), `ring`
 * (RingPlanarProjector, the default for these stacks), and `ring OS S×P` (ordered subsets: S
 * subsets, P passes over the data). Timing: median wall and mean process CPU time of one x-step
 * (upload z, record, submit, read x back), the variants interleaved in every repetition so that
 * the machine's load hits them alike. Quality: ‖x − x*‖ / ‖x*‖ with x* the x-step solved by
 * `--converged` full-data iterations; the reference x-step (`--iterations` full-data iterations)
 * sets the bar a cheaper variant must meet to "keep the result".
 *
 * @module
 */

import { Command } from "commander";
import { defaultContext } from "../core/gpu/context.ts";
import { mlemInit } from "../core/recon/ddip/mod.ts";
import { PenalisedEmStep } from "../core/recon/xstep.ts";
import { benchStack, stackLikelihood } from "./_stack.ts";
import { cpuMs, median } from "./_timing.ts";

const o = new Command("xstep_bench")
  .option("--reps <n>", "repetitions (median)", "3")
  .option("--iterations <n>", "full-data iterations of the reference x-step", "5")
  .option("--beta <b>", "coupling β (images here are ~1–4)", "0.01")
  .option("--converged <n>", "iterations of the converged solution", "100")
  .option("--os <list>", "ordered-subset variants as S×P (subsets × passes)", "4x2,8x1,2x3")
  .option("--json", "print JSON instead of a table", false)
  .parse().opts();

const ctx = await defaultContext();
const stack = await benchStack(ctx, 128);
const iterations = Number(o.iterations);
const beta = Number(o.beta);
const log = (m: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${m}`);

interface Variant {
  name: string;
  step: PenalisedEmStep;
  iterations: number;
  orderedSubsets: boolean;
  destroy: () => void;
}
function variant(
  name: string,
  projector: "ring" | "joseph",
  subsets: number,
  its: number,
): Variant {
  const { model, likelihood } = stackLikelihood(ctx, stack, { projector, subsets });
  const step = new PenalisedEmStep(likelihood);
  return {
    name,
    step,
    iterations: its,
    orderedSubsets: subsets > 1,
    destroy: () => {
      step.destroy();
      likelihood.destroy();
      model.destroy();
    },
  };
}
const variants: Variant[] = [
  variant(`joseph ${iterations} its`, "joseph", 1, iterations),
  variant(`ring ${iterations} its`, "ring", 1, iterations),
];
for (const spec of String(o.os).split(",").filter(Boolean)) {
  const [s, p] = spec.split("x").map(Number);
  if (!(s >= 1 && p >= 1)) throw new Error(`--os: "${spec}" is not S×P (e.g. 4x2)`);
  variants.push(variant(`ring OS ${s}×${p}`, "ring", s, p));
}

// the target z: MLEM (20 its) as in ddip_bench; x* from many full-data iterations
const z = await mlemInit(stackLikelihood(ctx, stack, {}).likelihood, 20);
const za = ctx.array(stack.grid.shape, z);
const xa = ctx.array(stack.grid.shape);
const run = async (v: Variant, its = v.iterations): Promise<Float32Array> => {
  za.write(z);
  ctx.run((rec) =>
    v.step.record(rec, xa, za, { beta, iterations: its, orderedSubsets: v.orderedSubsets })
  );
  return await xa.read();
};
const converged = await run(variants[1], Number(o.converged));
log(`converged x-step (${o.converged} its) done`);
const dist = (x: Float32Array): number => {
  let d = 0;
  let n = 0;
  for (let i = 0; i < x.length; i++) {
    d += (x[i] - converged[i]) ** 2;
    n += converged[i] ** 2;
  }
  return Math.sqrt(d / n);
};

const wall = new Map<string, number[]>();
const cpu = new Map<string, number>();
const results = new Map<string, Float32Array>();
for (const v of variants) results.set(v.name, await run(v)); // warm-up, and the result
for (let r = 0; r < Number(o.reps); r++) {
  for (const v of variants) {
    const c0 = cpuMs();
    const t0 = performance.now();
    await run(v);
    wall.set(v.name, [...(wall.get(v.name) ?? []), performance.now() - t0]);
    cpu.set(v.name, (cpu.get(v.name) ?? 0) + cpuMs() - c0);
  }
  log(`repetition ${r + 1} done`);
}
const base = variants[0].name;
const rows = variants.map((v) => {
  const w = median(wall.get(v.name)!);
  const c = cpu.get(v.name)! / Number(o.reps);
  return {
    variant: v.name,
    wall_ms: +w.toFixed(1),
    cpu_ms: +c.toFixed(1),
    cpu_vs_joseph: +(c / (cpu.get(base)! / Number(o.reps))).toFixed(3),
    dist_to_converged: +dist(results.get(v.name)!).toExponential(3),
    max_rel_diff_vs_joseph: +maxRel(results.get(v.name)!, results.get(base)!).toExponential(2),
  };
});
function maxRel(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}
if (o.json) console.log(JSON.stringify({ device: ctx.adapter.description, beta, rows }, null, 1));
else {
  console.log(`x-step on ${ctx.adapter.description}, 128²×3 stack, β = ${beta}`);
  console.table(rows);
}
for (const v of variants) v.destroy();
xa.destroy();
za.destroy();
