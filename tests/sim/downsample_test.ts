import { ok, throws } from "node:assert/strict";
import { centredGrid, type ImageGrid, imageGrid } from "../../core/geometry/grid.ts";
import { axisWeights, boxAverage } from "../../core/sim/downsample.ts";
import { labelVolume } from "../../core/sim/labels.ts";
import { simulateStudy } from "../../core/sim/simulate.ts";
import { MR_T1_VALUES, nominalTracerStudy, TABLE_STRIDE } from "../../core/sim/tracers.ts";
import { maxAbsDiff, randomArray } from "../_helpers.ts";
import { tinyHead } from "./_util.ts";

/** Brute force: every (fine, coarse) pair's overlap volume / coarse voxel volume. */
function bruteAverage(
  v: Float32Array,
  f: ImageGrid,
  c: ImageGrid,
  shift: [number, number, number],
): Float32Array {
  const out = new Float32Array(c.shape[0] * c.shape[1] * c.shape[2]);
  const ov = (a0: number, a1: number, b0: number, b1: number) =>
    Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
  const lo = (g: ImageGrid, a: number, i: number, s = 0) =>
    g.originMm[a] + s + (i - 0.5) * g.voxelSizeMm[a];
  const vc = c.voxelSizeMm[0] * c.voxelSizeMm[1] * c.voxelSizeMm[2];
  for (let k = 0; k < f.shape[2]; k++) {
    for (let j = 0; j < f.shape[1]; j++) {
      for (let i = 0; i < f.shape[0]; i++) {
        const val = v[i + f.shape[0] * (j + f.shape[1] * k)];
        const fi = [i, j, k];
        for (let t = 0; t < out.length; t++) {
          const ci = [
            t % c.shape[0],
            Math.floor(t / c.shape[0]) % c.shape[1],
            Math.floor(t / (c.shape[0] * c.shape[1])),
          ];
          let w = 1;
          for (let a = 0; a < 3; a++) {
            const a0 = lo(f, a, fi[a], shift[a]);
            const b0 = lo(c, a, ci[a]);
            w *= ov(a0, a0 + f.voxelSizeMm[a], b0, b0 + c.voxelSizeMm[a]);
          }
          out[t] += (val * w) / vc;
        }
      }
    }
  }
  return out;
}

Deno.test("downsample: box average equals the brute-force overlap average (non-integer ratios)", () => {
  const f = imageGrid({
    shape: [13, 11, 7],
    voxelSizeMm: [0.5, 0.7, 0.9],
    originMm: [-3, -3.5, -2.7],
  });
  const c = imageGrid({
    shape: [5, 4, 3],
    voxelSizeMm: [1.3, 2.1, 2.0],
    originMm: [-2.6, -3.1, -2],
  });
  const v = randomArray(13 * 11 * 7, 3);
  const shift: [number, number, number] = [0.37, -0.2, 0.55];
  const a = boxAverage(v, f, c, shift);
  const b = bruteAverage(v, f, c, shift);
  ok(maxAbsDiff(a, b) < 1e-5, `max diff ${maxAbsDiff(a, b)}`);
});

Deno.test("downsample: total activity is conserved when the fine volume lies inside", () => {
  const f = centredGrid([40, 36, 30], [0.5, 0.5, 0.5]);
  const c = centredGrid([12, 12, 10], [2.086, 2.086, 2.086]);
  const v = randomArray(40 * 36 * 30, 11);
  const out = boxAverage(v, f, c, [0.3, -0.4, 0.1]);
  const vf = 0.125, vc = 2.086 ** 3;
  let sf = 0, sc = 0;
  for (const x of v) sf += x * vf;
  for (const x of out) sc += x * vc;
  ok(Math.abs(sc / sf - 1) < 1e-6, `total ${sc} vs ${sf}`);
  // Axis weights of every fully-inside fine voxel sum to fine/coarse size.
  const w = axisWeights({ n: 40, origin: -9.75, size: 0.5 }, {
    n: 12,
    origin: -11.473,
    size: 2.086,
  });
  for (let i = 0; i < 40; i++) ok(Math.abs(w.w0[i] + w.w1[i] - 0.5 / 2.086) < 1e-6);
  throws(
    () => axisWeights({ n: 4, origin: 0, size: 3 }, { n: 2, origin: 0, size: 2 }),
    /fine voxels no larger than the output voxels/,
  );
});

