import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { centredGrid } from "../../core/geometry/grid.ts";
import { readNifti, writeNifti } from "../../core/io/nifti.ts";
import { findReference, writeReconResults } from "../../core/runtime/results.ts";
import { psnr } from "../../core/metrics/image.ts";

Deno.test("writeReconResults writes a PNG and metrics.json scored against the truth found in --in", async () => {
  const dir = await Deno.makeTempDir({ prefix: "petrel_results_" });
  try {
    const grid = centredGrid([12, 11, 4], [2, 2, 3]);
    const truth = Float32Array.from({ length: 12 * 11 * 4 }, (_, i) => (i % 7) + 1);
    const image = truth.map((v, i) => v + (i % 3 === 0 ? 0.5 : 0));
    await Deno.mkdir(`${dir}/in`);
    await Deno.mkdir(`${dir}/out`);
    await writeNifti(`${dir}/in/truth.nii`, { data: truth, grid });
    assertEquals(await findReference([`${dir}/out`]), null);
    const ref = await findReference([`${dir}/nothing.npy`, `${dir}/in`]);
    assertEquals(ref?.name, "truth.nii");
    assertEquals(ref?.data, (await readNifti(`${dir}/in/truth.nii`)).data);
    // A file given directly is found as well.
    assertEquals((await findReference([`${dir}/in/truth.nii`]))?.name, "truth.nii");

    const m = await writeReconResults({
      outDir: `${dir}/out`,
      name: "osem",
      method: "OSEM",
      params: { iterations: 3, subsets: 2 },
      image,
      grid,
      logLikelihood: -42,
      reference: ref,
    });
    const json = JSON.parse(await Deno.readTextFile(`${dir}/out/metrics.json`));
    assertEquals(json, JSON.parse(JSON.stringify(m)));
    assertEquals(json.logLikelihood, -42);
    assertEquals(json.reference.name, "truth.nii");
    assert(json.reference.ssim > 0 && json.reference.ssim < 1);
    assert(Math.abs(json.reference.psnrDb - psnr(truth, image, { dataRange: 6 })) < 1e-9);
    const png = await Deno.readFile(`${dir}/out/osem.png`);
    assertEquals([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
    // Nothing else (no temporary files) is left in the output folder.
    const names = [];
    for await (const e of Deno.readDir(`${dir}/out`)) names.push(e.name);
    assertEquals(names.sort(), ["metrics.json", "osem.png"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
