// End to end (issue 14): a μ-map with NaN voxels once gave an all-zero osem.nii and exit 0.
// Through `petrel run examples/osem.ts` it must now fail with exit 3 and a one-line error that
// names the file, while the same inputs with a finite μ-map reconstruct.
import { assert, assertEquals, assertMatch } from "../runtime/_assert.ts";
import { cli } from "../cli/_cli.ts";
import { EXIT } from "../../cli/exit_codes.ts";
import { RingScanner } from "../../core/geometry/scanner.ts";
import { readNifti, writeNifti } from "../../core/io/nifti.ts";
import { writeSinogram } from "../../core/io/sinogram.ts";
import { ROOT } from "../runtime/_helpers.ts";

Deno.test("petrel run examples/osem.ts refuses a μ-map with NaN voxels (exit 3)", async () => {
  const root = await Deno.makeTempDir({ prefix: "petrel-nanmu-" });
  try {
    const scanner = new RingScanner({
      name: "test ring",
      radiusMm: 60,
      crystalsPerRing: 48,
      rings: 1,
      ringSpacingMm: 4,
      radialBins: 25,
      maxRingDifference: 0,
    });
    const size = 8;
    const grid = scanner.imageGrid(size, 8);
    await Deno.mkdir(`${root}/in`);
    const prompts = Float32Array.from({ length: scanner.bins }, (_, i) => 5 + (i % 7));
    await writeSinogram(`${root}/in/prompts.npy`, { data: prompts, scanner, quantity: "prompts" });
    const mu = new Float32Array(size * size).fill(0.0096);
    await writeNifti(`${root}/in/mu.nii`, { data: mu, grid });
    const args = (out: string) => [
      "run",
      `${ROOT}/examples/osem.ts`,
      "--in",
      `${root}/in`,
      "--out",
      out,
      "--set",
      `size=${size}`,
      "--set",
      "voxelMm=8",
      "--set",
      "iterations=1",
      "--set",
      "subsets=1",
      "-q",
    ];
    // control: the same inputs with a finite μ-map reconstruct a non-zero image
    const ok = await cli(...args(`${root}/ok`));
    assertEquals(ok.code, EXIT.ok, ok.err);
    const x = await readNifti(`${root}/ok/osem.nii`);
    assert(x.data.some((v) => v > 0), "the control reconstruction is all zero");

    mu[3 + size * 5] = NaN;
    mu[10] = NaN;
    await writeNifti(`${root}/in/mu.nii`, { data: mu, grid });
    const bad = await cli(...args(`${root}/bad`));
    assertEquals(bad.code, EXIT.input, bad.err);
    const line = bad.err.split("\n")[0];
    assertMatch(
      line,
      new RegExp(
        `^petrel: error \\(input\\): ${root}/in/mu\\.nii: 2 of 64 values are not finite ` +
          `\\(2 NaN, 0 ±Inf\\); the first is at index 10 = \\[2, 1, 0\\]`,
      ),
    );
    const written = await Deno.stat(`${root}/bad/osem.nii`).then(() => true, () => false);
    assertEquals(written, false, "no osem.nii may be written from a NaN μ-map");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
