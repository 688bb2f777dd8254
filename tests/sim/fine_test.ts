import { ok as assert, throws as assertThrows } from "node:assert/strict";
import { centredGrid } from "../../core/geometry/grid.ts";
import { lorSet } from "../../core/geometry/lors.ts";
import { defaultContext } from "../../core/gpu/context.ts";
import { JosephProjector } from "../../core/projector/joseph.ts";
import { applyToHost } from "../../core/projector/operator.ts";
import { fineLineIntegrals, radialBlur, simulateFineCounts } from "../../core/sim/fine.ts";
import { smallScanner } from "../_helpers.ts";

/** A disk of radius r (mm) and value v on a 2-D grid, voxels counted by their centres. */
function disk(n: number, voxel: number, r: number, v = 1): Float32Array {
  const img = new Float32Array(n * n);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < n; i++) {
      const x = (i - (n - 1) / 2) * voxel, y = (j - (n - 1) / 2) * voxel;
      if (x * x + y * y <= r * r) img[i + n * j] = v;
    }
  }
  return img;
}

Deno.test("fine line integrals: chords of a disk and a box, attenuation exp(−μL), axial averaging", () => {
  // 0.25 mm voxels, disk of radius 30 mm: chord length 2√(R² − b²) at offset b
  const n = 321, h = 0.25, R = 30;
  const grid = centredGrid([n, n, 1], [h, h, 2]);
  const img = disk(n, h, R);
  const offsets = [0, 10, 20, 27];
  const start: number[] = [], end: number[] = [];
  for (const b of offsets) start.push(-100, b, 0), end.push(100, b, 0);
  // one oblique chord through the centre, 30° (no axis alignment to help)
  const c = Math.cos(Math.PI / 6), s = Math.sin(Math.PI / 6);
  start.push(-100 * c, -100 * s, 0), end.push(100 * c, 100 * s, 0);
  const lors = lorSet(start, end);
  const { integrals, attenuation } = fineLineIntegrals([img], grid, lors, {
    stepMm: 0.05,
    mu: Float32Array.from(img, (v) => v * 0.0096),
  });
  const want = [...offsets.map((b) => 2 * Math.sqrt(R * R - b * b)), 2 * R];
  for (let l = 0; l < want.length; l++) {
    // with μ the activity integral of a line is weighted by its attenuation factor exp(−μL)
    const rel = Math.abs(integrals[0][l] - want[l] * Math.exp(-0.0096 * want[l])) / want[l];
    // the disk is drawn with 0.25 mm voxels: its edge is uncertain by a fraction of a voxel
    assert(rel < 0.01, `chord ${l}: ${integrals[0][l]} vs ${want[l]} (${rel})`);
    // with attenuation, ∫activity·exp(−∫μ) for the same line and exp(−μL) returned
    assert(Math.abs(attenuation![l] - Math.exp(-0.0096 * want[l])) < 0.003, `attenuation ${l}`);
  }

  // a box of 40 voxels of 0.5 mm along x: trilinear ramps at both ends add half a voxel each,
  // so the integral is exactly 40 × 0.5 = 20 mm
  const g2 = centredGrid([100, 9, 1], [0.5, 0.5, 2]);
  const box = new Float32Array(100 * 9);
  for (let j = 0; j < 9; j++) for (let i = 30; i < 70; i++) box[i + 100 * j] = 2;
  const along = fineLineIntegrals([box], g2, lorSet([-40, 0, 0], [40, 0, 0]), { stepMm: 0.01 });
  assert(Math.abs(along.integrals[0][0] - 40) < 1e-3, `box ${along.integrals[0][0]}`);

  // axial width: a plane of 4 fine z slices, only the lower 2 filled → the mean over sub-lines
  // spread over the 4 slices' extent is half the full value
  const g3 = centredGrid([100, 9, 6], [0.5, 0.5, 0.5]);
  const slab = new Float32Array(100 * 9 * 6);
  for (let k = 0; k < 6; k++) {
    for (let j = 0; j < 9; j++) {
      for (let i = 30; i < 70; i++) slab[i + 100 * (j + 9 * k)] = k < 3 ? 1 : 0;
    }
  }
  const full = fineLineIntegrals([slab], g3, lorSet([-40, 0, -0.75], [40, 0, -0.75]), {
    stepMm: 0.01,
  });
  assert(Math.abs(full.integrals[0][0] - 20) < 1e-3, `full ${full.integrals[0][0]}`);
  // sub-lines at z = ±0.25, ±0.75 around 0: two in the filled half (z < 0 ... slices 0–2 end at
  // z = −0.25 + ramp); the symmetric layout gives exactly half by the trilinear ramp symmetry
  const half = fineLineIntegrals([slab], g3, lorSet([-40, 0, 0], [40, 0, 0]), {
    stepMm: 0.01,
    axialWidthMm: 2,
    axialSamples: 4,
  });
  assert(Math.abs(half.integrals[0][0] - 10) < 1e-3, `half ${half.integrals[0][0]}`);

  assertThrows(() => fineLineIntegrals([new Float32Array(3)], g2, lorSet([0, 0, 0], [1, 0, 0])));
});

