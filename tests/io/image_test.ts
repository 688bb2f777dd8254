import { deepStrictEqual as assertEquals, rejects, throws } from "node:assert/strict";
import { imageFormatOf, readImage, writeImage } from "../../core/io/image.ts";
import { imageGrid } from "../../core/geometry/grid.ts";
import { randomArray } from "../_helpers.ts";

Deno.test("readImage/writeImage round trip through NIfTI, Interfile and npy", async () => {
  const dir = await Deno.makeTempDir();
  const grid = imageGrid({ shape: [4, 3, 2], voxelSizeMm: [2, 2, 3], originMm: [-3, -2, -1.5] });
  const data = randomArray(24, 11);
  for (const name of ["a.nii", "a.nii.gz", "a.hv", "a.npy"]) {
    await writeImage(`${dir}/${name}`, { data, grid });
    const back = await readImage(`${dir}/${name}`, name.endsWith(".npy") ? { grid } : {});
    assertEquals(back.data, data, name);
    assertEquals(back.grid, grid, name);
  }
  const plain = await readImage(`${dir}/a.npy`);
  assertEquals(plain.grid.voxelSizeMm, [1, 1, 1]);
  await rejects(
    readImage(`${dir}/a.npy`, { grid: imageGrid({ ...grid, shape: [3, 4, 2] }) }),
    /does not match the grid/,
  );
  throws(() => imageFormatOf("x.mnc"), /unknown image format/);
  await Deno.remove(dir, { recursive: true });
});
