import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";

function assertAlmostEquals(a: number, b: number, tol: number): void {
  assert(Math.abs(a - b) <= tol, `${a} is not within ${tol} of ${b}`);
}
import {
  affineOfGrid,
  applyAffine,
  composeAffines,
  invertAffine,
  resampleToGrid,
} from "../../core/geometry/affine.ts";
import { centredGrid, imageGrid } from "../../core/geometry/grid.ts";

/** A rotation about z by `deg` with voxel sizes `v` and translation `t` (an oblique MR affine). */
function oblique(deg: number, v: [number, number, number], t: [number, number, number]) {
  const c = Math.cos(deg * Math.PI / 180), s = Math.sin(deg * Math.PI / 180);
  return [
    [c * v[0], -s * v[1], 0, t[0]],
    [s * v[0], c * v[1], 0, t[1]],
    [0, 0, v[2], t[2]],
    [0, 0, 0, 1],
  ];
}

Deno.test("affine: inverse round trip (oblique, anisotropic) and grid affine", () => {
  const a = oblique(23, [1.2, 0.9, 2.5], [-40, 17, 5.5]);
  const inv = invertAffine(a);
  const id = composeAffines(inv, a);
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) assertAlmostEquals(id[r][c], r === c ? 1 : 0, 1e-12);
  }
  const p: [number, number, number] = [3.5, -7.25, 11];
  const q = applyAffine(inv, applyAffine(a, p));
  for (let i = 0; i < 3; i++) assertAlmostEquals(q[i], p[i], 1e-10);
  const g = centredGrid([4, 6, 3], [2, 3, 4]);
  // voxel (0,0,0) is the origin; voxel (3,5,2) the opposite corner centre
  assertEquals(applyAffine(affineOfGrid(g), [0, 0, 0]), g.originMm);
  assertEquals(applyAffine(affineOfGrid(g), [3, 5, 2]), [3, 7.5, 4]);
  assertThrows(() => invertAffine([[1, 0, 0, 0], [2, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]));
});

Deno.test("resampleToGrid: trilinear reproduces a linear field exactly through an oblique affine", () => {
  // f(x, y, z) = 2 + 0.3x − 0.2y + 0.5z in mm, sampled on an oblique, anisotropic source grid
  const f = (x: number, y: number, z: number) => 2 + 0.3 * x - 0.2 * y + 0.5 * z;
  const shape: [number, number, number] = [40, 44, 20];
  const affine = oblique(17, [1.5, 1.25, 2], [-25, -30, -19]);
  const data = new Float32Array(shape[0] * shape[1] * shape[2]);
  for (let k = 0; k < shape[2]; k++) {
    for (let j = 0; j < shape[1]; j++) {
      for (let i = 0; i < shape[0]; i++) {
        const [x, y, z] = applyAffine(affine, [i, j, k]);
        data[i + shape[0] * (j + shape[1] * k)] = f(x, y, z);
      }
    }
  }
  const target = centredGrid([8, 8, 5], [2.086, 2.086, 2.03]);
  const r = resampleToGrid({ data, shape, affine }, target);
  assertEquals(r.coverage, 1);
  for (let k = 0; k < 5; k++) {
    for (let j = 0; j < 8; j++) {
      for (let i = 0; i < 8; i++) {
        const [x, y, z] = applyAffine(affineOfGrid(target), [i, j, k]);
        assertAlmostEquals(r.data[i + 8 * (j + 8 * k)], f(x, y, z), 2e-5 * 10);
      }
    }
  }
});

Deno.test("resampleToGrid: same grid is the identity; coverage counts voxels inside; disjoint = 0", () => {
  const g = centredGrid([5, 4, 3], [2, 2, 2]);
  const data = Float32Array.from({ length: 60 }, (_, i) => i * 0.5 - 3);
  const same = resampleToGrid({ data, shape: g.shape, affine: affineOfGrid(g) }, g);
  assertEquals([...same.data], [...data]);
  assertEquals(same.coverage, 1);
  // shifted by half the grid along x: 3 of 5 columns lie within half a voxel of the source
  const shifted = imageGrid({ ...g, originMm: [g.originMm[0] + 4, g.originMm[1], g.originMm[2]] });
  const half = resampleToGrid({ data, shape: g.shape, affine: affineOfGrid(g) }, shifted, {
    fill: -99,
  });
  assertAlmostEquals(half.coverage, 3 / 5, 1e-12);
  assertEquals(half.data[4], -99); // column 4 now lies at x + 8 mm: outside
  assertEquals(half.data[0], data[2]); // column 0 now sits on source column 2
  const far = imageGrid({ ...g, originMm: [500, 0, 0] });
  assertEquals(resampleToGrid({ data, shape: g.shape, affine: affineOfGrid(g) }, far).coverage, 0);
});
