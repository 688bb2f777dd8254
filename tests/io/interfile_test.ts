import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import {
  parseInterfile,
  readInterfileImage,
  readInterfileSinogram,
  stirBinIndex,
  writeInterfileImage,
  writeInterfileSinogram,
} from "../../core/io/interfile.ts";
import { FormatError } from "../../core/io/files.ts";
import { imageGrid } from "../../core/geometry/grid.ts";
import { assertClose, randomArray, smallScanner } from "../_helpers.ts";

Deno.test("Interfile images round trip, z offset relative to STIR's first ring", async () => {
  const dir = await Deno.makeTempDir();
  const scanner = smallScanner(4, 3);
  const grid = scanner.imageGrid(8, 3);
  const data = randomArray(8 * 8 * 4, 1);
  await writeInterfileImage(`${dir}/x.hv`, { data, grid }, { scanner });
  const text = await Deno.readTextFile(`${dir}/x.hv`);
  const h = parseInterfile(text);
  assertEquals(h.get("name of data file"), "x.v");
  assertEquals(Number(h.get("first pixel offset (mm)[3]")), 0); // first slice at ring 0
  assertEquals(Number(h.get("first pixel offset (mm)[1]")), -10.5);
  assertEquals((await Deno.stat(`${dir}/x.v`)).size, 4 * data.length);
  const back = await readInterfileImage(`${dir}/x.hv`, { scanner });
  assertEquals(back.data, data);
  [0, 1, 2].forEach((a) => {
    assertClose(back.grid.originMm[a], grid.originMm[a], 1e-9, "origin");
    assertClose(back.grid.voxelSizeMm[a], grid.voxelSizeMm[a], 1e-9, "voxel");
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("Interfile images in big-endian int16 with a scale factor are read", async () => {
  const dir = await Deno.makeTempDir();
  const raw = new Uint8Array(2 * 6 + 16);
  const dv = new DataView(raw.buffer);
  for (let i = 0; i < 6; i++) dv.setInt16(16 + 2 * i, i - 3, false);
  await Deno.writeFile(`${dir}/img.dat`, raw);
  await Deno.writeTextFile(
    `${dir}/img.hv`,
    `!INTERFILE :=
; a header as an old scanner might write it
name of data file := img.dat
!number format := signed integer
!number of bytes per pixel := 2
imagedata byte order := BIGENDIAN
data offset in bytes[1] := 16
number of dimensions := 3
!matrix size [1] := 3
!matrix size [2] := 2
!matrix size [3] := 1
scaling factor (mm/pixel) [1] := 2
scaling factor (mm/pixel) [2] := 2
scaling factor (mm/pixel) [3] := 4
image scaling factor [1] := 0.5
!END OF INTERFILE :=
`,
  );
  const im = await readInterfileImage(`${dir}/img.hv`);
  assertEquals([...im.data], [-1.5, -1, -0.5, 0, 0.5, 1]);
  assertEquals(
    im.grid,
    imageGrid({ shape: [3, 2, 1], voxelSizeMm: [2, 2, 4], originMm: [-2, -1, 0] }),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("Interfile sinograms round trip and use STIR's SegmentBySinogram layout", async () => {
  const dir = await Deno.makeTempDir();
  const scanner = smallScanner(4, 2);
  const data = randomArray(scanner.bins, 3);
  await writeInterfileSinogram(`${dir}/p.hs`, { data, scanner });
  const h = parseInterfile(await Deno.readTextFile(`${dir}/p.hs`));
  assertEquals(h.get("matrix size[3]"), "{ 4,3,3,2,2 }");
  assertEquals(h.get("minimum ring difference per segment"), "{ 0,-1,1,-2,2 }");
  assertEquals(h.get("matrix axis label[2]"), "view");
  const back = await readInterfileSinogram(`${dir}/p.hs`);
  assertEquals(back.data, data);
  assertEquals(back.scanner.spec.crystalsPerRing, 64);
  assertClose(back.scanner.spec.radiusMm, 60, 1e-9);
  assertClose(back.scanner.spec.ringSpacingMm, 4, 1e-9);
  assertEquals(back.scanner.spec.maxRingDifference, 2);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("SegmentByView data in another segment order are reordered to petrel's planes", async () => {
  const dir = await Deno.makeTempDir();
  const scanner = smallScanner(3, 1);
  const [nr, nv] = [33, 32];
  // STIR file: segments in the order +1, 0, -1, SegmentByView (view slower than axial)
  const segs = [1, 0, -1];
  const value = (d: number, ax: number, v: number, r: number) =>
    1000 * (d + 2) + 100 * ax + v + r / 100;
  const vals: number[] = [];
  for (const d of segs) {
    for (let v = 0; v < nv; v++) {
      for (let ax = 0; ax < 3 - Math.abs(d); ax++) {
        for (let r = 0; r < nr; r++) vals.push(value(d, ax, v, r));
      }
    }
  }
  const bytes = new Uint8Array(4 * vals.length);
  const dv = new DataView(bytes.buffer);
  vals.forEach((x, i) => dv.setFloat32(4 * i, x, true));
  await Deno.writeFile(`${dir}/q.s`, bytes);
  await Deno.writeTextFile(
    `${dir}/q.hs`,
    `!INTERFILE  :=
name of data file := q.s
imagedata byte order := LITTLEENDIAN
!number format := float
!number of bytes per pixel := 4
number of dimensions := 4
matrix axis label [4] := segment
!matrix size [4] := 3
matrix axis label [3] := view
!matrix size [3] := ${nv}
matrix axis label [2] := axial coordinate
!matrix size [2] := { 2,3,2}
matrix axis label [1] := tangential coordinate
!matrix size [1] := ${nr}
minimum ring difference per segment := { 1,0,-1}
maximum ring difference per segment := { 1,0,-1}
Scanner parameters:=
Number of rings := 3
Number of detectors per ring := 64
Inner ring diameter (cm) := 12
Average depth of interaction (cm) := 0
Distance between rings (cm) := 0.4
end scanner parameters:=
!END OF INTERFILE :=
`,
  );
  const s = await readInterfileSinogram(`${dir}/q.hs`, { remap: false });
  assertEquals(s.shape, scanner.sinogramShape);
  scanner.planes.forEach((pl, p) => {
    const ax = Math.min(pl.ring1, pl.ring2);
    for (const [v, r] of [[0, 0], [5, 7], [31, 32]]) {
      const got = s.data[r + nr * (v + nv * p)];
      assertClose(got, value(pl.segment, ax, v, r), 1e-6, `plane ${p} view ${v} bin ${r}`);
    }
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bad Interfile inputs give clear errors", async () => {
  const dir = await Deno.makeTempDir();
  const scanner = smallScanner(2, 1);
  await writeInterfileSinogram(`${dir}/a.hs`, { data: new Float32Array(scanner.bins), scanner });
  const text = await Deno.readTextFile(`${dir}/a.hs`);
  const expect = async (t: string, re: RegExp, file = "b.hs") => {
    await Deno.writeTextFile(`${dir}/${file}`, t);
    await rejects(readInterfileSinogram(`${dir}/${file}`), (e: Error) => {
      assert(e instanceof FormatError, String(e));
      assert(re.test(e.message), e.message);
      return true;
    });
  };
  await expect("hello := 1\n", /not an Interfile header/);
  await expect(text.replace("{ 0,-1,1 }\nmax", "{ 0,-2,1 }\nmax"), /span > 1/);
  await expect(text.replace("!matrix size [2] := 32", "!matrix size [2] := 16"), /view mashing/);
  await expect(text.replace("{ 2,1,1 }", "{ 2,1,2 }"), /segment 1 has 2 axial positions/);
  await Deno.writeFile(`${dir}/a.s`, new Uint8Array(100));
  await rejects(readInterfileSinogram(`${dir}/a.hs`), /truncated data file/);
  await rejects(
    writeInterfileImage(`${dir}/i.hv`, {
      data: new Float32Array(3),
      grid: imageGrid({ shape: [2, 2, 1], voxelSizeMm: [1, 1, 1], originMm: [0, 0, 0] }),
    }),
    /holds 4 voxels but the data have 3/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the STIR remap sends every petrel LOR to the STIR bin of the same detector pair", () => {
  const scanner = smallScanner(4, 3);
  const map = stirBinIndex(scanner);
  // a permutation
  const seen = new Uint8Array(map.length);
  for (const j of map) seen[j]++;
  assert(seen.every((c) => c === 1), "stirBinIndex is a permutation");
  // decode each STIR bin with STIR's own conventions and compare the LOR end points
  const { crystalsPerRing: n, radiusMm: R, rings, radialBins: nr } = scanner.spec;
  const views = scanner.views;
  const half = (nr - 1) / 2;
  const segStart: [number, number][] = [];
  let o = 0;
  for (const d of [0, -1, 1, -2, 2, -3, 3]) {
    segStart.push([d, o]);
    o += (rings - Math.abs(d)) * views * nr;
  }
  const lors = scanner.lors();
  const e = lors.endpoints;
  const stirPoint = (det: number, ring: number) => {
    const psi = (2 * Math.PI * det) / n;
    return [R * Math.sin(psi), -R * Math.cos(psi), scanner.ringZ(ring)];
  };
  const close = (p: number[], q: ArrayLike<number>) => p.every((v, k) => Math.abs(v - q[k]) < 1e-3);
  for (let i = 0; i < map.length; i++) {
    let j = map[i];
    const [seg, start] = segStart.filter(([, st]) => st <= j).pop()!;
    j -= start;
    const t = (j % nr) - half;
    const v = Math.floor(j / nr) % views;
    const axial = Math.floor(j / (nr * views));
    const d1 = (((v + (t >> 1)) % n) + n) % n;
    const d2 = (((v - ((t + 1) >> 1) + n / 2) % n) + n) % n;
    const ring1 = axial + Math.max(0, -seg);
    const ring2 = ring1 + seg;
    const p1 = stirPoint(d1, ring1), p2 = stirPoint(d2, ring2);
    const a = e.subarray(6 * i, 6 * i + 3), b = e.subarray(6 * i + 3, 6 * i + 6);
    assert(
      (close(p1, a) && close(p2, b)) || (close(p1, b) && close(p2, a)),
      `bin ${i}: STIR LOR ${p1} – ${p2} differs from petrel's ${[...a]} – ${[...b]}`,
    );
  }
});
