import { ok as assert, throws as assertThrows } from "node:assert/strict";
import { defaultContext } from "../../core/gpu/context.ts";
import { centredGrid } from "../../core/geometry/grid.ts";
import { GaussianFilter, gaussianTaps } from "../../core/projector/gaussian.ts";
import { adjointnessTest, applyToHost } from "../../core/projector/operator.ts";
import { assertClose, maxAbsDiff, randomArray } from "../_helpers.ts";

Deno.test("Gaussian taps are normalised and have the requested FWHM", () => {
  const taps = gaussianTaps(6, 0.5); // σ = 2.548 mm = 5.1 voxels: well sampled
  let s = 0;
  let m2 = 0;
  const r = (taps.length - 1) / 2;
  taps.forEach((w, i) => {
    s += w;
    m2 += w * ((i - r) * 0.5) ** 2;
  });
  assertClose(s, 1, 1e-6, "sum");
  const fwhm = Math.sqrt(m2) * 2 * Math.sqrt(2 * Math.log(2));
  assertClose(fwhm, 6, 0.02, "fwhm from the second moment");
  assertThrows(() => gaussianTaps(-1, 1), RangeError);
});

Deno.test("Gaussian filter matches a plain separable convolution and is self-adjoint", async () => {
  const ctx = await defaultContext();
  const grid = centredGrid([12, 10, 6], [2, 2.5, 3]);
  const fwhm: [number, number, number] = [4, 5, 6];
  const G = new GaussianFilter(ctx, grid, fwhm);
  const x = randomArray(12 * 10 * 6, 5);
  const out = await applyToHost(ctx, G, x);
  // reference: three 1-D zero-padded convolutions in float64
  let cur = Float64Array.from(x);
  for (let axis = 0; axis < 3; axis++) {
    const taps = gaussianTaps(fwhm[axis], grid.voxelSizeMm[axis]);
    const r = (taps.length - 1) / 2;
    const next = new Float64Array(cur.length);
    const [nx, ny, nz] = grid.shape;
    const stride = [1, nx, nx * ny][axis];
    for (let k = 0; k < nz; k++) {
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const pos = [i, j, k][axis];
          const idx = i + nx * (j + ny * k);
          let acc = 0;
          for (let t = -r; t <= r; t++) {
            const p = pos + t;
            if (p >= 0 && p < grid.shape[axis]) acc += taps[t + r] * cur[idx + t * stride];
          }
          next[idx] = acc;
        }
      }
    }
    cur = next;
  }
  assert(maxAbsDiff(out, cur) < 1e-6, `max diff ${maxAbsDiff(out, cur)}`);
  const r = await adjointnessTest(ctx, G, 3);
  assert(r.relativeError < 1e-6, `adjointness ${r.relativeError}`);
});
