import { deepStrictEqual, ok, throws } from "node:assert/strict";
import { defaultContext } from "../../core/gpu/context.ts";
import { centredGrid } from "../../core/geometry/grid.ts";
import { lorSet } from "../../core/geometry/lors.ts";
import { JosephProjector } from "../../core/projector/joseph.ts";
import { adjointnessTest, adjointToHost, applyToHost } from "../../core/projector/operator.ts";
import {
  erf,
  tofBinEdges,
  tofKernelWeight,
  tofParameters,
  tofPsToMm,
} from "../../core/geometry/tof.ts";
import { TofListModeProjector, TofSinogramProjector } from "../../core/projector/tof.ts";
import {
  maxAbs,
  maxAbsDiff,
  randomArray,
  randomLors,
  smallGrid,
  smallScanner,
} from "../_helpers.ts";

// Bins of 12 mm × 17 cover ±102 mm along every LOR through the 72 mm test grid (half diagonal
// 51 mm + 3σ = 38 mm): the sum over bins must then be the non-TOF projection.
const TOF = { bins: 17, binWidthMm: 12, fwhmMm: 30 };

Deno.test("erf reference: known values and symmetry", () => {
  // Values from Abramowitz & Stegun, table 7.1.
  for (
    const [x, v] of [[0.5, 0.5204998778130465], [1, 0.8427007929497149], [
      2,
      0.9953222650189527,
    ], [3, 0.9999779095030014]]
  ) {
    ok(Math.abs(erf(x) - v) < 1e-14, `erf(${x}) = ${erf(x)}`);
    ok(erf(-x) === -erf(x));
  }
  ok(Math.abs(tofPsToMm(400) - 59.9584916) < 1e-6);
});

Deno.test("TOF projectors are adjoint: single rays and random LOR sets, sinogram and list mode", async () => {
  const ctx = await defaultContext();
  const grid2 = smallGrid(1);
  const grid3 = centredGrid([20, 16, 6], [3, 4, 2.5]);
  const single = lorSet([-90, -20, 0], [80, 35, 0]);
  const cases = [
    { name: "single oblique ray", lors: single, grid: grid2 },
    { name: "2d ring sinogram", lors: smallScanner().lors(), grid: grid2 },
    { name: "random oblique 3d LORs", lors: randomLors(300, 3), grid: grid3 },
  ];
  for (const c of cases) {
    const P = new TofSinogramProjector(ctx, c.lors, c.grid, { ...TOF, centreOffsetMm: 1.5 });
    // Integer and fractional (continuous-position) bins; the single ray gets a central one.
    const bins = c.lors.count === 1
      ? [8.3]
      : randomArray(c.lors.count, 11).map((v) => Math.floor(v * 17) + (v > 0.5 ? 0.3 : 0));
    const L = new TofListModeProjector(ctx, { lors: c.lors, tofBins: bins }, c.grid, TOF, {
      centreOffsetsMm: randomArray(c.lors.count, 5).map((v) => 10 * (v - 0.5)),
    });
    for (const [name, op] of [["sinogram", P], ["list mode", L]] as const) {
      for (const seed of [1, 2]) {
        const r = await adjointnessTest(ctx, op, seed);
        ok(r.forward > 0, `${c.name} ${name}: nothing projected`);
        ok(r.relativeError <= 1e-5, `${c.name} ${name}: ⟨Ax,y⟩=${r.forward} ⟨x,Aᵀy⟩=${r.back}`);
      }
    }
    P.destroy();
    L.destroy();
  }
});

