// Hostile or broken inputs that once passed silently (issue 14, "bad input that passes
// silently"): each is refused with a FormatError whose message names the file and the problem.
import { deepStrictEqual as assertEquals, ok as assert, rejects, throws } from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { imageGrid } from "../../core/geometry/grid.ts";
import { checkFinite, FormatError } from "../../core/io/files.ts";
import { decodeNifti, encodeNifti, readNifti, writeNifti } from "../../core/io/nifti.ts";
import { readStudy } from "../../core/io/study.ts";
import { encodeNpy, readNpy } from "../../core/io/npy.ts";
import { readSinogram, writeSinogram } from "../../core/io/sinogram.ts";
import { readImage } from "../../core/io/image.ts";
import {
  readInterfileImage,
  readInterfileSinogram,
  writeInterfileImage,
  writeInterfileSinogram,
} from "../../core/io/interfile.ts";
import { randomArray, smallScanner } from "../_helpers.ts";

const grid = imageGrid({ shape: [4, 3, 2], voxelSizeMm: [2, 2, 2], originMm: [0, 0, 0] });

/** Asserts that `p` rejects with a FormatError whose message matches every pattern. */
async function refused(p: Promise<unknown>, ...patterns: RegExp[]): Promise<string> {
  let msg = "";
  await rejects(p, (e: Error) => {
    assert(e instanceof FormatError, `expected a FormatError, got ${e.name}: ${e.message}`);
    for (const re of patterns) assert(re.test(e.message), `${re} not in: ${e.message}`);
    msg = e.message;
    return true;
  });
  return msg;
}

async function tmp(): Promise<string & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "petrel-hostile-" });
  return Object.assign(dir, {
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  }) as unknown as string & AsyncDisposable;
}

Deno.test("checkFinite counts NaN and ±Inf and locates the first one", () => {
  const data = new Float32Array(24);
  data[1 + 4 * (2 + 3 * 1)] = NaN; // voxel (1, 2, 1) = index 21
  data[22] = Infinity;
  data[23] = -Infinity;
  throws(
    () => checkFinite(data, "mu.nii", [4, 3, 2]),
    (e: Error) =>
      e instanceof FormatError &&
      e.message.startsWith("mu.nii: 3 of 24 values are not finite (1 NaN, 2 ±Inf)") &&
      e.message.includes("index 21 = [1, 2, 1] (fastest axis first) = NaN"),
  );
  checkFinite(data, "mu.nii", [4, 3, 2], { allowNonFinite: true });
  checkFinite(new Float32Array([0, -1, 3.4e38]), "ok.nii");
});

Deno.test("NIfTI: NaN or Inf voxels are refused unless allowed (.nii and .nii.gz)", async () => {
  await using dir = await tmp();
  const data = randomArray(24, 1);
  data[5] = NaN;
  data[9] = NaN;
  for (const name of ["mu.nii", "mu.nii.gz"]) {
    const bytes = encodeNifti({ data, grid }, { gzip: name.endsWith(".gz") });
    await Deno.writeFile(`${dir}/${name}`, bytes);
    await refused(
      readNifti(`${dir}/${name}`),
      new RegExp(`^${dir}/${name.replace(".", "\\.")}: 2 of 24 values`),
      /index 5 = \[1, 1, 0\]/,
    );
    const ok = await readNifti(`${dir}/${name}`, { allowNonFinite: true });
    assert(Number.isNaN(ok.data[5]) && ok.data[0] === data[0]);
  }
  // scl_slope that overflows float32 from finite int16 voxels
  const ints = encodeNifti({ data: new Float32Array(24).fill(30000), grid }, { dtype: "int16" });
  new DataView(ints.buffer).setFloat32(112, 3e38, true);
  throws(() => decodeNifti(ints, "scaled.nii"), /^FormatError: scaled\.nii: 24 of 24 values/);
  // the generic image reader refuses them too
  await refused(readImage(`${dir}/mu.nii`), /mu\.nii: 2 of 24 values are not finite/);
});

