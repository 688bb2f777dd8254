import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { mmrLike2d, mmrLike3d, RingScanner } from "../../core/geometry/scanner.ts";
import { centredGrid, imageGrid, sameGrid, voxelCentreMm } from "../../core/geometry/grid.ts";
import { lorSet } from "../../core/geometry/lors.ts";
import { assertClose, smallScanner } from "../_helpers.ts";

Deno.test("mMR-like presets have the reference sinogram sizes", () => {
  const s2 = mmrLike2d();
  assertEquals(s2.sinogramShape, [129, 224, 1]);
  assertEquals(s2.bins, 28_896);
  const s3 = mmrLike3d({ rings: 32, maxRingDifference: 7 });
  assertEquals(s3.sinogramShape, [129, 224, 424]);
  assertEquals(s3.bins, 12_251_904);
  assertEquals(mmrLike3d({ rings: 3, maxRingDifference: 0 }).bins, 86_688);
});

Deno.test("planes follow STIR's segment order 0, -1, +1, -2, +2 with axial order inside", () => {
  const s = smallScanner(4, 2);
  const segs = s.planes.map((p) => p.segment);
  assertEquals(segs, [0, 0, 0, 0, -1, -1, -1, 1, 1, 1, -2, -2, 2, 2]);
  for (const p of s.planes) assertEquals(p.ring2 - p.ring1, p.segment);
  // inside a segment the mean ring increases
  const seg1 = s.planes.filter((p) => p.segment === 1).map((p) => p.ring1 + p.ring2);
  assertEquals(seg1, [1, 3, 5]);
});

Deno.test("radial bin 0 of every view is a diameter, and views are parallel chords", () => {
  const s = smallScanner();
  const lors = s.lors();
  const nr = s.radialBins;
  const centre = (nr - 1) / 2;
  for (let v = 0; v < s.views; v++) {
    const n = v * nr + centre;
    const e = lors.endpoints;
    // midpoint of a diameter is the origin
    assertClose((e[6 * n] + e[6 * n + 3]) / 2, 0, 1e-4, "midpoint x");
    assertClose((e[6 * n + 1] + e[6 * n + 4]) / 2, 0, 1e-4, "midpoint y");
    // even radial offsets share the diameter's direction
    const dir = (k: number) => {
      const dx = e[6 * k + 3] - e[6 * k];
      const dy = e[6 * k + 4] - e[6 * k + 1];
      return Math.atan2(dy, dx);
    };
    const d0 = dir(n);
    const d2 = dir(n + 2);
    const diff = Math.abs(Math.sin(d0 - d2));
    assert(diff < 1e-5, `view ${v}: chords ±2 bins apart are not parallel (${diff})`);
  }
  // every crystal pair appears at most once in the sinogram
  const seen = new Set<string>();
  for (let v = 0; v < s.views; v++) {
    for (let r = 0; r < nr; r++) {
      const [a, b] = s.crystalPair(r, v);
      const key = a < b ? `${a},${b}` : `${b},${a}`;
      assert(!seen.has(key), `pair ${key} repeated`);
      seen.add(key);
    }
  }
});

Deno.test("subsets partition the views and bin indices address the full sinogram", () => {
  const s = smallScanner(2, 1);
  const all = new Set<number>();
  for (let k = 0; k < 4; k++) {
    const views = s.subsetViews(k, 4);
    const idx = s.binIndices(views);
    assertEquals(idx.length, s.radialBins * views.length * s.planes.length);
    const lors = s.lors(views);
    const full = s.lors();
    for (let n = 0; n < idx.length; n += 7) {
      for (let c = 0; c < 6; c++) {
        assertEquals(lors.endpoints[6 * n + c], full.endpoints[6 * idx[n] + c]);
      }
    }
    idx.forEach((i) => all.add(i));
  }
  assertEquals(all.size, s.bins);
  assertThrows(() => s.subsetViews(4, 4), RangeError);
  assertThrows(() => s.subsetViews(0, 0), RangeError);
});

Deno.test("invalid scanners and grids are rejected with the field named", () => {
  assertThrows(
    () =>
      new RingScanner({
        radiusMm: 100,
        crystalsPerRing: 30,
        rings: 1,
        ringSpacingMm: 4,
        radialBins: 11,
        maxRingDifference: 0,
      }),
    /crystalsPerRing/,
  );
  assertThrows(() => smallScanner(2, 3), /maxRingDifference/);
  assertThrows(
    () => imageGrid({ shape: [0, 4, 4], voxelSizeMm: [1, 1, 1], originMm: [0, 0, 0] }),
    /shape/,
  );
  assertThrows(
    () => imageGrid({ shape: [4, 4, 4], voxelSizeMm: [1, -1, 1], originMm: [0, 0, 0] }),
    /voxelSizeMm/,
  );
  assertThrows(() => lorSet([0, 0, 0], [1, 1]), RangeError);
  assertThrows(() => lorSet([0, 0, NaN], [1, 1, 1]), /non-finite/);
});

Deno.test("centred grids are symmetric about the origin", () => {
  const g = centredGrid([4, 5, 1], [2, 3, 4]);
  const first = voxelCentreMm(g, 0, 0, 0);
  const last = voxelCentreMm(g, 3, 4, 0);
  assertEquals(first.map((v, i) => v + last[i]), [0, 0, 0]);
  assert(sameGrid(g, centredGrid([4, 5, 1], [2, 3, 4])));
  assert(!sameGrid(g, centredGrid([4, 5, 1], [2, 3, 5])));
});

Deno.test("regular-polygon crystals lie on the flat sides", () => {
  const s = new RingScanner({
    radiusMm: 100,
    crystalsPerRing: 64,
    rings: 1,
    ringSpacingMm: 4,
    radialBins: 17,
    maxRingDifference: 0,
    sides: 8,
  });
  // crystal 0 sits at a side's centre: distance = inner radius; others are farther out
  assertClose(Math.hypot(s.crystalXY[0], s.crystalXY[1]), 100, 1e-9);
  assert(Math.hypot(s.crystalXY[8], s.crystalXY[9]) > 100);
});

Deno.test("a grid that does not fit the scanner is rejected with what would fit", () => {
  const s = smallScanner(); // radius 60 mm, one ring
  s.checkGridFits(centredGrid([24, 24, 1], [3, 3, 4])); // corners at 50.9 mm: fits
  assertThrows(
    () => s.checkGridFits(centredGrid([32, 32, 1], [3, 3, 4])),
    /corners reach 67\.9 mm .* crystals sit at 60 mm/,
  );
  assertThrows(() => s.checkGridFits(centredGrid([24, 24, 5], [3, 3, 4])), /axially/);
  assertThrows(() => s.imageGrid(64, 3), /does not fit the scanner/);
  assertEquals(mmrLike2d().imageGrid(128, 2.086).shape, [128, 128, 1]);
});