Deno.test("a point source's TOF profile along one LOR is the Gaussian integral over each bin", async () => {
  const ctx = await defaultContext();
  const grid = centredGrid([32, 32, 1], [2, 2, 2]);
  // Voxel (i0, j0): the LOR runs along x through its row, so only plane i0 sees it, with weight
  // 1 (no interpolation) and path length 2 mm; its TOF position is its x (LOR midpoint x = 0).
  const i0 = 25, j0 = 12;
  const x0 = grid.originMm[0] + i0 * 2, y0 = grid.originMm[1] + j0 * 2;
  const img = new Float32Array(32 * 32);
  img[i0 + 32 * j0] = 1;
  for (const reversed of [false, true]) {
    for (const nSigmas of [3, 8]) {
      const tof = tofParameters({
        bins: 21,
        binWidthMm: 7,
        fwhmMm: 25,
        nSigmas,
        centreOffsetMm: 2,
      });
      const [a, b] = reversed ? [[100, y0, 0], [-100, y0, 0]] : [[-100, y0, 0], [100, y0, 0]];
      const P = new TofSinogramProjector(ctx, lorSet(a, b), grid, tof);
      const prof = await applyToHost(ctx, P, img);
      const s = reversed ? -x0 : x0;
      let total = 0;
      for (let t = 0; t < tof.bins; t++) {
        const [lo, hi] = tofBinEdges(tof, t);
        // Plain Gaussian integral over the bin; with 8σ truncation it is the kernel itself.
        const k = 1 / (tof.sigmaMm * Math.SQRT2);
        const gauss = 0.5 * (erf((hi - s) * k) - erf((lo - s) * k));
        const want = 2 * (nSigmas === 8 ? gauss : tofKernelWeight(tof, s, [lo, hi]));
        ok(
          Math.abs(prof[t] - want) <= 2e-6,
          `reversed=${reversed} nσ=${nSigmas} bin ${t}: ${prof[t]} vs ${want}`,
        );
        total += prof[t];
      }
      ok(Math.abs(total - 2) < 1e-5, `profile sums to ${total}, expected the chord 2 mm`);
      P.destroy();
    }
  }
});

Deno.test("summing the TOF bins reproduces the non-TOF projector (forward and back, ≤ 1e-5)", async () => {
  const ctx = await defaultContext();
  for (
    const c of [
      { lors: smallScanner().lors(), grid: smallGrid(1) },
      { lors: randomLors(300, 9), grid: centredGrid([20, 16, 6], [3, 4, 2.5]) },
    ]
  ) {
    const P = new JosephProjector(ctx, c.lors, c.grid);
    const T = new TofSinogramProjector(ctx, c.lors, c.grid, TOF);
    const x = randomArray(P.inShape.reduce((a, b) => a * b, 1), 4);
    const ref = await applyToHost(ctx, P, x);
    const tof = await applyToHost(ctx, T, x);
    const n = c.lors.count;
    const summed = new Float32Array(n);
    for (let t = 0; t < TOF.bins; t++) for (let i = 0; i < n; i++) summed[i] += tof[i + n * t];
    ok(maxAbsDiff(summed, ref) <= 1e-5 * maxAbs(ref), `forward: ${maxAbsDiff(summed, ref)}`);
    // Adjoint: the same y in every TOF bin back-projects to the non-TOF back projection.
    const y = randomArray(n, 8);
    const yt = new Float32Array(n * TOF.bins);
    for (let t = 0; t < TOF.bins; t++) yt.set(y, n * t);
    const b0 = await adjointToHost(ctx, P, y);
    const b1 = await adjointToHost(ctx, T, yt);
    ok(maxAbsDiff(b0, b1) <= 1e-5 * maxAbs(b0), `back: ${maxAbsDiff(b0, b1)}`);
    P.destroy();
    T.destroy();
  }
});

