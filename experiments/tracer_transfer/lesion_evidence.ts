/**
 * How strongly do the measured data ask for more activity in a lesion than a reconstruction has?
 * A diagnostic of issue 15 (why no post-hoc lever restores an MR-invisible lesion that DDIP-HQS
 * erased): for one condition of the experiment (its data, made by the fine simulator) and the
 * images the experiment saved for it (`fig/<simulator>.<tracer>.<method>.npy`), it reports per
 * MR-invisible hot lesion and image
 *
 * - the score statistic `z` of a uniform sphere over the lesion (Rao's test of "no more, no less
 *   activity there", N(0, 1) when the image is right, positive when the data want more), beside
 *   the same statistic for spheres of the lesion's radius centred at random in the head;
 * - the log-likelihood change (nats) when the image's lesion region alone is scaled to the true
 *   mean there (positive: the data prefer the true mean, given the rest of the image).
 *
 * ```
 * deno run -A experiments/tracer_transfer/lesion_evidence.ts --subject 50 --seed 2035 --stack 1 \
 *   --tracer amyloid_neg --fig out/val/s2035/fig [--spheres 120] [--json out.json]
 * ```
 *
 * The stack is the `--stack`-th largest hot lesion's, as `--stacks N` of the experiment orders
 * them; the images must be that stack's (the experiment saves the first stack's figure only).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { GpuContext } from "../../core/gpu/context.ts";
import { readNpy } from "../../core/io/npy.ts";
import { roiMean } from "../../core/metrics/roi.ts";
import { Rng, subSeed } from "../../core/random.ts";
import type { TracerName } from "../../core/sim/tracers.ts";
import { DEFAULT_PRIOR_DIR } from "../../core/diffusion/default_prior.ts";
import {
  type ConditionInfo,
  type FineCache,
  lesionKind,
  loadSubject,
  simulateCondition,
} from "./condition.ts";
import { experimentSettings, params } from "./recipe.ts";

/**
 * Rao's score statistic of the amplitude `a` of a template whose expected trues are `p`, at
 * the expected data `ybar` (`ybar(a) = ybar + a p`): `U = Σ p (y/ybar − 1)` (the derivative of
 * the Poisson log-likelihood at `a = 0`), its Fisher information `I = Σ p²/ybar`, and
 * `z = U/√I`. Bins with `ybar ≤ 0` are skipped.
 *
 * @example
 * ```ts
 * const { z } = scoreStatistic(Float32Array.of(1, 1), Float32Array.of(12, 10), Float32Array.of(10, 10));
 * // U = 0.2, I = 0.2, z = √0.2 ≈ 0.447
 * ```
 */
export function scoreStatistic(
  p: ArrayLike<number>,
  y: ArrayLike<number>,
  ybar: ArrayLike<number>,
): { u: number; fisher: number; z: number } {
  let u = 0, fisher = 0;
  for (let i = 0; i < p.length; i++) {
    if (!(ybar[i] > 0)) continue;
    u += p[i] * (y[i] / ybar[i] - 1);
    fisher += p[i] * p[i] / ybar[i];
  }
  return { u, fisher, z: fisher > 0 ? u / Math.sqrt(fisher) : 0 };
}

/**
 * Order statistics of the sphere scores: median, 90th percentile, maximum and the fraction of
 * spheres below `z`.
 *
 * @example
 * ```ts
 * summarise([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 7.5); // { median: 5, p90: 9, max: 9, rank: 0.8 }
 * ```
 */
