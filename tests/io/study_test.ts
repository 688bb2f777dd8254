import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { describeGrid, readStudy, reconGrid, StudyError } from "../../core/io/study.ts";
import { writeSinogram } from "../../core/io/sinogram.ts";
import { readNifti, writeNifti } from "../../core/io/nifti.ts";
import { writeInterfileSinogram } from "../../core/io/interfile.ts";
import { FormatError } from "../../core/io/files.ts";
import { centredGrid, imageGrid } from "../../core/geometry/grid.ts";
import { affineOfGrid, applyAffine } from "../../core/geometry/affine.ts";
import { RingScanner } from "../../core/geometry/scanner.ts";

const scanner = new RingScanner({
  name: "test 3-ring",
  radiusMm: 60,
  crystalsPerRing: 32,
  rings: 3,
  ringSpacingMm: 4,
  radialBins: 15,
  maxRingDifference: 2,
});
const grid = centredGrid([8, 8, 5], [4, 4, 2]);

async function study(dir: string): Promise<void> {
  const data = Float32Array.from({ length: scanner.bins }, (_, i) => i % 7);
  await writeSinogram(`${dir}/prompts.npy`, { data, scanner, quantity: "prompts" });
  await writeNifti(`${dir}/mu.nii`, { data: new Float32Array(320).fill(0.0096), grid });
}

