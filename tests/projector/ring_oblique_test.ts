import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { defaultContext } from "../../core/gpu/context.ts";
import { centredGrid, type ImageGrid } from "../../core/geometry/grid.ts";
import { mmrLike3d, RingScanner } from "../../core/geometry/scanner.ts";
import { JosephProjector } from "../../core/projector/joseph.ts";
import { RingObliqueProjector, ringObliqueUnsupported } from "../../core/projector/ring_oblique.ts";
import { adjointnessTest, adjointToHost, applyToHost } from "../../core/projector/operator.ts";
import { ringForwardModel, ringProjectorKind } from "../../core/model/forward_model.ts";
import {
  maxAbs,
  maxAbsDiff,
  randomArray,
  ringReferenceCase,
  smallGrid,
  smallScanner,
} from "../_helpers.ts";

const cases = () => [
  {
    name: "4 rings, max ring difference 3, slices on rings",
    scanner: smallScanner(4, 3),
    grid: smallGrid(4),
  },
  {
    name: "3 rings, half-spacing slices, anisotropic voxels, shifted grid",
    scanner: smallScanner(3, 2),
    grid: { shape: [20, 15, 5], voxelSizeMm: [3, 4, 2], originMm: [-25, -31, -4] } as ImageGrid,
  },
  {
    name: "5 rings, fewer slices than rings span (LORs leave the grid in z)",
    scanner: smallScanner(5, 4),
    grid: centredGrid([16, 16, 3], [3, 3, 3]),
  },
];

Deno.test("oblique ring projector: back projection is adjoint to the forward (rel. error ≤ 1e-6)", async () => {
  const ctx = await defaultContext();
  for (const c of cases()) {
    for (const zChunkBytes of [undefined, 1]) {
      const P = new RingObliqueProjector(ctx, c.scanner, c.grid, { zChunkBytes });
      const r = await adjointnessTest(ctx, P, 5);
      assert(r.relativeError <= 1e-6, `${c.name} ${zChunkBytes}: ${JSON.stringify(r)}`);
      P.destroy();
    }
  }
});

Deno.test("oblique ring projector matches the plain-TypeScript Joseph reference and JosephProjector", async () => {
  const ctx = await defaultContext();
  for (const c of cases()) {
    const { lors, x, y, tie, aniso, fRef, bRef } = ringReferenceCase(c.scanner, c.grid);
    const J = new JosephProjector(ctx, lors, c.grid);
    const fJ = await applyToHost(ctx, J, x);
    const bJ = await adjointToHost(ctx, J, y);
    J.destroy();
    const P = new RingObliqueProjector(ctx, c.scanner, c.grid, { zChunkBytes: 1 });
    assertEquals(P.outShape, lors.shape);
    const f = await applyToHost(ctx, P, x);
    const b = await adjointToHost(ctx, P, y);
    if (aniso) tie.forEach((t, i) => t && (f[i] = fRef[i], fJ[i] = fRef[i]));
    for (
      const [what, got, ref] of [["forward", f, fRef], ["back", b, bRef], [
        "forward vs JosephProjector",
        f,
        fJ,
      ], ["back vs JosephProjector", b, bJ]] as const
    ) {
      const d = maxAbsDiff(got, ref) / maxAbs(ref);
      assert(d <= 1e-5, `${c.name} ${what}: ${d}`);
    }
    P.destroy();
  }
});

Deno.test("oblique ring projector: more planes than one pass holds (576 > 256), a subset of views", async () => {
  const ctx = await defaultContext();
  // 24 rings 1 mm apart, every ring difference: 576 planes, so two plane passes
  const scanner = new RingScanner({
    ...smallScanner().spec,
    rings: 24,
    ringSpacingMm: 1,
    maxRingDifference: 23,
  });
  const grid = centredGrid([8, 8, 24], [5, 5, 1]);
  const views = scanner.subsetViews(1, 4);
  const P = new RingObliqueProjector(ctx, scanner, grid, { views, zChunkBytes: 1 });
  const r = await adjointnessTest(ctx, P, 7);
  assert(r.relativeError <= 1e-6, JSON.stringify(r));
  const J = new JosephProjector(ctx, scanner.lors(views), grid);
  const x = randomArray(8 * 8 * 24, 5);
  const y = randomArray(J.lorCount, 6);
  const fJ = await applyToHost(ctx, J, x);
  const bJ = await adjointToHost(ctx, J, y);
  assert(maxAbsDiff(await applyToHost(ctx, P, x), fJ) <= 1e-5 * maxAbs(fJ));
  assert(maxAbsDiff(await adjointToHost(ctx, P, y), bJ) <= 1e-5 * maxAbs(bJ));
  P.destroy();
  J.destroy();
});

