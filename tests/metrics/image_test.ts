import { ok as assert, throws } from "node:assert/strict";
import { imageMetrics, mse, nrmse, psnr, ssim, ssimSlices } from "../../core/metrics/image.ts";
import { assertClose } from "../_helpers.ts";

interface Case {
  name: string;
  shape: [number, number, number];
  truth: number[];
  test: number[];
  dataRange: number;
  mse: number;
  psnr: number;
  nrmse: Record<"euclidean" | "min-max" | "mean", number>;
  ssim2d?: number;
  ssim2dSlices?: number[];
  ssim3d?: number;
}

const fixture = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/metrics/image_metrics.json", import.meta.url)),
) as { cases: Case[] };

const TOL = 1e-9;

for (const c of fixture.cases) {
  Deno.test(`MSE, PSNR and NRMSE match scikit-image: ${c.name}`, () => {
    const truth = Float32Array.from(c.truth), test = Float32Array.from(c.test);
    assertClose(mse(truth, test), c.mse, TOL, "mse");
    assertClose(psnr(truth, test, { dataRange: c.dataRange }), c.psnr, TOL, "psnr");
    if (!c.name.includes("range")) {
      assertClose(psnr(truth, test), c.psnr, TOL, "psnr with the truth's range");
    }
    for (const norm of ["euclidean", "min-max", "mean"] as const) {
      assertClose(nrmse(truth, test, { normalization: norm }), c.nrmse[norm], TOL, norm);
    }
  });
  if (c.ssim2d !== undefined) {
    Deno.test(`2-D Gaussian SSIM per slice matches scikit-image: ${c.name}`, () => {
      const opts = { shape: c.shape, dataRange: c.dataRange };
      assertClose(ssim(c.truth, c.test, opts), c.ssim2d!, TOL, "ssim 2d");
      const all = imageMetrics(c.truth, c.test, opts);
      assertClose(all.ssim, c.ssim2d!, TOL, "imageMetrics ssim");
      assertClose(all.psnr, c.psnr, TOL, "imageMetrics psnr");
      assertClose(all.nrmse, c.nrmse.euclidean, TOL, "imageMetrics nrmse");
      assertClose(all.mse, c.mse, TOL, "imageMetrics mse");
      ssimSlices(c.truth, c.test, opts).forEach((s, k) =>
        assertClose(s, c.ssim2dSlices![k], TOL, `slice ${k}`)
      );
    });
  }
  if (c.ssim3d !== undefined) {
    Deno.test(`3-D Gaussian SSIM matches scikit-image: ${c.name}`, () => {
      const s = ssim(c.truth, c.test, { shape: c.shape, dataRange: c.dataRange, mode: "3d" });
      assertClose(s, c.ssim3d!, TOL, "ssim 3d");
    });
  }
}

Deno.test("identical images give SSIM 1, PSNR ∞ and NRMSE 0", () => {
  const a = Float32Array.from({ length: 12 * 12 }, (_, i) => Math.sin(i));
  assertClose(ssim(a, a, { shape: [12, 12] }), 1, 1e-12);
  assert(psnr(a, a) === Infinity);
  assert(nrmse(a, a) === 0);
});

Deno.test("masked PSNR uses only the masked voxels and their range", () => {
  const truth = [0, 10, 2, 4];
  const test = [5, 10, 3, 4];
  const mask = [0, 1, 1, 1];
  // masked: errors 0, 1, 0 → MSE 1/3, range 10 − 2 = 8
  assertClose(psnr(truth, test, { mask }), 10 * Math.log10(64 * 3), 1e-12);
});

Deno.test("metrics reject mismatched shapes, empty masks and too-small SSIM windows", () => {
  throws(() => mse([1, 2], [1]), /truth has 2 values but the test image has 1/);
  throws(() => psnr([1, 2], [1, 2], { mask: [0, 0] }), /mask is empty/);
  throws(() => psnr([1, 1], [1, 2]), /data range is 0/);
  throws(() => ssim(new Float32Array(100), new Float32Array(100), { shape: [10, 10] }), /window/);
  throws(
    () => ssim(new Float32Array(100), new Float32Array(100), { shape: [11, 11] }),
    /holds 121/,
  );
});
