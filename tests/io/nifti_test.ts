import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { centredGrid, imageGrid } from "../../core/geometry/grid.ts";
import {
  decodeNifti,
  encodeNifti,
  gridAffine,
  readNifti,
  writeNifti,
} from "../../core/io/nifti.ts";
import { FormatError } from "../../core/io/files.ts";
import { assertClose, maxAbsDiff, randomArray } from "../_helpers.ts";
import { hasPython, python } from "./_python.ts";

const BRAINWEB = new URL("../../../shared/data/brainweb/subject05_crisp.nii.gz", import.meta.url)
  .pathname;

function brainwebPresent(): boolean {
  try {
    Deno.statSync(BRAINWEB);
    return true;
  } catch {
    return false;
  }
}

const PY = await hasPython();

Deno.test("NIfTI float32 round trip keeps voxels, grid and affine (.nii and .nii.gz)", async () => {
  const dir = await Deno.makeTempDir();
  const grid = imageGrid({ shape: [5, 4, 3], voxelSizeMm: [2, 2.5, 3], originMm: [-4, -3.75, 7] });
  const data = randomArray(60, 7);
  for (const name of ["a.nii", "a.nii.gz"]) {
    await writeNifti(`${dir}/${name}`, { data, grid }, { description: "test image" });
    const im = await readNifti(`${dir}/${name}`);
    assertEquals(im.shape, [5, 4, 3]);
    assertEquals(maxAbsDiff(im.data, data), 0);
    assertEquals(im.grid, grid);
    assertEquals(im.affine, gridAffine(grid));
    assertEquals(im.affineSource, "sform");
    assert(im.axisAligned);
    assertEquals(im.header.descrip, "test image");
  }
  const raw = await Deno.readFile(`${dir}/a.nii.gz`);
  assert(raw[0] === 0x1f && raw[1] === 0x8b, ".gz output is gzipped");
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "NIfTI written by petrel matches nibabel's reading (affine, qform, values)",
  ignore: !PY,
}, async () => {
  const dir = await Deno.makeTempDir();
  const grid = imageGrid({ shape: [6, 5, 4], voxelSizeMm: [1.5, 2, 2.5], originMm: [-3, 4, -5] });
  const data = randomArray(120, 3);
  await writeNifti(`${dir}/p.nii.gz`, { data, grid });
  const r = await python<{ s: number[][]; q: number[][]; v: number[]; shape: number[] }>(`
import nibabel as nib, json, numpy as np
im = nib.load("${dir}/p.nii.gz")
a = np.asarray(im.dataobj)
print(json.dumps({"s": im.get_sform().tolist(), "q": im.get_qform().tolist(),
  "shape": list(a.shape), "v": [float(a[1,2,3]), float(a[5,0,1])]}))`);
  assertEquals(r.shape, [6, 5, 4]);
  for (const m of [r.s, r.q]) {
    const A = gridAffine(grid);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) assertClose(m[i][j], A[i][j], 1e-6);
  }
  assertEquals(r.v[0], data[1 + 6 * (2 + 5 * 3)]);
  assertEquals(r.v[1], data[5 + 6 * (0 + 5 * 1)]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "NIfTI files written by nibabel are read: dtypes, scaling, qform, big-endian",
  ignore: !PY,
}, async () => {
  const dir = await Deno.makeTempDir();
  const r = await python<{ dt: string; v: number[]; aff: number[][] }[]>(`
import nibabel as nib, json, numpy as np
rng = np.random.default_rng(1)
out = []
aff = np.array([[0,-2.0,0,10],[1.5,0,0,-20],[0,0,3,5],[0,0,0,1]])
for dt in ["uint8","int16","int32","float32","float64"]:
    a = (rng.random((4,3,2))*100).astype(dt)
    im = nib.Nifti1Image(a, aff)
    if dt == "int16":
        im.header.set_slope_inter(0.5, -3)
    if dt == "int32":
        im.set_sform(None, code=0); im.set_qform(aff, code=1)
    if dt == "float64":
        h = nib.Nifti1Header(endianness=">"); h.set_data_dtype(">f8")
        im = nib.Nifti1Image(a.astype(">f8"), aff, header=h)
    nib.save(im, "${dir}/" + dt + ".nii")
    scaled = np.asarray(nib.load("${dir}/" + dt + ".nii").get_fdata())
    out.append({"dt": dt, "v": scaled.ravel(order="F").tolist(),
      "aff": nib.load("${dir}/" + dt + ".nii").affine.tolist()})
print(json.dumps(out))`);
  for (const ref of r) {
    const im = await readNifti(`${dir}/${ref.dt}.nii`);
    assertEquals(im.header.dtype, ref.dt);
    assertEquals(im.shape, [4, 3, 2]);
    assert(maxAbsDiff(im.data, ref.v) <= 1e-4, `${ref.dt} values`);
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 4; j++) assertClose(im.affine[i][j], ref.aff[i][j], 1e-6, ref.dt);
    }
    assert(!im.axisAligned, "a rotated affine is not axis-aligned");
    [1.5, 2, 3].forEach((v, a) => assertClose(im.grid.voxelSizeMm[a], v, 1e-6, "voxel size"));
  }
  assertEquals((await readNifti(`${dir}/int32.nii`)).affineSource, "qform");
  assertEquals((await readNifti(`${dir}/float64.nii`)).header.byteOrder, "big");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("an oblique affine survives a write/read round trip through sform and qform", () => {
  const c = Math.cos(0.3), s = Math.sin(0.3);
  const affine = [[2 * c, -2 * s, 0, 1], [2 * s, 2 * c, 0, 2], [0, 0, -3, 3], [0, 0, 0, 1]];
  const grid = centredGrid([3, 3, 2], [2, 2, 3]);
  const bytes = encodeNifti({ data: new Float32Array(18), grid, affine });
  const im = decodeNifti(bytes);
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 4; j++) assertClose(im.affine[i][j], affine[i][j], 1e-6);
  }
  // the same affine from the qform alone
  const dv = new DataView(bytes.buffer);
  dv.setInt16(254, 0, true);
  const q = decodeNifti(bytes);
  assertEquals(q.affineSource, "qform");
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 4; j++) assertClose(q.affine[i][j], affine[i][j], 1e-6);
  }
});