Deno.test("readStudy: the grid comes from mu.nii; an MR on the same grid is used as is", async () => {
  const dir = await Deno.makeTempDir();
  await study(dir);
  const mr = Float32Array.from({ length: 320 }, (_, i) => i);
  await writeNifti(`${dir}/mr.nii`, { data: mr, grid });
  const s = await readStudy({
    prompts: `${dir}/prompts.npy`,
    mu: `${dir}/mu.nii`,
    mr: `${dir}/mr.nii`,
  });
  assertEquals(s.grid, grid);
  assertEquals(s.gridSource, "mu.nii");
  assertEquals(s.mrNote, "same grid");
  assertEquals(s.mr, mr);
  assertEquals(s.scanner.spec, scanner.spec);
  assertEquals(describeGrid(s.grid), "8 × 8 × 5 voxels of 4 × 4 × 2 mm");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("readStudy: an MR on a finer grid is resampled (linear field reproduced)", async () => {
  const dir = await Deno.makeTempDir();
  await study(dir);
  const fine = centredGrid([20, 20, 12], [2, 2, 1]);
  const f = (x: number, y: number, z: number) => 10 + x - 0.5 * y + 2 * z;
  const mr = new Float32Array(20 * 20 * 12);
  for (let k = 0; k < 12; k++) {
    for (let j = 0; j < 20; j++) {
      for (let i = 0; i < 20; i++) {
        mr[i + 20 * (j + 20 * k)] = f(...applyAffine(affineOfGrid(fine), [i, j, k]));
      }
    }
  }
  await writeNifti(`${dir}/mr.nii`, { data: mr, grid: fine });
  const s = await readStudy({
    prompts: `${dir}/prompts.npy`,
    mu: `${dir}/mu.nii`,
    mr: `${dir}/mr.nii`,
  });
  assert(s.mrNote!.startsWith("resampled"), s.mrNote);
  for (let t = 0; t < 320; t++) {
    const i = t % 8, j = ((t / 8) | 0) % 8, k = (t / 64) | 0;
    const want = f(...applyAffine(affineOfGrid(grid), [i, j, k]));
    assert(Math.abs(s.mr![t] - want) < 1e-4, `voxel ${t}: ${s.mr![t]} vs ${want}`);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("readStudy: a non-overlapping MR, a grid outside the scanner and a foreign additive are one-line StudyErrors", async () => {
  const dir = await Deno.makeTempDir();
  await study(dir);
  await writeNifti(`${dir}/far.nii`, {
    data: new Float32Array(320),
    grid: imageGrid({ ...grid, originMm: [400, 0, 0] }),
  });
  await rejects(
    readStudy({ prompts: `${dir}/prompts.npy`, mu: `${dir}/mu.nii`, mr: `${dir}/far.nii` }),
    (e: Error) =>
      e instanceof StudyError && e instanceof FormatError &&
      /does not overlap the PET grid/.test(e.message) && !e.message.includes("\n"),
  );
  // 30 slices of 2 mm reach beyond the rings (3 rings 4 mm apart)
  await writeNifti(`${dir}/mu_long.nii`, {
    data: new Float32Array(8 * 8 * 30),
    grid: centredGrid([8, 8, 30], [4, 4, 2]),
  });
  await rejects(
    readStudy({ prompts: `${dir}/prompts.npy`, mu: `${dir}/mu_long.nii` }),
    (e: Error) =>
      e instanceof StudyError &&
      /mu_long.nii .* does not fit prompts.npy's scanner/.test(e.message),
  );
  const other = new RingScanner({ ...scanner.spec, maxRingDifference: 0 });
  await writeSinogram(`${dir}/additive.npy`, {
    data: new Float32Array(other.bins),
    scanner: other,
    quantity: "additive",
  });
  await rejects(
    readStudy({
      prompts: `${dir}/prompts.npy`,
      additive: `${dir}/additive.npy`,
      mu: `${dir}/mu.nii`,
    }),
    (e: Error) => e instanceof StudyError && /same scanner/.test(e.message),
  );
  await rejects(readStudy({ prompts: `${dir}/prompts.npy` }), StudyError);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("readStudy: STIR Interfile projection data give the same study", async () => {
  const dir = await Deno.makeTempDir();
  await study(dir);
  const data = Float32Array.from({ length: scanner.bins }, (_, i) => i % 7);
  await writeInterfileSinogram(`${dir}/prompts.hs`, { data, scanner });
  const a = await readStudy({ prompts: `${dir}/prompts.npy`, mu: `${dir}/mu.nii` });
  const b = await readStudy({ prompts: `${dir}/prompts.hs`, mu: `${dir}/mu.nii` });
  assertEquals(b.prompts, a.prompts);
  assertEquals(b.scanner.planes, a.scanner.planes);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("reconGrid: an image's grid wins; size/voxelMm must agree with it; params only without one", async () => {
  const dir = await Deno.makeTempDir();
  await study(dir);
  const mu = { ...(await readNifti(`${dir}/mu.nii`)), path: `${dir}/mu.nii` };
  const fromImage = reconGrid(scanner, { image: mu });
  assertEquals(fromImage.grid, grid);
  assertEquals(fromImage.source, "mu.nii");
  assertEquals(reconGrid(scanner, { image: mu, size: 8, voxelMm: 4 }).grid, grid);
  for (const bad of [{ size: 16 }, { voxelMm: 2 }]) {
    let err: Error | undefined;
    try {
      reconGrid(scanner, { image: mu, ...bad });
    } catch (e) {
      err = e as Error;
    }
    assert(err instanceof StudyError, `expected a StudyError for ${JSON.stringify(bad)}`);
    assert(err.message.startsWith(`${dir}/mu.nii is on 8 × 8 × 5 voxels`), err.message);
  }
  // Without an image: size² voxels of voxelMm, one slice per ring, centred.
  const p = reconGrid(scanner, { size: 6, voxelMm: 5 });
  assertEquals(p.grid, centredGrid([6, 6, 3], [5, 5, 4]));
  assertEquals(p.source, "parameters");
  let tooBig: Error | undefined;
  try {
    reconGrid(scanner, { size: 64, voxelMm: 4 });
  } catch (e) {
    tooBig = e as Error;
  }
  assert(tooBig instanceof StudyError && /does not fit scanner "test 3-ring"/.test(tooBig.message));
  await Deno.remove(dir, { recursive: true });
});
