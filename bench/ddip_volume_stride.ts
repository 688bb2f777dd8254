/**
 * DDIP-HQS volume stride and combine study (issue 18): a short volume of a BrainWeb subject,
 * simulated with the fine simulator (never the reconstruction operator), reconstructed by
 * `ddipVolume` at stack stride 1, and scored per slice (PSNR, SSIM against the truth) for stride
 * 1, 2 and 3 with both combines ("centre", "average").
 *
 *   deno run -A bench/ddip_volume_stride.ts [--subject 50] [--slices 11] [--first 38]
 *       [--tracer amyloid_neg] [--counts 1e5] [--seeds 0] [--provider native] [--json FILE]
 *
 * Cost: one stride-1 volume per seed (nz − 2 stacks). The stacks of stride 2 and 3 are a subset of
 * stride 1's (a stack's seed derives from its centre, its initialisation from its own data), so
 * they are taken from the stride-1 run and combined with `combineStacks` at the stride-1 volume
 * scale; the auto scale each stride would choose from its own centres is reported beside it
 * (`autoScale` over fewer centre planes). With several seeds the seed-to-seed difference at
 * stride 1 is the noise floor the strides are judged against.
 *
 * Use the validation subject (50) only: 51–53 are the held-out test subjects.
 *
 * @module
 */

import { Command } from "commander";
import { defaultContext } from "../core/gpu/context.ts";
import { centredGrid, imageGrid } from "../core/geometry/grid.ts";
import { MMR_VOXEL_MM, mmrLike2d } from "../core/geometry/scanner.ts";
import { loadPrior } from "../core/diffusion/load.ts";
import {
  combineStacks,
  DDIP_CPU_PRESET,
  ddipConfig,
  ddipVolume,
  directPlaneScanner,
  stackGeometry,
  type StackImages,
  volumeStackCentres,
} from "../core/recon/ddip/mod.ts";
import { autoScale } from "../core/recon/ddip/scale.ts";
import { readLabelVolume } from "../core/sim/dataset.ts";
import { simulateStudy } from "../core/sim/simulate.ts";
import { boxAverage } from "../core/sim/downsample.ts";
import { fineLineIntegrals, simulateFineCounts } from "../core/sim/fine.ts";
import type { TracerName } from "../core/sim/tracers.ts";
import { Rng, subSeed } from "../core/random.ts";
import { psnr, ssimSlices } from "../core/metrics/image.ts";
import { DEFAULT_PRIOR_DIR } from "../core/diffusion/default_prior.ts";

const o = new Command("ddip_volume_stride")
  .option("--model <dir>", "prior directory", DEFAULT_PRIOR_DIR)
  .option("--brainweb <dir>", "BrainWeb label volumes", "../shared/data/brainweb")
  .option("--subject <id>", "BrainWeb subject (50: the validation subject)", "50")
  .option("--slices <n>", "slices of the volume (odd)", "11")
  .option("--first <k>", "first slice of the 87-slice study grid", "38")
  .option("--tracer <t>", "tracer", "amyloid_neg")
  .option("--counts <n>", "true counts per slice", "1e5")
  .option("--seeds <list>", "DDIP seeds (comma-separated)", "0")
  .option("--provider <p>", "prior runtime: auto, wasm, webgpu or native", "native")
  .option("--json <file>", "write the per-slice figures as JSON")
  .parse().opts();