Deno.test("integer NIfTI output checks the value range", () => {
  const grid = centredGrid([2, 1, 1], [1, 1, 1]);
  assertEquals(
    decodeNifti(encodeNifti({ data: [3, 250], grid }, { dtype: "uint8" })).data,
    new Float32Array([3, 250]),
  );
  let err: Error | undefined;
  try {
    encodeNifti({ data: [3, 256], grid }, { dtype: "uint8" });
  } catch (e) {
    err = e as Error;
  }
  assert(err instanceof RangeError && /uint8/.test(err.message));
});

Deno.test("corrupt, truncated and mismatched NIfTI inputs give clear errors", async () => {
  const grid = centredGrid([4, 4, 2], [1, 1, 1]);
  const good = encodeNifti({ data: randomArray(32, 1), grid });
  const expectFormat = (bytes: Uint8Array, re: RegExp) => {
    let err: Error | undefined;
    try {
      decodeNifti(bytes, "x.nii");
    } catch (e) {
      err = e as Error;
    }
    assert(err instanceof FormatError, `expected FormatError, got ${err}`);
    assert(re.test(err.message), err.message);
  };
  expectFormat(good.subarray(0, 200), /fewer than the 348-byte/);
  expectFormat(good.subarray(0, 400), /truncated/);
  expectFormat(new Uint8Array(400), /not a NIfTI-1 file/);
  const gz = gzipSync(good);
  expectFormat(
    new Uint8Array(gz.subarray(0, gz.length - 40)),
    /gzip stream is corrupt or truncated/,
  );
  const badType = good.slice();
  new DataView(badType.buffer).setInt16(70, 1024, true);
  expectFormat(badType, /datatype 1024 is not supported/);
  const badMagic = good.slice();
  badMagic[345] = 0x3f;
  expectFormat(badMagic, /magic/);
  let err: Error | undefined;
  try {
    encodeNifti({ data: new Float32Array(31), grid });
  } catch (e) {
    err = e as Error;
  }
  assert(err instanceof RangeError && /holds 32 values but the data has 31/.test(err.message));
  await rejects(readNifti("/nonexistent/x.nii"), /no such file/);
});

Deno.test({
  name: "the BrainWeb label volume reads quickly with its sform",
  ignore: !brainwebPresent(),
}, async () => {
  const t0 = performance.now();
  const im = await readNifti(BRAINWEB);
  const ms = performance.now() - t0;
  console.log(`BrainWeb subject 05 read in ${ms.toFixed(0)} ms`);
  assertEquals(im.shape, [362, 434, 362]);
  assertEquals(im.header.dtype, "uint8");
  assertEquals(im.grid.voxelSizeMm, [0.5, 0.5, 0.5]);
  assertEquals(im.grid.originMm, [-90.25, -126.25, -72.25]);
  assert(im.axisAligned);
  let max = 0;
  const counts = new Array(12).fill(0);
  for (const v of im.data) {
    if (v > max) max = v;
    counts[v]++;
  }
  assertEquals(max, 11);
  assert(counts[2] > 0 && counts[3] > 0, "grey and white matter present");
  assert(ms < 10_000, `read took ${ms} ms`);
});
