import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { defaultContext } from "../../core/gpu/context.ts";
import { centredGrid } from "../../core/geometry/grid.ts";
import { lorSet } from "../../core/geometry/lors.ts";
import { JosephProjector } from "../../core/projector/joseph.ts";
import { adjointnessTest, adjointToHost, applyToHost } from "../../core/projector/operator.ts";
import { josephBackReference, josephForwardReference } from "../../core/projector/reference.ts";
import {
  assertClose,
  maxAbs,
  maxAbsDiff,
  randomArray,
  randomLors,
  smallGrid,
  smallScanner,
} from "../_helpers.ts";

/**
 * Edge cases: axis-parallel along x, y, z; a miss; a zero-length LOR; one ending inside; one
 * parallel to y up to rounding (1e-13 mm drift: huge clipping parameters in the kernel).
 */
function edgeLors() {
  return lorSet(
    [-100, 1.5, 0, 2, -100, 0, 1, 1, -50, 100, 100, 0, 3, 3, 0, 0, 0, 0, -6e-14, -330, 0],
    [100, 1.5, 0, 2, 100, 0, 1, 1, 50, 120, 100, 0, 3, 3, 0, 100, 7, 1, 2e-14, 330, 0],
  );
}

const cases = () => {
  const s2 = smallScanner();
  const s3 = smallScanner(4, 2);
  return [
    { name: "2d ring sinogram", lors: s2.lors(), grid: smallGrid(1) },
    { name: "3d span-1 segments", lors: s3.lors(), grid: smallGrid(4) },
    {
      name: "oblique random LORs, anisotropic voxels",
      lors: randomLors(600, 7),
      grid: centredGrid([20, 16, 12], [3, 4, 2.5]),
    },
    { name: "edge-case LORs", lors: edgeLors(), grid: centredGrid([8, 8, 4], [2, 2, 3]) },
  ];
};

Deno.test("Joseph forward/back are adjoint for every geometry (rel. error ≤ 1e-5)", async () => {
  const ctx = await defaultContext();
  for (const c of cases()) {
    const P = new JosephProjector(ctx, c.lors, c.grid);
    for (const seed of [1, 2]) {
      const r = await adjointnessTest(ctx, P, seed);
      assert(r.relativeError <= 1e-5, `${c.name}: ⟨Ax,y⟩=${r.forward} ⟨x,Aᵀy⟩=${r.back}`);
      assert(r.forward > 0, `${c.name}: projector produced nothing`);
    }
    P.destroy();
  }
});

Deno.test("WGSL Joseph agrees with the plain-TypeScript reference (storage and uniform-slice paths)", async () => {
  const ctx = await defaultContext();
  for (const c of cases().flatMap((c) => [{ ...c, uni: true }, { ...c, uni: false }])) {
    const P = new JosephProjector(ctx, c.lors, c.grid, { uniformSlices: c.uni });
    assertEquals(P.usesUniformSlices, c.uni && c.grid.shape[2] <= 4);
    const x = randomArray(P.inShape.reduce((a, b) => a * b), 11);
    const y = randomArray(c.lors.count, 12);
    const fw = await applyToHost(ctx, P, x);
    const bk = await adjointToHost(ctx, P, y);
    const rf = josephForwardReference(c.lors, c.grid, x);
    const rb = josephBackReference(c.lors, c.grid, y);
    assert(
      maxAbsDiff(fw, rf) <= 2e-5 * maxAbs(rf) + 1e-6,
      `${c.name} forward: ${maxAbsDiff(fw, rf)}`,
    );
    assert(maxAbsDiff(bk, rb) <= 2e-5 * maxAbs(rb) + 1e-6, `${c.name} back: ${maxAbsDiff(bk, rb)}`);
    P.destroy();
  }
});

Deno.test("a box of ones gives analytic chord lengths, with anisotropic voxels", async () => {
  const ctx = await defaultContext();
  // 10 × 8 × 6 voxels of 2 × 3 × 4 mm: 20 × 24 × 24 mm box centred on the origin
  const grid = centredGrid([10, 8, 6], [2, 3, 4]);
  const ones = new Float32Array(10 * 8 * 6).fill(1);
  const t = Math.tan(0.2);
  const lors = lorSet(
    // along x through the middle, along y, along z, and oblique in x–y exiting through x faces
    [-50, 0.3, 0.7, 0.2, -50, -1, 0.5, 0.5, -50, -50, -50 * t, 1],
    [50, 0.3, 0.7, 0.2, 50, -1, 0.5, 0.5, 50, 50, 50 * t, 1],
  );
  const P = new JosephProjector(ctx, lors, grid);
  const fw = await applyToHost(ctx, P, ones);
  // Joseph samples voxel centres: the integral equals the box extent along the dominant axis /cos
  assertClose(fw[0], 20, 1e-6, "x chord");
  assertClose(fw[1], 24, 1e-6, "y chord");
  assertClose(fw[2], 24, 1e-6, "z chord");
  assertClose(fw[3], 20 / Math.cos(0.2), 1e-6, "oblique chord");
  P.destroy();
});

