// `petrel recon ddip` with the shipped prior: the three bad-input cases of issue 13 are one line
// and exit 3, before the prior's graphs are loaded.
import { assert, assertEquals, assertMatch } from "../runtime/_assert.ts";
import { cli } from "./_cli.ts";
import { EXIT } from "../../cli/exit_codes.ts";
import { centredGrid, imageGrid } from "../../core/geometry/grid.ts";
import { MMR_VOXEL_MM, mmrLike3d } from "../../core/geometry/scanner.ts";
import { writeSinogram } from "../../core/io/sinogram.ts";
import { writeNifti } from "../../core/io/nifti.ts";
import { defaultAllowedRoots } from "../../core/runtime/verify.ts";
import { ROOT } from "../runtime/_helpers.ts";

Deno.test("cli recon ddip: wrong grid, non-overlapping MR, unsupported voxel size: one line, exit 3", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "petrel-ddip-bad-" });
  try {
    const scanner = mmrLike3d({ rings: 3, maxRingDifference: 2 });
    const grid = centredGrid([128, 128, 5], [MMR_VOXEL_MM, MMR_VOXEL_MM, 4.0625 / 2]);
    const n = 128 * 128 * 5;
    const make = async (name: string, files: { mu: typeof grid; mr: typeof grid }) => {
      const dir = `${tmp}/${name}`;
      await Deno.mkdir(dir);
      await writeSinogram(`${dir}/prompts.npy`, {
        data: new Float32Array(scanner.bins).fill(1),
        scanner,
        quantity: "prompts",
      });
      const count = (g: typeof grid) => g.shape[0] * g.shape[1] * g.shape[2];
      await writeNifti(`${dir}/mu.nii`, {
        data: new Float32Array(count(files.mu)),
        grid: files.mu,
      });
      await writeNifti(`${dir}/mr.nii`, {
        data: new Float32Array(count(files.mr)),
        grid: files.mr,
      });
      return dir;
    };
    const cases: [string, { mu: typeof grid; mr: typeof grid }, RegExp][] = [
      // 40 slices reach far beyond the 3 rings
      [
        "grid",
        { mu: centredGrid([128, 128, 40], grid.voxelSizeMm), mr: grid },
        /mu\.nii \(128 × 128 × 40 voxels .*\) does not fit prompts\.npy's scanner/,
      ],
      [
        "mr",
        { mu: grid, mr: imageGrid({ ...grid, originMm: [0, 0, 500] }) },
        /mr\.nii does not overlap the PET grid/,
      ],
      [
        "voxel",
        {
          mu: centredGrid([64, 64, 5], [4, 4, 2.03125]),
          mr: centredGrid([64, 64, 5], [4, 4, 2.03125]),
        },
        /was trained on 2\.086 × 2\.086 × 2\.086 mm voxels .* 4 × 4 × 2\.031 mm voxels; resample/,
      ],
    ];
    assertEquals(n, 81920);
    for (const [name, files, re] of cases) {
      const dir = await make(name, files);
      const r = await cli("recon", "ddip", "--in", dir, "--out", `${tmp}/out_${name}`);
      assertEquals(r.code, EXIT.input, `${name}: ${r.err}`);
      const lines = r.err.split("\n").filter((l) => l.startsWith("petrel:"));
      assertEquals(lines.length, 1, r.err);
      assertMatch(lines[0], re);
      assert(!/\n\s+at /.test(r.err), `stack trace in: ${r.err}`);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("verify trusts petrel's models/ (the prior recon ddip uses by default) without --allow-root", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "petrel-roots-" });
  try {
    await Deno.mkdir(`${tmp}/d`);
    await Deno.writeTextFile(`${tmp}/d/manifest.json`, "{}");
    const roots = await defaultAllowedRoots(`${tmp}/d/manifest.json`);
    assert(roots.includes(`${ROOT}/models`), roots.join(", "));
    assert(roots.includes(`${ROOT}/examples`), roots.join(", "));
    assert(roots.includes(`${ROOT}/experiments`), roots.join(", "));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