const log = (m: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${m}`);
const nz = Number(o.slices);
const first = Number(o.first);
const tracer = String(o.tracer) as TracerName;
if (!(nz >= 5 && nz % 2 === 1)) throw new Error(`--slices must be odd and ≥ 5, got ${o.slices}`);

// 1. the study (as experiments/tracer_transfer: 128² × 87 of 2.086 mm, seeded lesions) and the
// fine truth of the slab on a 4× finer grid, one fine voxel of margin above and below
const seed = 0;
const study87 = centredGrid([128, 128, 87], [MMR_VOXEL_MM, MMR_VOXEL_MM, MMR_VOXEL_MM]);
const labels = await readLabelVolume(`${o.brainweb}/subject${o.subject}_crisp.nii.gz`);
const simSeed = subSeed(seed, `study-${o.subject}`);
const study = simulateStudy(labels, {
  grid: study87,
  tracers: [...new Set<TracerName>(["fdg", "amyloid_neg", tracer])],
  seed: simSeed,
  lesions: 10,
  mu: true,
  placement: "head",
});
const F = 4;
const dz = MMR_VOXEL_MM;
const fv: [number, number, number] = [MMR_VOXEL_MM / F, MMR_VOXEL_MM / F, dz / F];
const fineShape: [number, number, number] = [128 * F, 128 * F, nz * F + 2];
const fineOrigin: [number, number, number] = [
  study87.originMm[0] - MMR_VOXEL_MM / 2 + fv[0] / 2,
  study87.originMm[1] - MMR_VOXEL_MM / 2 + fv[1] / 2,
  study87.originMm[2] + first * dz - dz / 2 + fv[2] / 2 - fv[2],
];
const fine = simulateStudy(labels, {
  grid: imageGrid({ shape: fineShape, voxelSizeMm: fv, originMm: fineOrigin }),
  tracers: [tracer],
  seed: simSeed,
  lesions: study.lesions,
  blobs: study.blobs,
  mu: true,
  mr: false,
  labelFractions: false,
  placement: "head",
});
// slab-local coordinates: the slab's centre slice at z = 0, as the direct planes of its scanner
const centreZ = study87.originMm[2] + (first + (nz - 1) / 2) * dz;
const fineLocal = imageGrid({
  shape: fineShape,
  voxelSizeMm: fv,
  originMm: [fineOrigin[0], fineOrigin[1], fineOrigin[2] - centreZ],
});
const grid = centredGrid([128, 128, nz], [MMR_VOXEL_MM, MMR_VOXEL_MM, dz]);
const scanner = directPlaneScanner(mmrLike2d(), nz, dz);
log(`fine truth ${fineShape.join("×")}; line integrals of ${scanner.lors().count} LORs …`);
const li = fineLineIntegrals([fine.activity[tracer]!], fineLocal, scanner.lors(), {
  stepMm: 0.5,
  axialWidthMm: dz,
  axialSamples: 4,
  mu: fine.mu!,
});
const normRng = new Rng(subSeed(seed, "norm"));
const norm = Float32Array.from(
  { length: scanner.lors().count },
  () => Math.max(0.5, 1 + 0.05 * normRng.normal()),
);
const binMm = Math.PI * scanner.spec.radiusMm / scanner.spec.crystalsPerRing;
const sim = simulateFineCounts({
  activity: fine.activity[tracer]!,
  grid: fineLocal,
  lors: scanner.lors(),
  lineIntegrals: { integral: li.integrals[0], attenuation: li.attenuation },
  radialBlurFwhmBins: 4 / binMm,
  normalisation: norm,
  trueCounts: nz * Number(o.counts),
  randomsFraction: 0.2,
  scatterFraction: 0.3,
  seed: subSeed(seed, `volume-${o.subject}-${first}-${nz}-${tracer}-${o.counts}`),
});
const truth = Float32Array.from(
  boxAverage(fine.activity[tracer]!, fineLocal, grid),
  (v) => v * sim.scale,
);
const plane = 128 * 128;
const slab = (v: Float32Array) => v.slice(first * plane, (first + nz) * plane);
let mrMax = 0;
for (const v of study.mr!) mrMax = Math.max(mrMax, v);
const vol = {
  grid,
  scanner: mmrLike2d(),
  counts: sim.prompts,
  additive: sim.additive,
  multiplicative: norm,
  mu: slab(study.mu!),
  mr: Float32Array.from(slab(study.mr!), (v) => v / mrMax),
};

// 2. stride-1 volumes (one per seed), every stack kept
const ctx = await defaultContext();
const prior = await loadPrior(String(o.model), {
  adapter: ctx.adapter,
  provider: String(o.provider) as "auto" | "wasm" | "webgpu" | "native",
});
const config = ddipConfig(DDIP_CPU_PRESET);
const seeds = String(o.seeds).split(",").map(Number);
let dataRange = 0;
for (const v of truth) dataRange = Math.max(dataRange, v);
const perSlice = (image: Float32Array) => {
  const ss = ssimSlices(truth, image, { shape: grid.shape, dataRange });
  return Array.from({ length: nz }, (_, k) => ({
    psnr: psnr(
      truth.subarray(k * plane, (k + 1) * plane),
      image.subarray(k * plane, (k + 1) * plane),
      {
        dataRange,
      },
    ),
    ssim: ss[k],
  }));
};
interface Variant {
  seed: number;
  stride: number;
  combine: "centre" | "average";
  stacks: number;
  scale: number;
  autoScale: number;
  slices: { psnr: number; ssim: number }[];
  image: Float32Array;
}
const variants: Variant[] = [];
const stackGrid = stackGeometry(grid, mmrLike2d(), 1).grid;
const stackSeconds: number[] = [];
for (const s of seeds) {
  const stacks = new Map<number, StackImages>();
  const t0 = performance.now();
  let tStack = performance.now();
  const r = await ddipVolume(ctx, prior, vol, {
    config,
    seed: s,
    stackStride: 1,
    onStack: ({ index, count, centre, result }) => {
      stacks.set(centre, { first: centre - 1, image: result.image, init: result.init });
      stackSeconds.push((performance.now() - tStack) / 1000);
      tStack = performance.now();
      log(
        `seed ${s}: stack ${index + 1}/${count} (centre ${centre}) ${
          stackSeconds.at(-1)!.toFixed(1)
        } s`,
      );
    },
  });
  log(
    `seed ${s}: stride-1 volume ${
      ((performance.now() - t0) / 1000).toFixed(0)
    } s, scale ${r.scale}`,
  );
  for (const stride of [1, 2, 3]) {
    const centres = volumeStackCentres(nz, stride);
    const chosen = centres.map((c) => stacks.get(c)!);
    const own = await autoScale(
      ctx,
      chosen.map((st) => ({ grid: stackGrid, init: st.init, planes: [1, 1] as [number, number] })),
      config,
    );
    for (const combine of ["centre", "average"] as const) {
      const { image } = combineStacks(grid.shape, chosen, combine);
      variants.push({
        seed: s,
        stride,
        combine,
        stacks: centres.length,
        scale: r.scale,
        autoScale: own,
        slices: perSlice(image),
        image,
      });
    }
  }
}
await prior.release();

// 3. report: mean over slices, and the paired difference to stride 1 / centre of the same seed
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const rows = variants.map((v) => {
  const ref = variants.find((w) => w.seed === v.seed && w.stride === 1 && w.combine === "centre")!;
  const dP = v.slices.map((x, k) => x.psnr - ref.slices[k].psnr);
  const dS = v.slices.map((x, k) => x.ssim - ref.slices[k].ssim);
  return {
    seed: v.seed,
    stride: v.stride,
    combine: v.combine,
    stacks: v.stacks,
    autoScaleVsStride1: +(v.autoScale / v.scale).toFixed(4),
    psnr: +mean(v.slices.map((x) => x.psnr)).toFixed(3),
    ssim: +mean(v.slices.map((x) => x.ssim)).toFixed(4),
    dPsnrMean: +mean(dP).toFixed(3),
    dPsnrMin: +Math.min(...dP).toFixed(3),
    dSsimMean: +mean(dS).toFixed(4),
    dSsimMin: +Math.min(...dS).toFixed(4),
  };
});
console.table(rows);
const noise = seeds.length > 1
  ? (() => {
    const a = variants.find((w) =>
      w.seed === seeds[0] && w.stride === 1 && w.combine === "centre"
    )!;
    const b = variants.find((w) =>
      w.seed === seeds[1] && w.stride === 1 && w.combine === "centre"
    )!;
    const dP = a.slices.map((x, k) => b.slices[k].psnr - x.psnr);
    const dS = a.slices.map((x, k) => b.slices[k].ssim - x.ssim);
    return {
      dPsnrMean: mean(dP),
      dPsnrAbsMean: mean(dP.map(Math.abs)),
      dSsimMean: mean(dS),
      dSsimAbsMean: mean(dS.map(Math.abs)),
    };
  })()
  : null;
if (noise) console.log("seed-to-seed at stride 1 (centre):", JSON.stringify(noise));
console.log(
  `per-stack wall: median ${
    [...stackSeconds].sort((a, b) => a - b)[Math.floor(stackSeconds.length / 2)].toFixed(1)
  } s over ${stackSeconds.length} stacks; 87 slices: ${
    [1, 2, 3].map((s) => `stride ${s} ${volumeStackCentres(87, s).length} stacks`).join(", ")
  }`,
);
if (o.json) {
  await Deno.writeTextFile(
    String(o.json),
    JSON.stringify(
      {
        subject: o.subject,
        slices: nz,
        first,
        tracer,
        countsPerSlice: Number(o.counts),
        stackSeconds,
        noise,
        rows,
        perSlice: variants.map((v) => ({
          seed: v.seed,
          stride: v.stride,
          combine: v.combine,
          slices: v.slices,
        })),
      },
      null,
      1,
    ),
  );
}
