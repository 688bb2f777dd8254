import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import {
  backgroundVariability,
  contrastRecovery,
  ensembleStats,
  nemaIec,
  roiMean,
  roiStats,
} from "../../core/metrics/roi.ts";
import { assertClose } from "../_helpers.ts";

const f = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/metrics/roi_metrics.json", import.meta.url)),
);
const TOL = 1e-9;
const image = Float32Array.from(f.image as number[]);
const lesion = Uint8Array.from(f.lesion as number[]);
const background = Uint8Array.from(f.background as number[]);
const rois = (f.backgroundRois as number[][]).map((r) => Uint8Array.from(r));

Deno.test("ROI mean, std and CoV match NumPy", () => {
  const l = roiStats(image, lesion);
  assertClose(l.mean, f.lesionMean, TOL, "lesion mean");
  assertClose(l.std, f.lesionStd, TOL, "lesion std");
  const b = roiStats(image, background);
  assertClose(b.mean, f.backgroundMean, TOL, "background mean");
  assertClose(b.std, f.backgroundStd, TOL, "background std");
  assertClose(b.cov, f.backgroundCov, TOL, "background CoV");
  assertClose(roiMean(image, lesion), f.lesionMean, TOL);
});

Deno.test("contrast recovery from a ratio or a truth image matches NumPy", () => {
  assertClose(contrastRecovery(image, { lesion, background, trueRatio: 2.5 }), f.crc, TOL);
  assertClose(contrastRecovery(image, { lesion, background, truth: f.truth }), f.crc, TOL);
  // the truth itself recovers its contrast fully
  assertClose(contrastRecovery(f.truth, { lesion, background, truth: f.truth }), 1, 1e-12);
});

Deno.test("background variability and NEMA contrast match NumPy", () => {
  const bv = backgroundVariability(image, rois);
  bv.roiMeans.forEach((m, k) => assertClose(m, f.roiMeans[k], TOL, `ROI ${k}`));
  assertClose(bv.std, f.bvStd, TOL, "std of ROI means");
  assertClose(bv.variability, f.bv, TOL, "variability");
  const [hot, cold] = nemaIec(image, {
    spheres: [{ name: "hot", mask: lesion, hot: true }, { name: "cold", mask: lesion, hot: false }],
    backgroundRois: rois,
    activityRatio: 2.5,
  });
  assertClose(hot.contrastPercent, f.nemaHotContrastPercent, TOL, "hot contrast");
  assertClose(cold.contrastPercent, f.nemaColdContrastPercent, TOL, "cold contrast");
  assertClose(hot.backgroundVariabilityPercent, f.nemaBvPercent, TOL, "NEMA BV");
});

Deno.test("ensemble mean, std, bias and their ROI summaries match NumPy", () => {
  const e = f.ensemble;
  const s = ensembleStats(e.realisations, { truth: e.truth, mask: e.mask });
  assertEquals(s.count, 5);
  s.mean.forEach((v, i) => assertClose(v, e.mean[i], TOL, `mean ${i}`));
  s.std.forEach((v, i) => assertClose(v, e.std[i], TOL, `std ${i}`));
  s.bias!.forEach((v, i) => assertClose(v, e.mean[i] - e.truth[i], TOL, `bias ${i}`));
  assertClose(s.summary.biasPercent!, e.biasPercent, TOL, "bias %");
  assertClose(s.summary.absBiasPercent!, e.absBiasPercent, TOL, "|bias| %");
  assertClose(s.summary.stdPercent, e.stdPercent, TOL, "std %");
  assertClose(s.summary.roiMeanStdPercent, e.roiMeanStdPercent, TOL, "ROI-mean std %");
});

Deno.test("ROI metrics reject empty or mismatched masks and too few ROIs/realisations", () => {
  throws(() => roiStats([1, 2], [0, 0]), /mask is empty/);
  throws(() => roiMean([1, 2], [1]), /mask has 1 voxels but the image has 2/);
  throws(() => backgroundVariability([1, 2], [[1, 0]]), /at least 2/);
  throws(() => ensembleStats([[1, 2]]), /at least 2/);
  throws(() => ensembleStats([[1, 2], [1]]), /realisation 1 has 1 voxels/);
  throws(
    () => contrastRecovery([1, 2], { lesion: [1, 0], background: [0, 1] }),
    /trueRatio or truth/,
  );
  throws(
    () => nemaIec([1, 2], { spheres: [{ mask: [1, 0], hot: true }], activityRatio: 4 }),
    /background ROIs/,
  );
});