Deno.test("zero in gives zero out, and LORs that miss or have zero length give 0", async () => {
  const ctx = await defaultContext();
  const grid = centredGrid([8, 8, 4], [2, 2, 3]);
  const lors = edgeLors();
  const P = new JosephProjector(ctx, lors, grid);
  assertEquals(maxAbs(await applyToHost(ctx, P, new Float32Array(256))), 0);
  assertEquals(maxAbs(await adjointToHost(ctx, P, new Float32Array(lors.count))), 0);
  const fw = await applyToHost(ctx, P, new Float32Array(256).fill(1));
  assertEquals(fw[3], 0); // misses the image
  assertEquals(fw[4], 0); // zero length
  assert(fw[0] > 0 && fw[1] > 0 && fw[2] > 0, "axis-parallel rays must see the image");
  // a LOR that ends inside the image sees only the part up to its end
  assert(fw[5] > 0 && fw[5] < fw[0], `partial LOR ${fw[5]} vs full ${fw[0]}`);
  // x = 0 lies between voxel centres: half of each neighbouring column, 8 planes of 2 mm, 4 z
  // slices of 3 mm with the ray at z = 0 between slices 1 and 2
  assertClose(fw[6], 16, 1e-5, "near-axis-parallel ray");
  P.destroy();
});

Deno.test("forward and back projections are bit-identical from run to run, chunked or not", async () => {
  const ctx = await defaultContext();
  const s = smallScanner(4, 2);
  const lors = s.lors();
  const grid = smallGrid(4);
  const x = randomArray(24 * 24 * 4, 3);
  const y = randomArray(lors.count, 4);
  const P = new JosephProjector(ctx, lors, grid);
  const Pc = new JosephProjector(ctx, lors, grid, { maxLorsPerChunk: 256 });
  assert(Pc.chunkCount > 10, `expected many chunks, got ${Pc.chunkCount}`);
  const f1 = await applyToHost(ctx, P, x);
  const b1 = await adjointToHost(ctx, P, y);
  for (let run = 0; run < 3; run++) {
    assertEquals(await applyToHost(ctx, P, x), f1);
    assertEquals(await adjointToHost(ctx, P, y), b1);
  }
  // chunking changes the dispatch order of the scatter, not the result
  assertEquals(await applyToHost(ctx, Pc, x), f1);
  assertEquals(await adjointToHost(ctx, Pc, y), b1);
  P.destroy();
  Pc.destroy();
});

Deno.test("back projection handles negative values and a large dynamic range", async () => {
  const ctx = await defaultContext();
  const s = smallScanner();
  const lors = s.lors();
  const grid = smallGrid(1);
  const y = Float32Array.from(
    randomArray(lors.count, 9),
    (v, i) => (v - 0.5) * (i % 97 === 0 ? 1e6 : 1),
  );
  const P = new JosephProjector(ctx, lors, grid);
  const bk = await adjointToHost(ctx, P, y);
  const rb = josephBackReference(lors, grid, y);
  assert(
    maxAbsDiff(bk, rb) <= 1e-5 * maxAbs(rb),
    `max diff ${maxAbsDiff(bk, rb)} of ${maxAbs(rb)}`,
  );
  P.destroy();
});

Deno.test("bad input gives clear errors", async () => {
  const ctx = await defaultContext();
  const s = smallScanner();
  const grid = smallGrid(1);
  const P = new JosephProjector(ctx, s.lors(), grid);
  const wrong = ctx.array([10, 10, 1]);
  const out = ctx.array(P.outShape);
  assertThrows(
    () => ctx.run((rec) => P.apply(rec, wrong, out)),
    /does not match the expected shape \[24,24,1\]/,
  );
  assertThrows(
    () => ctx.run((rec) => P.adjoint(rec, wrong, ctx.array(P.inShape))),
    /expected shape/,
  );
  const bad = s.lors();
  bad.endpoints[5] = NaN;
  assertThrows(() => new JosephProjector(ctx, bad, grid), /non-finite/);
  assertThrows(
    () =>
      new JosephProjector(
        ctx,
        s.lors(),
        { shape: [24, 24, 0], voxelSizeMm: [3, 3, 3], originMm: [0, 0, 0] } as never,
      ),
    /invalid image grid: shape/,
  );
  P.destroy();
});