Deno.test("oblique ring projector results are bit-identical from run to run", async () => {
  const ctx = await defaultContext();
  const c = cases()[1];
  const P = new RingObliqueProjector(ctx, c.scanner, c.grid, { zChunkBytes: 1 });
  const x = randomArray(20 * 15 * 5, 1);
  const y = randomArray(P.outShape.reduce((a, b) => a * b), 2);
  assertEquals(await applyToHost(ctx, P, x), await applyToHost(ctx, P, x));
  assertEquals(await adjointToHost(ctx, P, y), await adjointToHost(ctx, P, y));
  P.destroy();
});

Deno.test("oblique ring projector refuses geometries it does not cover, saying why", async () => {
  const ctx = await defaultContext();
  const polygon = new RingScanner({ ...smallScanner(2, 1).spec, sides: 8 });
  assert(/polygon/.test(ringObliqueUnsupported(polygon, smallGrid(2))!));
  // 16 rings 10 mm apart: LORs 150 mm apart in z on chords ≥ 60 mm: z would be Joseph's axis
  const steep = new RingScanner({
    ...smallScanner().spec,
    rings: 16,
    ringSpacingMm: 10,
    maxRingDifference: 15,
  });
  assert(
    /steeper than 45°/.test(ringObliqueUnsupported(steep, centredGrid([8, 8, 16], [5, 5, 10]))!),
  );
  const deep = mmrLike3d({ rings: 64, maxRingDifference: 3 });
  assert(/65 slices/.test(ringObliqueUnsupported(deep, centredGrid([64, 64, 65], [4, 4, 4]))!));
  assertEquals(ringObliqueUnsupported(smallScanner(4, 3), smallGrid(4)), null);
  throws(
    () => new RingObliqueProjector(ctx, polygon, smallGrid(2)),
    /RingObliqueProjector: .*polygon/,
  );
});

Deno.test("ringForwardModel: auto picks the oblique ring projector on CPU adapters, same model as Joseph's", async () => {
  const ctx = await defaultContext();
  const scanner = smallScanner(4, 3);
  const grid = smallGrid(4);
  const kind = ringProjectorKind(ctx, scanner, grid);
  assertEquals(kind, ctx.adapter.isFallback ? "oblique" : "joseph");
  assertEquals(ringProjectorKind(ctx, scanner, grid, { projector: "ring" }), "oblique");
  assertEquals(ringProjectorKind(ctx, smallScanner(4, 0), grid), "planar");
  assertEquals(ringProjectorKind(ctx, scanner, grid, { maxLorsPerChunk: 1024 }), "joseph");
  // 4 planes on 3 slices: fewer planes per slice than OBLIQUE_PLANES_PER_SLICE, Joseph's is faster
  assertEquals(ringProjectorKind(ctx, smallScanner(2, 1), smallGrid(3, 2)), "joseph");
  assertEquals(
    ringProjectorKind(ctx, smallScanner(2, 1), smallGrid(3, 2), { projector: "ring" }),
    "oblique",
  );
  const mu = new Float32Array(24 * 24 * 4).fill(0.0096);
  const x = ctx.array(grid.shape, randomArray(24 * 24 * 4, 8));
  const expected = async (projector: "ring" | "joseph") => {
    const m = ringForwardModel(ctx, scanner, { grid, subsets: 3, muMap: mu, projector });
    const e = await m.expected(x);
    const s = await m.totalSensitivity().read();
    m.destroy();
    return [e, s];
  };
  const [eR, sR] = await expected("ring");
  const [eJ, sJ] = await expected("joseph");
  assert(maxAbsDiff(eR, eJ) <= 1e-5 * maxAbs(eJ), `expected ${maxAbsDiff(eR, eJ)}`);
  assert(maxAbsDiff(sR, sJ) <= 1e-5 * maxAbs(sJ), `sensitivity ${maxAbsDiff(sR, sJ)}`);
  x.destroy();
});

Deno.test("oblique ring projector equals JosephProjector on two views of the 3d bench case (424 planes, 128²×32)", async () => {
  // Regression: one pass of all 424 planes gave llvmpipe a back projection off by up to 50 %.
  const ctx = await defaultContext();
  const scanner = mmrLike3d({ rings: 32, maxRingDifference: 7 });
  const grid = scanner.imageGrid(128, 2.086);
  const views = [0, 100];
  const P = new RingObliqueProjector(ctx, scanner, grid, { views });
  const J = new JosephProjector(ctx, scanner.lors(views), grid);
  const x = randomArray(128 * 128 * 32, 11);
  const y = randomArray(J.lorCount, 12);
  const fJ = await applyToHost(ctx, J, x);
  const bJ = await adjointToHost(ctx, J, y);
  assert(maxAbsDiff(await applyToHost(ctx, P, x), fJ) <= 1e-5 * maxAbs(fJ));
  const d = maxAbsDiff(await adjointToHost(ctx, P, y), bJ) / maxAbs(bJ);
  assert(d <= 1e-4, `back ${d}`); // ~1e4 contributions per voxel: rounding reaches 1e-5
  P.destroy();
  J.destroy();
});
