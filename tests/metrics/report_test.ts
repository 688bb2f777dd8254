import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { METRICS_FORMAT, reconMetrics, ssim } from "../../core/metrics/mod.ts";

Deno.test("reconMetrics: statistics, log-likelihood and scores against a reference by hand", () => {
  const truth = [0, 1, 2, 3];
  const image = [0, 1, 2, 4];
  const m = reconMetrics({
    method: "OSEM",
    params: { iterations: 2 },
    image,
    shape: [2, 2, 1],
    logLikelihood: -12.5,
    reference: { name: "truth.nii", data: truth, shape: [2, 2, 1] },
    units: "kBq/mL",
  });
  assertEquals(m.format, METRICS_FORMAT);
  assertEquals([m.method, m.params, m.shape, m.units], [
    "OSEM",
    { iterations: 2 },
    [2, 2, 1],
    "kBq/mL",
  ]);
  assertEquals(m.image, { min: 0, max: 4, mean: 7 / 4, sum: 7 });
  assertEquals(m.logLikelihood, -12.5);
  const r = m.reference!;
  // MSE = 1/4; data range of the truth = 3; NRMSE = √MSE / √mean(truth²) = 0.5 / √3.5.
  assertEquals(r.mse, 0.25);
  assertEquals(r.dataRange, 3);
  assert(Math.abs(r.psnrDb - 10 * Math.log10(9 / 0.25)) < 1e-12);
  assert(Math.abs(r.nrmse - 0.5 / Math.sqrt(3.5)) < 1e-12);
  assertEquals(r.ssim, null); // 2 × 2 is smaller than SSIM's 11-voxel window

  // Round-trips through JSON unchanged.
  assertEquals(JSON.parse(JSON.stringify(m)), m);
});

Deno.test("reconMetrics: SSIM over axial slices of at least 11 × 11 voxels", () => {
  const truth = Float64Array.from({ length: 12 * 11 * 2 }, (_, i) => Math.sin(i / 5) + 1);
  const image = truth.map((v, i) => v + 0.1 * Math.cos(i));
  const m = reconMetrics({
    method: "OSEM",
    image,
    shape: [12, 11, 2],
    reference: { name: "truth.nii", data: truth, shape: [12, 11, 2] },
  });
  const range = m.reference!.dataRange;
  assertEquals(m.reference!.ssim, ssim(truth, image, { shape: [12, 11, 2], dataRange: range }));
  assert(m.reference!.ssim! > 0.5 && m.reference!.ssim! < 1);
});

Deno.test("reconMetrics: no reference, or one of another shape (noted, not scored); bad shape", () => {
  const m = reconMetrics({ method: "MAP", image: [1, 2], shape: [2, 1, 1] });
  assertEquals([m.reference, m.logLikelihood, m.units], [null, null, "a.u."]);
  const other = reconMetrics({
    method: "MAP",
    image: [1, 2],
    shape: [2, 1, 1],
    reference: { name: "truth.nii", data: [1, 2, 3, 4], shape: [4, 1, 1] },
  });
  assertEquals(other.reference, null);
  assertEquals(other.referenceNote, "truth.nii has shape [4,1,1], the image [2,1,1]: not scored");
  throws(() => reconMetrics({ method: "x", image: [1], shape: [2, 1, 1] }), /holds 2 voxels/);
});
