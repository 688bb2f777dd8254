import { equal, ok, throws } from "node:assert/strict";
import { centredGrid } from "../../core/geometry/grid.ts";
import {
  derenzoPhantom,
  derenzoRods,
  NEMA_GEOMETRY,
  NEMA_SPHERE_DIAMETERS_MM,
  nemaIecPhantom,
  nemaSphereCentre,
  rasterizeMaterials,
} from "../../core/sim/phantoms.ts";

Deno.test("NEMA IEC: sphere volumes and the body cross-section match their analytic values", () => {
  // 3D grid around the 37 mm and 28 mm spheres (1 mm voxels).
  const c5 = nemaSphereCentre(5);
  const grid = {
    shape: [40, 40, 40] as [number, number, number],
    voxelSizeMm: [1, 1, 1] as [number, number, number],
    originMm: [c5[0] - 19.5, c5[1] - 19.5, -19.5] as [number, number, number],
  };
  const p = nemaIecPhantom(grid, { supersample: 2 });
  let v = 0;
  for (const f of p.fractions[4 + 5]) v += f;
  const r = 37 / 2;
  const exact = (4 / 3) * Math.PI * r ** 3;
  ok(Math.abs(v / exact - 1) < 0.01, `37 mm sphere volume ${v} vs ${exact}`);
  // Activity: 4:1 inside the sphere, 1 in the background.
  const centre = 20 + 40 * (20 + 40 * 20);
  ok(Math.abs(p.activity[centre] - 4) < 1e-6);
  // One slice below the spheres: interior area = analytic D shape minus the lung insert and its wall.
  const G = NEMA_GEOMETRY;
  const slice = {
    shape: [160, 120, 1] as [number, number, number],
    voxelSizeMm: [2, 2, 2] as [number, number, number],
    originMm: [-159, -129, -50] as [number, number, number],
  };
  const q = nemaIecPhantom(slice, { supersample: 4 });
  let bg = 0, lung = 0;
  for (const f of q.fractions[1]) bg += 4 * f;
  for (const f of q.fractions[3]) lung += 4 * f;
  const body = Math.PI * G.halfDiscRadiusMm ** 2 / 2 + 2 * G.boxHalfWidthMm * G.lowerDepthMm +
    Math.PI * G.lowerDepthMm ** 2 / 2;
  const insert = Math.PI * (G.lungRadiusMm + G.lungWallMm) ** 2;
  ok(Math.abs(bg / (body - insert) - 1) < 0.005, `background area ${bg} vs ${body - insert}`);
  ok(Math.abs(lung / (Math.PI * 25 * 25) - 1) < 0.01, `lung area ${lung}`);
  equal(NEMA_SPHERE_DIAMETERS_MM.length, 6);
  // Cold spheres.
  const cold = nemaIecPhantom(grid, { coldSpheres: [5], supersample: 1 });
  equal(cold.activity[centre], 0);
});

Deno.test("Derenzo: rod areas match, rods never overlap and sit inside the cylinder", () => {
  const rods = derenzoRods();
  for (let a = 0; a < rods.length; a++) {
    ok(Math.hypot(rods[a].x, rods[a].y) + rods[a].r <= 100);
    for (let b = a + 1; b < rods.length; b++) {
      const d = Math.hypot(rods[a].x - rods[b].x, rods[a].y - rods[b].y);
      ok(d >= rods[a].r + rods[b].r - 1e-9, `rods ${a} and ${b} overlap`);
    }
  }
  const sizes = new Set(rods.map((r) => r.r));
  equal(sizes.size, 6);
  const grid = centredGrid([220, 220, 1], [1, 1, 1]);
  const p = derenzoPhantom(grid, { supersample: 4 });
  let area = 0;
  for (const v of p.activity) area += v;
  const exact = rods.reduce((s, r) => s + Math.PI * r.r * r.r, 0);
  ok(Math.abs(area / exact - 1) < 0.01, `rod area ${area} vs ${exact}`);
  throws(() => derenzoRods({ rodDiametersMm: [1, 2] }), /6 rod diameters/);
});

Deno.test("rasterizeMaterials: fractions of a half-space are exact and validated", () => {
  const grid = centredGrid([4, 4, 1], [1, 1, 1]);
  const f = rasterizeMaterials(grid, (x) => (x < 0.25 ? 0 : 1), { materials: 2, supersample: 4 });
  // Voxel i = 2 spans x ∈ [0, 1]: a quarter is below 0.25.
  ok(Math.abs(f[1][2] - 0.75) < 1e-6 && f[1][3] === 1 && f[1][1] === 0);
  throws(() => rasterizeMaterials(grid, () => 3, { materials: 2 }), /materialAt returned 3/);
});
