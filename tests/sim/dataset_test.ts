import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { centredGrid } from "../../core/geometry/grid.ts";
import { writeNifti } from "../../core/io/nifti.ts";
import { readNpy } from "../../core/io/npy.ts";
import { buildDataset, datasetCli, FRACTION_GROUPS, stackCentres } from "../../core/sim/dataset.ts";
import { brainPhantomLabels } from "../../core/sim/phantom_brain.ts";
import { simulateStudy } from "../../core/sim/simulate.ts";
import { hasNumpy, python } from "./_util.ts";

async function fixture(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "petrel_sim_" });
  const ph = brainPhantomLabels({ dims: 3, voxelMm: 3, seed: 1 });
  await writeNifti(`${dir}/subject01_crisp.nii.gz`, {
    data: ph.volume.labels,
    grid: ph.volume.grid,
  }, { dtype: "uint8" });
  await writeNifti(`${dir}/subject02_crisp.nii.gz`, {
    data: Float32Array.from(ph.volume.labels),
    grid: ph.volume.grid,
  });
  return dir;
}

Deno.test("dataset: petrel-stacks-v1 layout, scaling and manifest (read back by NumPy)", async () => {
  const dir = await fixture();
  try {
    const out = `${dir}/ds`;
    const m = await buildDataset({
      outDir: out,
      brainwebDir: dir,
      subjects: ["01"],
      size: 32,
      voxelMm: 6,
      slices: 32,
      expectShape: null,
      seed: 7,
      command: "test",
    });
    equal(m.format, "petrel-stacks-v1");
    equal(m.height, 32);
    ok(m.count > 5, `${m.count} stacks`);
    // Same content as a direct simulation: stack n, channel d = slice centre − 1 + d.
    const vol = brainPhantomLabels({ dims: 3, voxelMm: 3, seed: 1 }).volume;
    const grid = centredGrid([32, 32, 32], [6, 6, 6]);
    const s = simulateStudy(vol, { grid, tracers: ["fdg"], seed: 7 + 1, mu: false });
    const pet = await readNpy(`${out}/pet.npy`);
    deepEqual(pet.shape, [32, 32, 3, m.count]);
    equal(pet.dtype, "float16");
    const e = m.entries[2];
    const plane = 32 * 32;
    let worst = 0;
    for (let d = 0; d < 3; d++) {
      for (let t = 0; t < plane; t++) {
        const want = s.activity.fdg![(e.slice_centre - 1 + d) * plane + t] / e.pet_scale;
        worst = Math.max(worst, Math.abs(pet.data[(2 * 3 + d) * plane + t] - want));
      }
    }
    ok(worst < 1e-3, `float16 stack differs from the simulation by ${worst}`);
    deepEqual(m.entries.map((x) => x.slice_centre), stackCentres(s.brainFraction!, grid));
    if (await hasNumpy()) {
      const r = await python<
        { shape: number[]; dtype: string; max: number; mr: number; c: boolean }
      >(
        `import numpy as np, json
p = np.load("${out}/pet.npy"); m = np.load("${out}/mr.npy")
print(json.dumps({"shape": list(p.shape), "dtype": str(p.dtype), "max": float(p.max()),
  "mr": float(m.max()), "c": bool(p.flags["C_CONTIGUOUS"])}))`,
      );
      deepEqual(r.shape, [m.count, 3, 32, 32]);
      equal(r.dtype, "float16");
      ok(r.max <= 1 && r.max > 0.9, `PET max ${r.max}`);
      ok(r.mr <= 1 && r.mr > 0.5, `MR max ${r.mr}`);
      ok(r.c);
    }
    const manifest = JSON.parse(await Deno.readTextFile(`${out}/manifest.json`));
    deepEqual(Object.keys(manifest.entries[0]).sort(), [
      "pet_scale",
      "seed",
      "slice_centre",
      "subject",
    ]);
    deepEqual(manifest.voxel_mm, [6, 6, 6]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dataset: fractions.npy holds the label-group fractions of each stack (uint8, /255)", async () => {
  const dir = await fixture();
  try {
    const out = `${dir}/ds`;
    const opts = {
      outDir: out,
      brainwebDir: dir,
      subjects: ["01"],
      size: 16,
      voxelMm: 12,
      slices: 16,
      expectShape: null,
      seed: 7,
    };
    const m = await buildDataset({ ...opts, fractions: true });
    deepEqual(m.fraction_groups?.map((g) => g.name), ["csf", "grey", "white", "extra"]);
    equal(m.fraction_scale, 255);
    const f = await readNpy(`${out}/fractions.npy`);
    equal(f.dtype, "uint8");
    deepEqual(f.shape, [16, 16, 3, 4, m.count]);
    // Independent reference: the simulation's own per-label fractions, summed per group.
    const vol = brainPhantomLabels({ dims: 3, voxelMm: 3, seed: 1 }).volume;
    const grid = centredGrid([16, 16, 16], [12, 12, 12]);
    const s = simulateStudy(vol, { grid, tracers: ["fdg"], seed: 7 + 1, mu: false });
    const plane = 16 * 16;
    const n = m.count - 1;
    const c = m.entries[n].slice_centre;
    let worst = 0;
    let brain = 0;
    FRACTION_GROUPS.forEach((g, gi) => {
      for (let d = 0; d < 3; d++) {
        for (let t = 0; t < plane; t++) {
          let want = 0;
          for (const l of g.labels) want += s.labelFractions![l][(c - 1 + d) * plane + t];
          const got = f.data[((n * 4 + gi) * 3 + d) * plane + t] / 255;
          worst = Math.max(worst, Math.abs(got - want));
          if (gi === 1 || gi === 2) brain += got;
        }
      }
    });
    ok(worst <= 0.5 / 255 + 1e-6, `fractions differ by ${worst}`);
    ok(brain > 1, "the stack has grey/white matter");
    // Without the option, the set is unchanged (no fractions file, same arrays).
    const plain = await buildDataset({ ...opts, outDir: `${dir}/plain` });
    equal(plain.fraction_groups, undefined);
    await rejects(Deno.stat(`${dir}/plain/fractions.npy`));
    deepEqual(
      (await readNpy(`${dir}/plain/pet.npy`)).data,
      (await readNpy(`${out}/pet.npy`)).data,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dataset: a float label file, a missing subject and bad options give clear errors", async () => {
  const dir = await fixture();
  try {
    const base = {
      outDir: `${dir}/ds`,
      brainwebDir: dir,
      size: 16,
      voxelMm: 8,
      slices: 16,
      expectShape: null,
    };
    await rejects(buildDataset({ ...base, subjects: ["02"] }), /stored as float32; expected uint8/);
    await rejects(buildDataset({ ...base, subjects: ["03"] }), /subject03_crisp/);
    await rejects(buildDataset({ ...base, subjects: ["1"] }), /two-digit/);
    await rejects(
      buildDataset({ ...base, subjects: ["01"], expectShape: undefined }),
      /expected \[362, 434, 362\]/,
    );
    await rejects(
      datasetCli(["--out", `${dir}/x`, "--stride", "0"]),
      /--stride must be an integer ≥ 1/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeStudy: NIfTI volumes and study.json read back unchanged", async () => {
  const { writeStudy } = await import("../../core/sim/dataset.ts");
  const { readNifti } = await import("../../core/io/nifti.ts");
  const { brainPhantomStudy } = await import("../../core/sim/phantom_brain.ts");
  const dir = await Deno.makeTempDir({ prefix: "petrel_study_" });
  try {
    const s = brainPhantomStudy({ dims: 2, seed: 2, tracers: ["fdg", "tau"], lesions: 1 });
    const paths = await writeStudy(dir, s, { source: "test" });
    equal(paths.length, 8);
    const fdg = await readNifti(`${dir}/activity_fdg.nii.gz`);
    deepEqual(fdg.data, s.activity.fdg);
    // NIfTI stores the affine in float32.
    fdg.grid.originMm.forEach((o, a) => ok(Math.abs(o - s.grid.originMm[a]) < 1e-4));
    const labels = await readNifti(`${dir}/labels.nii.gz`);
    equal(labels.header.dtype, "uint8");
    deepEqual(Uint8Array.from(labels.data), s.labels);
    const info = JSON.parse(await Deno.readTextFile(`${dir}/study.json`));
    equal(info.source, "test");
    equal(info.lesions.length, 1);
    equal(info.studies.tau.labelValues.length, 12);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