Deno.test("NIfTI: a NaN, negative or out-of-file vox_offset is refused", async () => {
  await using dir = await tmp();
  const cases: [number, RegExp][] = [
    [NaN, /vox_offset is NaN/],
    [-4, /vox_offset is -4/],
    [Infinity, /vox_offset is Infinity/],
    [1e6, /vox_offset 1000000 lies beyond the end of the \(uncompressed\) file \(448 bytes\)/],
  ];
  for (const [v, re] of cases) {
    const bytes = encodeNifti({ data: new Float32Array(24).fill(1), grid });
    new DataView(bytes.buffer).setFloat32(108, v, true);
    await Deno.writeFile(`${dir}/bad.nii`, bytes);
    await refused(readNifti(`${dir}/bad.nii`), new RegExp(`^${dir}/bad\\.nii: `), re);
    // gzipped: refused before inflating the voxels
    await Deno.writeFile(`${dir}/bad.nii.gz`, gzipSync(bytes));
    await refused(readNifti(`${dir}/bad.nii.gz`), new RegExp(`^${dir}/bad\\.nii\\.gz: `));
  }
});

Deno.test("NIfTI: a small .nii.gz inflating to 1 GiB is refused without inflating it", async () => {
  await using dir = await tmp();
  // A valid 4×3×2 image, then 1024 gzip members of 1 MiB of zeros each (≈ 1 MB on disk).
  const image = gzipSync(encodeNifti({ data: new Float32Array(24).fill(1), grid }));
  const zeros = gzipSync(new Uint8Array(1 << 20), { level: 9 });
  const bomb = new Uint8Array(image.length + 1024 * zeros.length);
  bomb.set(image);
  for (let i = 0; i < 1024; i++) bomb.set(zeros, image.length + i * zeros.length);
  assert(bomb.length < 2 << 20, `bomb is ${bomb.length} bytes`);
  await Deno.writeFile(`${dir}/bomb.nii.gz`, bomb);
  const before = Deno.memoryUsage().rss;
  await refused(
    readNifti(`${dir}/bomb.nii.gz`),
    new RegExp(`^${dir}/bomb\\.nii\\.gz: the gzip stream inflates to more than the 448 bytes`),
  );
  // 1 GiB was never allocated (a loose bound: the point is the order of magnitude)
  const grown = Deno.memoryUsage().rss - before;
  assert(grown < 256 << 20, `RSS grew by ${grown} bytes`);
  // A header declaring more voxels than the compressed bytes can hold is refused at once.
  const huge = encodeNifti({ data: new Float32Array(24), grid });
  const dv = new DataView(huge.buffer);
  [1, 2, 3].forEach((d) => dv.setInt16(40 + 2 * d, 30000, true));
  await Deno.writeFile(`${dir}/huge.nii.gz`, gzipSync(huge));
  await refused(readNifti(`${dir}/huge.nii.gz`), /huge\.nii\.gz: truncated: the header declares/);
});

Deno.test("npy: NaN, Inf and float64 beyond float32 are refused unless allowed", async () => {
  await using dir = await tmp();
  const cases: [Float64Array, "float32" | "float64" | "float16", RegExp][] = [
    [Float64Array.from([0, 1, NaN, 3, 4, 5]), "float32", /1 of 6 values .* index 2 = \[2, 0\]/],
    [Float64Array.from([0, 1, 2, -Infinity, 4, 5]), "float16", /index 3 = \[0, 1\]/],
    [Float64Array.from([0, 1, 2, 3, 1e300, 5]), "float64", /index 4 = \[1, 1\] .* = Infinity/],
  ];
  for (const [data, dtype, re] of cases) {
    await Deno.writeFile(`${dir}/a.npy`, encodeNpy({ data, shape: [3, 2] }, { dtype }));
    await refused(readNpy(`${dir}/a.npy`), new RegExp(`^${dir}/a\\.npy: `), re);
    assertEquals((await readNpy(`${dir}/a.npy`, { allowNonFinite: true })).shape, [3, 2]);
  }
});