export function summarise(
  zs: readonly number[],
  z: number,
): { median: number; p90: number; max: number; rank: number } {
  const s = [...zs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return {
    median: at(0.5),
    p90: at(0.9),
    max: s[s.length - 1],
    rank: zs.filter((v) => v < z).length / zs.length,
  };
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    args: Deno.args,
    options: {
      subject: { type: "string", default: "50" },
      seed: { type: "string" },
      stack: { type: "string", default: "1" },
      tracer: { type: "string", default: "amyloid_neg" },
      fig: { type: "string" },
      methods: { type: "string", default: "truth,ddip-hqs,osem" },
      spheres: { type: "string", default: "120" },
      brainweb: { type: "string", default: "../shared/data/brainweb" },
      json: { type: "string" },
    },
  });
  if (!a.seed || !a.fig) {
    throw new RangeError("--seed and --fig (the experiment's fig folder) are required");
  }
  const seed = Number(a.seed);
  const s = experimentSettings(
    params.parse({
      subjects: [a.subject],
      tracers: [a.tracer],
      counts: [100000],
      realisations: 1,
      simulators: ["fine"],
    }),
    { model: DEFAULT_PRIOR_DIR, brainweb: a.brainweb!, out: "", seed },
  );
  const ctx = await GpuContext.create();
  const subject = await loadSubject(s, a.subject!, false);
  const study = subject.study;
  const hot = study.lesions.filter((l) => l.petFactor > 1).sort((x, y) => y.radiusMm - x.radiusMm);
  const lesion = hot[Number(a.stack) - 1];
  if (!lesion) {
    throw new RangeError(`--stack ${a.stack}: the subject has ${hot.length} hot lesions`);
  }
  const [nx, ny, nz] = study.grid.shape;
  const dz = study.grid.voxelSizeMm[2];
  const k = Math.round((lesion.centreMm[2] - study.grid.originMm[2]) / dz);
  const centre = Math.min(nz - 2, Math.max(1, k));
  const info: ConditionInfo = {
    subject,
    lesion,
    centre,
    tracer: a.tracer as TracerName,
    counts: 100000,
    realisation: 0,
    simulator: "fine",
  };
  const cache: FineCache = new Map();
  const c = await simulateCondition(ctx, s, info, cache);
  const model = c.likelihood.model;
  const n = c.truth.length;
  const plane = nx * ny;
  const images: Record<string, Float32Array> = {};
  for (const m of a.methods!.split(",")) {
    images[m] = m === "truth"
      ? c.truth
      : (await readNpy(`${a.fig}/fine.${a.tracer}.${m}.npy`)).data;
    if (images[m].length !== n) {
      throw new RangeError(
        `${a.fig}/fine.${a.tracer}.${m}.npy: ${images[m].length} voxels, expected ${n}`,
      );
    }
  }
  // the saved truth must be this condition's: else the figure is of another stack
  const saved = await readNpy(`${a.fig}/fine.${a.tracer}.truth.npy`).then(
    (r) => r.data,
    () => null,
  );
  if (saved && saved.some((v, i) => Math.abs(v - c.truth[i]) > 1e-6 * (1 + Math.abs(v)))) {
    throw new RangeError(
      `${a.fig}: its truth is not this condition's (centre slice ${centre}): the experiment saves the first stack's images only`,
    );
  }
  const onDevice = async (
    x: Float32Array,
    f: (g: ReturnType<typeof ctx.array>) => Promise<Float32Array | number>,
  ) => {
    const g = ctx.array(c.grid.shape, x);
    try {
      return await f(g);
    } finally {
      g.destroy();
    }
  };
  const trues = (x: Float32Array) =>
    onDevice(x, (g) => model.expectedTrues(g)) as Promise<Float32Array>;
  const expected = (x: Float32Array) =>
    onDevice(x, (g) => model.expected(g)) as Promise<Float32Array>;
  const logLik = (x: Float32Array) =>
    onDevice(x, (g) => c.likelihood.logLikelihood(g)) as Promise<number>;
  const v = c.grid.voxelSizeMm;
  const sphere = (ci: number, cj: number, rMm: number) => {
    const m = new Float32Array(n);
    for (let kk = 0; kk < 3; kk++) {
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          if (Math.hypot((i - ci) * v[0], (j - cj) * v[1], (kk - 1) * v[2]) <= rMm) {
            m[kk * plane + i + nx * j] = 1;
          }
        }
      }
    }
    return m;
  };
  let tmax = 0;
  for (const t of c.truth) tmax = Math.max(tmax, t);
  const out: Record<string, unknown>[] = [];
  for (const { l, m } of c.others) {
    if (lesionKind(l) !== "hot mr-invisible") continue;
    const mask = Float32Array.from(m.lesion);
    const pLesion = await trues(mask);
    const trueMean = roiMean(c.truth, m.lesion);
    // random spheres of the lesion's radius centred where the truth's centre slice is ≥ 20 % of its max
    const rng = new Rng(subSeed(seed, "lesion-evidence"));
    const spheres: Float32Array[] = [];
    for (let tries = 0; spheres.length < Number(a.spheres) && tries < 1e5; tries++) {
      const i = Math.floor(rng.uniform() * nx), j = Math.floor(rng.uniform() * ny);
      if (c.truth[plane + i + nx * j] >= 0.2 * tmax) {
        spheres.push(await trues(sphere(i, j, l.radiusMm)));
      }
    }
    console.log(
      `${lesionKind(l)} lesion, r ${l.radiusMm.toFixed(1)} mm ×${
        l.petFactor.toFixed(2)
      }, true mean ${trueMean.toFixed(3)}; ${spheres.length} random spheres`,
    );
    for (const [method, x] of Object.entries(images)) {
      const ybar = await expected(x);
      const { z } = scoreStatistic(pLesion, c.counts, ybar);
      const zs = spheres.map((p) => scoreStatistic(p, c.counts, ybar).z);
      const sum = summarise(zs, z);
      const mean = roiMean(x, m.lesion);
      const f = trueMean / mean;
      const rescaled = Float32Array.from(x, (val, i) => (mask[i] ? val * f : val));
      const dL = (await logLik(rescaled)) - (await logLik(x));
      const row = {
        lesionRadiusMm: l.radiusMm,
        method,
        recovery: mean / trueMean,
        z,
        spheres: sum,
        scaleToTrueMean: f,
        deltaLogLikelihood: dL,
      };
      out.push(row);
      console.log(
        `  ${method.padEnd(9)} recovery ${row.recovery.toFixed(3)}  z ${
          z.toFixed(2)
        }  spheres: median ${sum.median.toFixed(2)}, 90 % ${sum.p90.toFixed(2)}, max ${
          sum.max.toFixed(2)
        } (lesion above ${(100 * sum.rank).toFixed(0)} %)  ` +
          `ΔL, region ×${f.toFixed(3)} to the true mean: ${dL >= 0 ? "+" : ""}${
            dL.toFixed(2)
          } nats`,
      );
    }
  }
  model.destroy();
  if (a.json) {
    await Deno.writeTextFile(
      a.json,
      JSON.stringify(
        { subject: a.subject, seed, stack: Number(a.stack), centre, tracer: a.tracer, rows: out },
        null,
        1,
      ),
    );
  }
}

if (import.meta.main) await main();