Deno.test("simulate: activity, MR, μ and label fractions equal the box average of the fine volumes", () => {
  const head = tinyHead(40, 30);
  const grid = centredGrid([22, 22, 16], [2.086, 2.086, 2.086]);
  // Grey matter's uptake depends on the region; replace it by label 9 for the exact comparison.
  const vol = labelVolume(Uint8Array.from(head.labels, (l) => (l === 2 ? 9 : l)), head.grid);
  const s = simulateStudy(head, {
    grid,
    tracers: ["fdg"],
    variability: false,
    texture: { amplitude: 0 },
    mr: { biasAmplitude: 0, noiseSd: 0 },
    placement: "none",
  });
  const s9 = simulateStudy(vol, {
    grid,
    tracers: ["fdg"],
    variability: false,
    texture: { amplitude: 0 },
    mr: false,
    placement: "none",
    frame: { cx: 0, cy: 0, hx: 20, hy: 20, zTop: 15 },
  });
  // Independent reference: fine-grid volumes from the nominal tables, then boxAverage.
  const table = nominalTracerStudy("fdg").table;
  ok(table[2] === 128 && table[3] === 32 && table[TABLE_STRIDE + 3] === 32);
  const fineAct = Float32Array.from(vol.labels, (l) => table[l]);
  const ref = boxAverage(fineAct, vol.grid, grid);
  const act = s9.activity.fdg!;
  ok(maxAbsDiff(act, ref) < 1e-3, `activity diff ${maxAbsDiff(act, ref)}`);
  let sf = 0, sc = 0;
  for (const x of fineAct) sf += x;
  for (const x of act) sc += x * 2.086 ** 3;
  ok(Math.abs(sc / sf - 1) < 1e-5, `total activity ${sc} vs ${sf}`);
  const mrRef = boxAverage(Float32Array.from(head.labels, (l) => MR_T1_VALUES[l]), head.grid, grid);
  ok(maxAbsDiff(s.mr!, mrRef) < 1e-5, `MR diff ${maxAbsDiff(s.mr!, mrRef)}`);
  const gm = boxAverage(Float32Array.from(head.labels, (l) => (l === 2 ? 1 : 0)), head.grid, grid);
  ok(maxAbsDiff(s.labelFractions![2], gm) < 1e-5);
  const mu = boxAverage(
    Float32Array.from(head.labels, (l) => (l === 0 ? 0 : l === 7 ? 0.013 : 0.00975)),
    head.grid,
    grid,
  );
  ok(maxAbsDiff(s.mu!, mu) < 1e-7);
  // The total fine-voxel volume of the tissue labels is conserved by the fractions.
  let tissue = 0, frac = 0;
  for (const l of head.labels) if (l > 0) tissue += 1;
  for (let l = 1; l < 12; l++) for (const f of s.labelFractions![l]) frac += f * 2.086 ** 3;
  ok(Math.abs(frac / tissue - 1) < 1e-5, `tissue volume ${frac} vs ${tissue}`);
});

Deno.test("simulate: activity is conserved with texture and variability on (fine total from the same tables)", () => {
  // The texture multiplies per fine voxel, so compare totals against a plain fine-grid sum of the
  // same study parameters: a uniform label volume with texture off but variability on.
  const g = centredGrid([30, 30, 20], [0.5, 0.5, 0.5]);
  const labels = new Uint8Array(30 * 30 * 20).fill(3);
  labels[0] = 5;
  const vol = labelVolume(labels, g);
  const grid = centredGrid([8, 8, 6], [2.086, 2.086, 2.086]);
  const s = simulateStudy(vol, {
    grid,
    tracers: ["fdg"],
    seed: 5,
    texture: { amplitude: 0 },
    mr: false,
  });
  const t = s.studies.fdg!.table;
  let sf = 0;
  for (const l of labels) sf += t[l] * 0.125;
  let sc = 0;
  for (const x of s.activity.fdg!) sc += x * 2.086 ** 3;
  ok(Math.abs(sc / sf - 1) < 1e-3, `total ${sc} vs ${sf}`);
});
