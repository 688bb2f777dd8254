import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { checkPriorGrid, PriorGridError, priorGridSupport } from "../../core/diffusion/grid.ts";
import { parsePriorMetadata } from "../../core/diffusion/metadata.ts";
import { readOnnxHeader } from "../../core/diffusion/onnx_proto.ts";
import { centredGrid } from "../../core/geometry/grid.ts";

const root = new URL("../../", import.meta.url).pathname;
async function meta(dir: string) {
  const h = readOnnxHeader(await Deno.readFile(`${root}${dir}/vjp.onnx`));
  return parsePriorMetadata(h, dir);
}

Deno.test("priorGridSupport: the shipped FDG prior declares 128² in-plane and 2.086 mm voxels", async () => {
  const s = priorGridSupport(await meta("models/fdg_prior"));
  assertEquals(s, {
    inPlane: [128, 128],
    multiple: 4,
    voxelMm: [2.086, 2.086, 2.086],
    relTolerance: 0.05,
  });
  // mMR slices (half the 4.0625 mm ring pitch) are within 5 % of 2.086 mm
  checkPriorGrid(centredGrid([128, 128, 5], [2.086, 2.086, 4.0625 / 2]), s, "fdg_prior");
  const fails = (g: ReturnType<typeof centredGrid>, re: RegExp) =>
    throws(
      () => checkPriorGrid(g, s, "fdg_prior"),
      (e: Error) => e instanceof PriorGridError && re.test(e.message) && !e.message.includes("\n"),
    );
  fails(
    centredGrid([64, 64, 5], [4, 4, 4]),
    /trained on 2\.086 × 2\.086 × 2\.086 mm voxels .* resample/,
  );
  fails(centredGrid([64, 64, 5], [2.086, 2.086, 2.086]), /fine-tunes on 128 × 128 .* is 64 × 64/);
  fails(centredGrid([128, 128, 2], [2.086, 2.086, 2.086]), /3 adjacent slices/);
  // sampling alone (no fine-tuning) runs at any multiple of 4
  checkPriorGrid(centredGrid([64, 64, 5], [2.086, 2.086, 2.086]), s, "fdg_prior", {
    fineTune: false,
  });
});

Deno.test("priorGridSupport: the test prior declares no voxel size (not checked), 16² for the VJP", async () => {
  const s = priorGridSupport(await meta("tests/fixtures/prior"));
  assertEquals(s.inPlane, [16, 16]);
  assertEquals(s.voxelMm, undefined);
  checkPriorGrid(centredGrid([16, 16, 3], [7, 7, 3]), s, "test prior");
  assert(s.multiple >= 1);
});
