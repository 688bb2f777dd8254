import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { centredGrid } from "../../core/geometry/grid.ts";
import { Label } from "../../core/sim/labels.ts";
import { brainPhantomLabels, brainPhantomStudy } from "../../core/sim/phantom_brain.ts";
import { simulateStudy } from "../../core/sim/simulate.ts";
import { Region, regionOf } from "../../core/sim/tracers.ts";
import { roiMean, tinyHead } from "./_util.ts";

const ALL = ["fdg", "amyloid_neg", "amyloid_pos", "tau"] as const;

Deno.test("simulate: the same seed gives identical volumes, another seed different ones", () => {
  const a = brainPhantomStudy({ dims: 2, seed: 3, tracers: ALL, lesions: 2 });
  const b = brainPhantomStudy({ dims: 2, seed: 3, tracers: ALL, lesions: 2 });
  const c = brainPhantomStudy({ dims: 2, seed: 4, tracers: ALL, lesions: 2 });
  for (const t of ALL) {
    deepEqual(a.activity[t], b.activity[t]);
    ok(a.activity[t]!.some((v, i) => v !== c.activity[t]![i]), `${t} independent of the seed`);
  }
  deepEqual(a.mr, b.mr);
  deepEqual(a.mu, b.mu);
  deepEqual(a.labels, b.labels);
  deepEqual(a.lesions, b.lesions);
  // A tracer's volume does not depend on which other tracers were simulated with it.
  const only = brainPhantomStudy({ dims: 2, seed: 3, tracers: ["amyloid_pos"], lesions: 2 });
  deepEqual(only.activity.amyloid_pos, a.activity.amyloid_pos);
  // The anatomy itself varies with the seed.
  const la = brainPhantomLabels({ dims: 2, seed: 1 }).volume.labels;
  const lb = brainPhantomLabels({ dims: 2, seed: 2 }).volume.labels;
  ok(la.some((v, i) => v !== lb[i]));
});

Deno.test("simulate: tracer and MR contrasts hold in ROI means (2D phantom)", () => {
  const s = brainPhantomStudy({ dims: 2, seed: 5, tracers: ALL });
  const gm = s.labelFractions![Label.GREY_MATTER];
  const wm = s.labelFractions![Label.WHITE_MATTER];
  const csf = s.labelFractions![Label.CSF];
  const fdg = s.activity.fdg!;
  const ratio = roiMean(fdg, gm, 0.9) / roiMean(fdg, wm, 0.95);
  // Nominal 4, with ±6 % per-label and ±5 % per-region variability and an 8 % texture.
  ok(ratio > 3 && ratio < 5.2, `FDG GM/WM ${ratio}`);
  ok(roiMean(fdg, csf, 0.9) < 0.25 * roiMean(fdg, wm, 0.95), "FDG CSF ≈ 0");
  const neg = s.activity.amyloid_neg!;
  ok(roiMean(neg, wm, 0.95) > 1.3 * roiMean(neg, gm, 0.9), "amyloid-negative: WM above GM");
  const pos = s.activity.amyloid_pos!;
  const posRatio = roiMean(pos, gm, 0.9) / roiMean(pos, wm, 0.95);
  const negRatio = roiMean(neg, gm, 0.9) / roiMean(neg, wm, 0.95);
  ok(posRatio > 1.3 * negRatio, `amyloid-positive GM/WM ${posRatio} vs negative ${negRatio}`);
  const mr = s.mr!;
  const mWm = roiMean(mr, wm, 0.95), mGm = roiMean(mr, gm, 0.9), mCsf = roiMean(mr, csf, 0.9);
  ok(mWm > 1.2 * mGm && mGm > 2 * mCsf, `MR WM ${mWm} > GM ${mGm} > CSF ${mCsf}`);
  const skull = s.labelFractions![Label.SKULL];
  const muSkull = roiMean(s.mu!, skull, 0.9), muWm = roiMean(s.mu!, wm, 0.95);
  ok(Math.abs(muSkull - 0.013) < 5e-4 && Math.abs(muWm - 0.00975) < 1e-6, `μ ${muSkull}, ${muWm}`);
});

Deno.test("simulate: amyloid-positive raises cortex region by region, tau is focal (3D phantom)", () => {
  const grid = centredGrid([72, 88, 76], [2.5, 2.5, 2.5]);
  const s = brainPhantomStudy({ dims: 3, voxelMm: 2, seed: 8, grid, tracers: ALL });
  const gm = s.labelFractions![Label.GREY_MATTER];
  const regionMean = (v: Float32Array, r: number) => {
    const m = Float32Array.from(s.regions!, (x, i) => (x === r && gm[i] > 0.6 ? 1 : 0));
    return roiMean(v, m, 1);
  };
  const pos = s.activity.amyloid_pos!, neg = s.activity.amyloid_neg!;
  const st = s.studies.amyloid_pos!;
  for (const r of [Region.FRONTAL, Region.PARIETAL, Region.PRECUNEUS_PCC]) {
    // Normalised by each tracer's own white matter (global scales differ between studies).
    const wm = s.labelFractions![Label.WHITE_MATTER];
    const gain = (regionMean(pos, r) / roiMean(pos, wm, 0.95)) /
      (regionMean(neg, r) / roiMean(neg, wm, 0.95));
    ok(gain > 1.25, `region ${r}: amyloid-positive / negative ${gain}`);
  }
  // Cerebellar grey matter is spared.
  ok(
    st.regionFactors[Region.CEREBELLUM] < 1.2,
    `cerebellum factor ${st.regionFactors[Region.CEREBELLUM]}`,
  );
  ok(st.regionFactors[Region.FRONTAL] > 1.3, `frontal factor ${st.regionFactors[Region.FRONTAL]}`);
  // Tau: medial temporal grey matter above frontal, and blobs exist.
  const tau = s.activity.tau!;
  ok(regionMean(tau, Region.MEDIAL_TEMPORAL) > 1.4 * regionMean(tau, Region.FRONTAL), "tau MTL");
  ok(s.blobs.length >= 3 && s.blobs.every((b) => b.tracer === "tau"));
});

