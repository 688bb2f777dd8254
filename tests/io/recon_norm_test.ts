// `petrel recon osem` and `recon map` once ignored norm.npy (which `petrel simulate` writes for
// its brain phantoms): the normalisation of a study was silently dropped. They now read it like
// `recon ddip`, checked against the prompts' scanner, and take an optional resolution model.
import { assert, assertEquals, assertMatch } from "../runtime/_assert.ts";
import { cli } from "../cli/_cli.ts";
import { EXIT } from "../../cli/exit_codes.ts";
import { RingScanner } from "../../core/geometry/scanner.ts";
import { readNifti } from "../../core/io/nifti.ts";
import { findNormalisation, readNormalisation, StudyError } from "../../core/io/study.ts";
import { writeSinogram } from "../../core/io/sinogram.ts";
import { defaultContext } from "../../core/gpu/mod.ts";
import { PoissonLikelihood, ringForwardModel } from "../../core/model/mod.ts";
import { osem } from "../../core/recon/mod.ts";
import { resolutionModel } from "../../core/model/resolution.ts";
import { ROOT } from "../runtime/_helpers.ts";
import { smallScanner } from "../_helpers.ts";
import { rejects } from "node:assert/strict";

const scanner = smallScanner();
const SIZE = 8;
// a smooth positive sinogram (no additive terms: EM then scales exactly with 1/m)
const prompts = Float32Array.from({ length: scanner.bins }, (_, i) => 5 + (i % 7));

const args = (recipe: string, inDir: string, out: string, extra: string[] = []) => [
  "run",
  `${ROOT}/examples/${recipe}.ts`,
  "--in",
  inDir,
  "--out",
  out,
  "--set",
  `size=${SIZE}`,
  "--set",
  "voxelMm=8",
  "--set",
  "iterations=3",
  "--set",
  "subsets=2",
  ...extra,
  "-q",
];

async function study(root: string, name: string, norm?: Float32Array): Promise<string> {
  const dir = `${root}/${name}`;
  await Deno.mkdir(dir);
  await writeSinogram(`${dir}/prompts.npy`, { data: prompts, scanner, quantity: "prompts" });
  if (norm) {
    await writeSinogram(`${dir}/norm.npy`, {
      data: norm,
      scanner,
      quantity: "normalisation-factors",
    });
  }
  return dir;
}