Deno.test("list-mode events equal the TOF sinogram bins of the same LOR and bin; runs are bit-identical, chunked or not", async () => {
  const ctx = await defaultContext();
  const lors = smallScanner().lors();
  const grid = smallGrid(1);
  const T = new TofSinogramProjector(ctx, lors, grid, TOF);
  const n = lors.count;
  // Every (LOR, bin) pair as an event, in a scrambled order.
  const order = Array.from({ length: n * TOF.bins }, (_, i) => i);
  const r = randomArray(order.length, 2);
  order.sort((a, b) => r[a] - r[b]);
  const ev = new Float32Array(6 * order.length);
  const bins = new Float32Array(order.length);
  order.forEach((k, e) => {
    const lor = k % n;
    ev.set(lors.endpoints.subarray(6 * lor, 6 * lor + 6), 6 * e);
    bins[e] = Math.floor(k / n);
  });
  const evLors = { count: order.length, endpoints: ev, shape: [order.length] };
  const L = new TofListModeProjector(ctx, { lors: evLors, tofBins: bins }, grid, TOF);
  const Lc = new TofListModeProjector(ctx, { lors: evLors, tofBins: bins }, grid, TOF, {
    maxLorsPerChunk: 500,
  });
  ok(Lc.chunkCount > 1);
  const x = randomArray(24 * 24, 6);
  const sino = await applyToHost(ctx, T, x);
  const lm = await applyToHost(ctx, L, x);
  order.forEach((k, e) => {
    if (lm[e] !== sino[k]) throw new Error(`event ${e}: ${lm[e]} vs sinogram ${sino[k]}`);
  });
  deepStrictEqual(await applyToHost(ctx, Lc, x), lm);
  // Back projection of the events = back projection of the sinogram they tile.
  const y = randomArray(n * TOF.bins, 3);
  const ye = Float32Array.from(order, (k) => y[k]);
  const bs = await adjointToHost(ctx, T, y);
  const bl = await adjointToHost(ctx, L, ye);
  ok(maxAbsDiff(bs, bl) <= 1e-6 * maxAbs(bs));
  deepStrictEqual(await adjointToHost(ctx, L, ye), bl);
  deepStrictEqual(await adjointToHost(ctx, Lc, ye), bl);
  for (const p of [T, L, Lc]) p.destroy();
});

Deno.test("TOF parameters and projector inputs are validated with clear errors", async () => {
  throws(() => tofParameters({ bins: 5, binWidthMm: 10 }), /exactly one of fwhmMm and fwhmPs/);
  throws(
    () => tofParameters({ bins: 5, binWidthMm: 10, fwhmMm: 50, fwhmPs: 300 }),
    /exactly one of fwhmMm and fwhmPs/,
  );
  throws(() => tofParameters({ bins: 0, binWidthMm: 10, fwhmMm: 50 }), /bins/);
  throws(
    () => tofParameters({ bins: 3, binWidthMm: 10, fwhmMm: 50, extra: 1 } as never),
    /Unrecognized key/,
  );
  const ctx = await defaultContext();
  const lors = lorSet([0, 0, 0], [1, 1, 0]);
  throws(
    () => new TofListModeProjector(ctx, { lors, tofBins: [1, 2] }, smallGrid(1), TOF),
    /2 TOF bins for 1 events/,
  );
  throws(
    () => new TofListModeProjector(ctx, { lors, tofBins: [NaN] }, smallGrid(1), TOF),
    /non-finite TOF bin/,
  );
});

Deno.test("sinograms of more than 64 TOF bins (one invocation per LOR and bin): adjoint, sum to non-TOF", async () => {
  const ctx = await defaultContext();
  const lors = smallScanner().lors();
  const grid = smallGrid(1);
  const tof = { bins: 72, binWidthMm: 2.5, fwhmMm: 30 };
  const T = new TofSinogramProjector(ctx, lors, grid, tof);
  const r = await adjointnessTest(ctx, T, 3);
  ok(r.forward > 0 && r.relativeError <= 1e-5, `⟨Ax,y⟩=${r.forward} ⟨x,Aᵀy⟩=${r.back}`);
  const P = new JosephProjector(ctx, lors, grid);
  const x = randomArray(24 * 24, 4);
  const ref = await applyToHost(ctx, P, x);
  const t = await applyToHost(ctx, T, x);
  const n = lors.count;
  const summed = new Float32Array(n);
  for (let b = 0; b < 72; b++) for (let i = 0; i < n; i++) summed[i] += t[i + n * b];
  ok(maxAbsDiff(summed, ref) <= 1e-5 * maxAbs(ref), `forward: ${maxAbsDiff(summed, ref)}`);
  T.destroy();
  P.destroy();
});