Deno.test("simulate: a lesion invisible in the MR changes the PET only", () => {
  const vol = tinyHead(48, 40);
  const grid = centredGrid([16, 16, 14], [2.086, 2.086, 2.086]);
  const base = {
    grid,
    tracers: ["fdg"] as const,
    seed: 2,
    placement: "none" as const,
    mr: { noiseSd: 0 },
  };
  const lesion = { centreMm: [8, 0, 0] as [number, number, number], radiusMm: 5, petFactor: 3 };
  const a = simulateStudy(vol, base);
  const b = simulateStudy(vol, { ...base, lesions: [lesion] });
  const c = simulateStudy(vol, { ...base, lesions: [{ ...lesion, mrFactor: 0.5 }] });
  deepEqual(b.mr, a.mr);
  ok(c.mr!.some((v, i) => Math.abs(v - a.mr![i]) > 1e-3), "an MR-visible lesion changes the MR");
  // Voxel at the lesion centre: x = 8 mm → i ≈ 8/2.086 + 7.5.
  const i = Math.round(8 / 2.086 + 7.5), j = 7, k = 6;
  const idx = i + 16 * (j + 16 * k);
  ok(b.activity.fdg![idx] > 2.5 * a.activity.fdg![idx], "hot lesion in the PET");
  let sa = 0, sb = 0;
  for (let t = 0; t < a.activity.fdg!.length; t++) {
    sa += a.activity.fdg![t];
    sb += b.activity.fdg![t];
  }
  // Sphere volume × (factor − 1) × local activity, roughly.
  ok(sb > sa, "total activity grows");
});

Deno.test("simulate: options are validated", () => {
  const vol = tinyHead(16, 12);
  const grid = centredGrid([8, 8, 6], [2, 2, 2]);
  // deno-lint-ignore no-explicit-any
  throws(() => simulateStudy(vol, { grid, tracers: ["pib" as any] }), /unknown tracer "pib"/);
  throws(
    () => simulateStudy(vol, { grid: centredGrid([2, 2, 2], [0.5, 0.5, 0.5]) }),
    /fine voxels no larger than the output voxels/,
  );
  // A 2D phantom takes its slice thickness from the output grid.
  const thin = brainPhantomStudy({
    dims: 2,
    grid: centredGrid([32, 32, 1], [8, 8, 2]),
    tracers: ["fdg"],
    mr: false,
  });
  ok(thin.activity.fdg!.some((v) => v > 50));
  equal(regionOf(0, 0.8, 0.2), Region.FRONTAL);
  equal(regionOf(0, -0.8, 0.3), Region.OCCIPITAL);
  equal(regionOf(0, -0.6, 1.4), Region.CEREBELLUM);
  equal(regionOf(3, 0, 0), Region.NONE);
});

const BRAINWEB = new URL("../../../shared/data/brainweb/subject05_crisp.nii.gz", import.meta.url);
let haveBrainweb = false;
try {
  haveBrainweb = Deno.statSync(BRAINWEB).isFile;
} catch {
  haveBrainweb = false;
}

Deno.test({
  name: "simulate: BrainWeb subject 05 on the 128² × 87 grid keeps FDG GM/WM ≈ 4 and stays centred",
  ignore: !haveBrainweb,
  async fn() {
    const { readLabelVolume, datasetGrid } = await import("../../core/sim/dataset.ts");
    const vol = await readLabelVolume(BRAINWEB.pathname, { expectShape: [362, 434, 362] });
    const grid = datasetGrid();
    const s = simulateStudy(vol, { grid, tracers: ["fdg"], seed: 1, mu: false });
    const fdg = s.activity.fdg!;
    const r = roiMean(fdg, s.labelFractions![2], 0.9) / roiMean(fdg, s.labelFractions![3], 0.95);
    ok(r > 3 && r < 5.2, `GM/WM ${r}`);
    // The head is centred: activity centroid within 10 mm of the grid centre in x and y.
    let sx = 0, sy = 0, st = 0;
    for (let k = 0; k < 87; k++) {
      for (let j = 0; j < 128; j++) {
        for (let i = 0; i < 128; i++) {
          const v = fdg[i + 128 * (j + 128 * k)];
          sx += v * (i - 63.5);
          sy += v * (j - 63.5);
          st += v;
        }
      }
    }
    ok(Math.abs(sx / st) * 2.086 < 10 && Math.abs(sy / st) * 2.086 < 10, "centred");
  },
});