Deno.test("recon osem / map: norm.npy of factor 0.5 everywhere doubles the image (EM scales with 1/m)", async () => {
  const root = await Deno.makeTempDir({ prefix: "petrel-norm-" });
  try {
    const plain = await study(root, "plain");
    const halved = await study(root, "halved", new Float32Array(scanner.bins).fill(0.5));
    for (
      const [recipe, image, extra] of [
        ["osem", "osem.nii", []],
        ["map_rdp", "map_rdp.nii", ["--set", "beta=0"]],
      ] as const
    ) {
      for (const [dir, out] of [[plain, "a"], [halved, "b"]]) {
        const r = await cli(...args(recipe, dir, `${root}/${recipe}_${out}`, [...extra]));
        assertEquals(r.code, EXIT.ok, r.err);
      }
      const a = (await readNifti(`${root}/${recipe}_a/${image}`)).data;
      const b = (await readNifti(`${root}/${recipe}_b/${image}`)).data;
      let worst = 0, max = 0;
      for (let i = 0; i < a.length; i++) {
        worst = Math.max(worst, Math.abs(b[i] - 2 * a[i]));
        max = Math.max(max, a[i]);
      }
      assert(max > 0, `${recipe}: empty image`);
      assert(worst <= 1e-4 * 2 * max, `${recipe}: |b − 2a| up to ${worst} (max ${max})`);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("recon osem: norm.npy on another scanner or with a negative factor is refused (exit 3), nothing written", async () => {
  const root = await Deno.makeTempDir({ prefix: "petrel-norm-bad-" });
  try {
    const other = new RingScanner({ ...scanner.spec, radialBins: 21 });
    const dir = await study(root, "wrong");
    await writeSinogram(`${dir}/norm.npy`, {
      data: new Float32Array(other.bins).fill(1),
      scanner: other,
      quantity: "normalisation-factors",
    });
    const r = await cli(...args("osem", dir, `${root}/out1`));
    assertEquals(r.code, EXIT.input, r.err);
    assertMatch(
      r.err.split("\n")[0],
      new RegExp(
        `${dir}/norm\\.npy: the normalisation factors have ${other.bins} bins but prompts\\.npy's scanner "test ring" has ${scanner.bins}`,
      ),
    );
    const neg = new Float32Array(scanner.bins).fill(1);
    neg[17] = -0.5;
    const dir2 = await study(root, "negative", neg);
    const r2 = await cli(...args("map_rdp", dir2, `${root}/out2`));
    assertEquals(r2.code, EXIT.input, r2.err);
    assertMatch(
      r2.err.split("\n")[0],
      /norm\.npy: normalisation factor 17 is -0\.5; factors must be finite and ≥ 0/,
    );
    for (const f of [`${root}/out1/osem.nii`, `${root}/out2/map_rdp.nii`]) {
      assertEquals(await Deno.stat(f).then(() => true, () => false), false, `${f} was written`);
    }
    await rejects(readNormalisation(`${dir}/norm.npy`, scanner, `${dir}/prompts.npy`), StudyError);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("recon osem resolutionFwhmMm: the library's OSEM with that Gaussian resolution model", async () => {
  const root = await Deno.makeTempDir({ prefix: "petrel-psf-" });
  try {
    const dir = await study(
      root,
      "s",
      Float32Array.from({ length: scanner.bins }, (_, i) => 0.8 + 0.01 * (i % 9)),
    );
    const r = await cli(...args("osem", dir, `${root}/psf`, ["--set", "resolutionFwhmMm=12"]));
    assertEquals(r.code, EXIT.ok, r.err);
    const r0 = await cli(...args("osem", dir, `${root}/none`));
    assertEquals(r0.code, EXIT.ok, r0.err);
    const psf = (await readNifti(`${root}/psf/osem.nii`)).data;
    const none = (await readNifti(`${root}/none/osem.nii`)).data;
    // the reference: the forward model built directly, with the normalisation and the blur
    const ctx = await defaultContext();
    const norm = await readNormalisation(`${dir}/norm.npy`, scanner, `${dir}/prompts.npy`);
    const grid = scanner.imageGrid(SIZE, 8);
    const model = ringForwardModel(ctx, scanner, {
      grid,
      subsets: 2,
      multiplicative: norm,
      ...resolutionModel({ resolutionFwhmMm: 12, resolutionAxialFwhmMm: 0 }),
    });
    const x = await osem(new PoissonLikelihood(model, prompts), { iterations: 3 });
    const ref = await x.read();
    x.destroy();
    model.destroy();
    let diff = 0, changed = 0, max = 0;
    for (let i = 0; i < ref.length; i++) {
      diff = Math.max(diff, Math.abs(psf[i] - ref[i]));
      changed = Math.max(changed, Math.abs(psf[i] - none[i]));
      max = Math.max(max, ref[i]);
    }
    assert(diff <= 1e-6 * max, `recipe vs library: ${diff} of ${max}`);
    assert(changed > 1e-3 * max, "the resolution model changed nothing");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("findNormalisation: norm.npy, else multiplicative.npy, else norm.hs; none, or names the run was not given, give undefined", async () => {
  const dir = await Deno.makeTempDir({ prefix: "petrel-findnorm-" });
  try {
    const at = (name: string) => `${dir}/${name}`;
    assertEquals(await findNormalisation(at), undefined);
    await Deno.writeTextFile(at("norm.hs"), "");
    assertEquals(await findNormalisation(at), at("norm.hs"));
    await Deno.writeTextFile(at("multiplicative.npy"), "");
    assertEquals(await findNormalisation(at), at("multiplicative.npy"));
    await Deno.writeTextFile(at("norm.npy"), "");
    assertEquals(await findNormalisation(at), at("norm.npy"));
    // a run given single files: ctx.inputPath throws for a name that is not among them
    const only = (name: string) => {
      if (name !== "norm.hs") throw new Error(`no input named "${name}"`);
      return at(name);
    };
    assertEquals(await findNormalisation(only), at("norm.hs"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
