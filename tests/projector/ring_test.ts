import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { defaultContext } from "../../core/gpu/context.ts";
import { centredGrid, type ImageGrid } from "../../core/geometry/grid.ts";
import { RingScanner } from "../../core/geometry/scanner.ts";
import { JosephProjector } from "../../core/projector/joseph.ts";
import { RingPlanarProjector, ringPlanarUnsupported } from "../../core/projector/ring.ts";
import { adjointnessTest, adjointToHost, applyToHost } from "../../core/projector/operator.ts";
import {
  maxAbs,
  maxAbsDiff,
  randomArray,
  ringReferenceCase,
  smallGrid,
  smallScanner,
} from "../_helpers.ts";

/** 448 crystals and 129 radial bins as the mMR (its 224 views need two uniform sinogram slots). */
function mmrRing(rings = 1): RingScanner {
  return new RingScanner({
    name: "mMR-like ring",
    radiusMm: 330,
    crystalsPerRing: 448,
    rings,
    ringSpacingMm: 2.03125,
    radialBins: 129,
    maxRingDifference: 0,
  });
}

const cases = () => [
  { name: "small ring, 1 slice", scanner: smallScanner(), grid: smallGrid(1) },
  {
    name: "small ring, 3 slices, anisotropic voxels, shifted grid",
    scanner: smallScanner(3),
    grid: { shape: [20, 15, 3], voxelSizeMm: [3, 4, 4], originMm: [-25, -31, -4] } as ImageGrid,
  },
  {
    name: "mMR ring, 2 slices",
    scanner: mmrRing(2),
    grid: centredGrid([40, 40, 2], [4, 4, 2.03125]),
  },
];

Deno.test("ring projector: both back projections are adjoint to the forward (rel. error ≤ 1e-6)", async () => {
  const ctx = await defaultContext();
  for (const c of cases()) {
    for (const back of ["lines", "voxels"] as const) {
      for (const uniformMirrors of [true, false]) {
        const P = new RingPlanarProjector(ctx, c.scanner, c.grid, { back, uniformMirrors });
        const r = await adjointnessTest(ctx, P, 5);
        assert(
          r.relativeError <= 1e-6,
          `${c.name} ${back} ${uniformMirrors}: ${JSON.stringify(r)}`,
        );
        P.destroy();
      }
    }
  }
});

Deno.test("ring projector matches the plain-TypeScript Joseph reference on the scanner's LORs", async () => {
  const ctx = await defaultContext();
  for (const c of cases()) {
    const { lors, x, y, tie, aniso, fRef, bRef } = ringReferenceCase(c.scanner, c.grid);
    for (const back of ["lines", "voxels"] as const) {
      const P = new RingPlanarProjector(ctx, c.scanner, c.grid, { back });
      assertEquals(P.outShape, lors.shape);
      const f = await applyToHost(ctx, P, x);
      const b = await adjointToHost(ctx, P, y);
      if (aniso) tie.forEach((t, i) => t && (f[i] = fRef[i]));
      assert(
        maxAbsDiff(f, fRef) <= 1e-5 * maxAbs(fRef),
        `${c.name} forward ${maxAbsDiff(f, fRef)}`,
      );
      assert(
        maxAbsDiff(b, bRef) <= 1e-5 * maxAbs(bRef),
        `${c.name} ${back} back ${maxAbsDiff(b, bRef)}`,
      );
      P.destroy();
    }
  }
});

Deno.test("ring projector on a subset of views equals the generic projector on those LORs", async () => {
  const ctx = await defaultContext();
  const scanner = mmrRing(1);
  const grid = centredGrid([32, 32, 1], [4, 4, 2.03125]);
  const views = scanner.subsetViews(2, 7);
  const P = new RingPlanarProjector(ctx, scanner, grid, { views });
  const J = new JosephProjector(ctx, scanner.lors(views), grid);
  const x = randomArray(32 * 32, 9);
  const y = randomArray(J.lorCount, 10);
  const fj = await applyToHost(ctx, J, x);
  assert(maxAbsDiff(await applyToHost(ctx, P, x), fj) <= 1e-5 * maxAbs(fj));
  const bj = await adjointToHost(ctx, J, y);
  assert(maxAbsDiff(await adjointToHost(ctx, P, y), bj) <= 1e-5 * maxAbs(bj));
  P.destroy();
  J.destroy();
});

Deno.test("ring projector results are bit-identical from run to run", async () => {
  const ctx = await defaultContext();
  const c = cases()[1];
  for (const back of ["lines", "voxels"] as const) {
    const P = new RingPlanarProjector(ctx, c.scanner, c.grid, { back });
    const x = randomArray(20 * 15 * 3, 1);
    const y = randomArray(P.outShape.reduce((a, b) => a * b), 2);
    assertEquals(await applyToHost(ctx, P, x), await applyToHost(ctx, P, x));
    assertEquals(await adjointToHost(ctx, P, y), await adjointToHost(ctx, P, y));
    P.destroy();
  }
});

Deno.test("ring projector refuses geometries it does not cover, saying why", async () => {
  const ctx = await defaultContext();
  const oblique = smallScanner(4, 2);
  assert(/oblique/.test(ringPlanarUnsupported(oblique, smallGrid(4))!));
  const polygon = new RingScanner({ ...smallScanner().spec, sides: 8 });
  assert(/polygon/.test(ringPlanarUnsupported(polygon, smallGrid(1))!));
  assert(/slices/.test(ringPlanarUnsupported(smallScanner(3), smallGrid(2))!));
  const shifted = { ...smallGrid(3), originMm: [-34.5, -34.5, -3] } as ImageGrid;
  assert(/not centred on ring/.test(ringPlanarUnsupported(smallScanner(3), shifted)!));
  throws(
    () => new RingPlanarProjector(ctx, oblique, smallGrid(4)),
    /RingPlanarProjector: .*oblique/,
  );
  assertEquals(ringPlanarUnsupported(smallScanner(3), smallGrid(3)), null);
});