Deno.test("sinograms: NaN bins and data files outside the sidecar's folder are refused", async () => {
  await using dir = await tmp();
  const scanner = smallScanner();
  const data = randomArray(scanner.bins, 2);
  data[40] = NaN;
  for (const name of ["prompts.npy", "prompts.nii.gz"]) {
    await writeSinogram(`${dir}/${name}`, { data, scanner, quantity: "prompts" });
    await refused(
      readSinogram(`${dir}/${name}`),
      new RegExp(`^${dir}/${name.replace(/\./g, "\\.")}: 1 of ${scanner.bins} values`),
      /index 40 = \[7, 1, 0\]/,
    );
    const ok = await readSinogram(`${dir}/${name}`, { allowNonFinite: true });
    assert(Number.isNaN(ok.data[40]));
  }
  // a sidecar pointing out of its folder, directly, through "..", or through a link
  await Deno.mkdir(`${dir}/in`);
  await Deno.mkdir(`${dir}/secret`);
  data[40] = 1;
  await writeSinogram(`${dir}/secret/s.npy`, { data, scanner, quantity: "prompts" });
  const sidecar = JSON.parse(await Deno.readTextFile(`${dir}/secret/s.json`));
  await Deno.symlink(`${dir}/secret/s.npy`, `${dir}/in/link.npy`);
  for (const dataFile of [`${dir}/secret/s.npy`, "../secret/s.npy", "link.npy"]) {
    await Deno.writeTextFile(`${dir}/in/p.json`, JSON.stringify({ ...sidecar, dataFile }));
    await refused(
      readSinogram(`${dir}/in/p.json`),
      new RegExp(`^${dir}/in/p\\.json: its data file "${dataFile.replace(/\./g, "\\.")}"`),
      new RegExp(`resolves to ${dir}/secret/s\\.npy, outside the header's folder`),
    );
  }
});

Deno.test("Interfile: data files outside the header's folder are refused", async () => {
  await using dir = await tmp();
  await Deno.mkdir(`${dir}/a/b`, { recursive: true });
  await writeInterfileImage(`${dir}/a/b/x.hv`, { data: randomArray(24, 3), grid });
  const header = await Deno.readTextFile(`${dir}/a/b/x.hv`);
  await Deno.symlink("/etc/passwd", `${dir}/a/b/passwd`);
  const depth = dir.split("/").length + 1; // enough ".." to reach "/" from a/b
  const names = ["/etc/passwd", `${"../".repeat(depth)}etc/passwd`, "passwd", "../x.v"];
  await Deno.writeFile(`${dir}/a/x.v`, new Uint8Array(96));
  for (const name of names) {
    await Deno.writeTextFile(
      `${dir}/a/b/evil.hv`,
      header.replace("name of data file := x.v", `name of data file := ${name}`),
    );
    const real = name === "../x.v" ? `${dir}/a/x.v` : "/etc/passwd";
    await refused(
      readInterfileImage(`${dir}/a/b/evil.hv`),
      new RegExp(`^${dir}/a/b/evil\\.hv: its data file`),
      new RegExp(`resolves to ${real.replace(/\./g, "\\.")}, outside the header's folder`),
    );
  }
  // inside the folder (also in a subfolder) is fine
  await Deno.mkdir(`${dir}/a/b/data`);
  await Deno.rename(`${dir}/a/b/x.v`, `${dir}/a/b/data/x.v`);
  await Deno.writeTextFile(
    `${dir}/a/b/sub.hv`,
    header.replace("name of data file := x.v", "name of data file := data/x.v"),
  );
  assertEquals((await readInterfileImage(`${dir}/a/b/sub.hv`)).data, randomArray(24, 3));
  await Deno.writeTextFile(
    `${dir}/a/b/gone.hv`,
    header.replace("name of data file := x.v", "name of data file := nothing.v"),
  );
  await refused(
    readInterfileImage(`${dir}/a/b/gone.hv`),
    /gone\.hv: its data file "nothing\.v" does not exist/,
  );
});

Deno.test("Interfile: unknown byte orders and NaN values are refused", async () => {
  await using dir = await tmp();
  const data = randomArray(24, 4);
  await writeInterfileImage(`${dir}/x.hv`, { data, grid });
  const header = await Deno.readTextFile(`${dir}/x.hv`);
  await Deno.writeTextFile(
    `${dir}/m.hv`,
    header.replace("byte order := LITTLEENDIAN", "byte order := MIDDLEENDIAN"),
  );
  await refused(
    readInterfileImage(`${dir}/m.hv`),
    new RegExp(`^${dir}/x\\.v: "imagedata byte order" is "MIDDLEENDIAN"`),
  );
  data[13] = NaN;
  await writeInterfileImage(`${dir}/x.hv`, { data, grid });
  await refused(
    readInterfileImage(`${dir}/x.hv`),
    /x\.v: 1 of 24 values .* index 13 = \[1, 0, 1\]/,
  );
  assert(
    Number.isNaN((await readInterfileImage(`${dir}/x.hv`, { allowNonFinite: true })).data[13]),
  );
  await refused(readImage(`${dir}/x.hv`), /x\.v: 1 of 24 values/);

  const scanner = smallScanner(2, 1);
  const sino = randomArray(scanner.bins, 5);
  sino[100] = Infinity;
  await writeInterfileSinogram(`${dir}/p.hs`, { data: sino, scanner });
  await refused(readInterfileSinogram(`${dir}/p.hs`), /p\.s: 1 of \d+ values .*1 ±Inf/);
  const back = await readInterfileSinogram(`${dir}/p.hs`, { allowNonFinite: true });
  assertEquals(back.data.filter((v) => v === Infinity).length, 1);
});