Deno.test("fine line integrals agree with petrel's Joseph projector at matched sampling", async () => {
  // the same 2 mm image seen by both: a smooth blob (Joseph and the line integral of the
  // trilinear interpolant differ at O(h²) for smooth images)
  const ctx = await defaultContext();
  const scanner = smallScanner();
  const grid = centredGrid([48, 48, 1], [2, 2, 4]);
  const img = new Float32Array(48 * 48);
  for (let j = 0; j < 48; j++) {
    for (let i = 0; i < 48; i++) {
      const x = (i - 23.5) * 2 - 6, y = (j - 23.5) * 2 + 4;
      img[i + 48 * j] = Math.exp(-(x * x + y * y) / (2 * 12 * 12)) +
        0.5 * Math.exp(-((x + 20) ** 2 + (y - 10) ** 2) / (2 * 6 * 6));
    }
  }
  const lors = scanner.lors();
  const P = new JosephProjector(ctx, lors, grid);
  const joseph = await applyToHost(ctx, P, img);
  const fine = fineLineIntegrals([img], grid, lors, { stepMm: 0.1 }).integrals[0];
  let num = 0, den = 0;
  for (let i = 0; i < joseph.length; i++) {
    num += (fine[i] - joseph[i]) ** 2;
    den += joseph[i] ** 2;
  }
  const rel = Math.sqrt(num / den);
  assert(rel < 0.02, `relative L2 difference fine vs Joseph ${rel}`);
  let sf = 0, sj = 0;
  for (let i = 0; i < joseph.length; i++) (sf += fine[i], sj += joseph[i]);
  assert(Math.abs(sf / sj - 1) < 0.01, `totals ${sf} vs ${sj}`);
});

Deno.test("simulateFineCounts: counts scaled to trueCounts, additive fractions, blur keeps totals, seeded", () => {
  const scanner = smallScanner();
  const grid = centredGrid([96, 96, 1], [1, 1, 4]);
  const act = disk(96, 1, 25, 1);
  const opts = {
    activity: act,
    mu: Float32Array.from(act, (v) => v * 0.0096),
    grid,
    lors: scanner.lors(),
    radialBlurFwhmBins: 2,
    trueCounts: 2e5,
    randomsFraction: 0.2,
    scatterFraction: 0.3,
    seed: 7,
  };
  const a = simulateFineCounts(opts);
  let t = 0, add = 0, p = 0;
  for (let i = 0; i < a.trues.length; i++) {
    (t += a.trues[i], add += a.additive[i], p += a.prompts[i]);
  }
  assert(Math.abs(t / 2e5 - 1) < 1e-4, `trues ${t}`);
  // prompts = trues / (1 − 0.5): randoms + scatter are half the expected prompts
  assert(Math.abs(add / 2e5 - 1) < 1e-4, `additive ${add}`);
  assert(Math.abs(p / 4e5 - 1) < 0.01, `prompts ${p}`);
  assert(a.attenuation.every((v) => v > 0 && v <= 1) && a.scale > 0);
  const b = simulateFineCounts(opts);
  assert(a.prompts.every((v, i) => v === b.prompts[i]), "seeded");
  // precomputed integrals (one pass for many realisations) give the same data
  const li = fineLineIntegrals([act], grid, opts.lors, { mu: opts.mu });
  const c = simulateFineCounts({
    ...opts,
    lineIntegrals: { integral: li.integrals[0], attenuation: li.attenuation },
  });
  assert(c.prompts.every((v, i) => v === a.prompts[i]) && c.scale === a.scale, "precomputed");
  // the radial blur keeps each row's total away from the edges
  const row = new Float32Array(33);
  row[16] = 1;
  const br = radialBlur(row, 33, 3);
  assert(Math.abs(br.reduce((x, y) => x + y, 0) - 1) < 1e-6 && br[16] < 1 && br[15] > 0);
  assertThrows(() => simulateFineCounts({ ...opts, randomsFraction: 0.7, scatterFraction: 0.3 }));
});