Deno.test("data files are found when only the files themselves may be read", async () => {
  await using dir = await tmp();
  const scanner = smallScanner();
  await writeSinogram(`${dir}/p.npy`, {
    data: randomArray(scanner.bins, 6),
    scanner,
    quantity: "prompts",
  });
  await writeInterfileImage(`${dir}/x.hv`, { data: randomArray(24, 7), grid });
  const io = new URL("../../core/io/mod.ts", import.meta.url).href;
  await Deno.writeTextFile(
    `${dir}/child.ts`,
    `import { readInterfileImage, readSinogram } from "${io}";\n` +
      `const s = await readSinogram("${dir}/p.npy");\n` +
      `const x = await readInterfileImage("${dir}/x.hv");\n` +
      `console.log(s.data.length, x.data.length);\n`,
  );
  // a sandboxed recipe given files (not their folder) has no read access to the folder
  const allow = ["p.npy", "p.json", "x.hv", "x.v"].map((f) => `${dir}/${f}`).join(",");
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      new URL("../../deno.json", import.meta.url).pathname,
      `--allow-read=${allow}`,
      `${dir}/child.ts`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assertEquals([out.code, text], [0, `${scanner.bins} 24`], new TextDecoder().decode(out.stderr));
});

Deno.test("readStudy (examples/ddip.ts): NaN in the MR, μ-map or additive terms, a negative normalisation factor is refused", async () => {
  await using dir = await tmp();
  const scanner = smallScanner();
  const g = scanner.imageGrid(8, 4);
  const n = g.shape[0] * g.shape[1] * g.shape[2];
  const sino = Float32Array.from({ length: scanner.bins }, (_, i) => 1 + (i % 5));
  await writeSinogram(`${dir}/prompts.npy`, { data: sino, scanner, quantity: "prompts" });
  const bad = sino.slice();
  bad[3] = NaN;
  await writeSinogram(`${dir}/additive.npy`, { data: bad, scanner, quantity: "additive" });
  await writeNifti(`${dir}/mu.nii`, { data: new Float32Array(n).fill(0.0096), grid: g });
  const mr = new Float32Array(n).fill(1);
  mr[n - 1] = -Infinity;
  await writeNifti(`${dir}/mr.nii`, { data: mr, grid: g });
  const files = { prompts: `${dir}/prompts.npy`, mu: `${dir}/mu.nii` };
  assertEquals((await readStudy(files)).grid, g); // the clean files read
  await refused(
    readStudy({ ...files, mr: `${dir}/mr.nii` }),
    new RegExp(`^${dir}/mr\\.nii: 1 of ${n} values are not finite \\(0 NaN, 1 ±Inf\\)`),
  );
  await refused(
    readStudy({ ...files, additive: `${dir}/additive.npy` }),
    new RegExp(`^${dir}/additive\\.npy: 1 of ${scanner.bins} values .* index 3`),
  );
  const mu = new Float32Array(n).fill(0.0096);
  mu[0] = NaN;
  await writeNifti(`${dir}/mu.nii`, { data: mu, grid: g });
  await refused(readStudy(files), new RegExp(`^${dir}/mu\\.nii: 1 of ${n} values .* index 0`));
  // a negative normalisation factor (recon osem and map refuse it the same way)
  const norm = new Float32Array(scanner.bins).fill(1);
  norm[7] = -2;
  await writeSinogram(`${dir}/norm.npy`, {
    data: norm,
    scanner,
    quantity: "normalisation-factors",
  });
  await refused(
    readStudy({ prompts: `${dir}/prompts.npy`, multiplicative: `${dir}/norm.npy` }, { grid: g }),
    new RegExp(`^${dir}/norm\\.npy: normalisation factor 7 is -2; factors must be finite and ≥ 0`),
  );
});
