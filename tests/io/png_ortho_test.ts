import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import {
  colormapLut,
  formatTick,
  type OrthoRaster,
  renderOrthoMontage,
} from "../../core/io/png.ts";

// v(i, j, k) = i + 10 j + 100 k on a 4 × 3 × 2 grid: every voxel's value names its position.
const [NX, NY, NZ] = [4, 3, 2];
const vol = Float32Array.from(
  { length: NX * NY * NZ },
  (_, p) => (p % NX) + 10 * (Math.floor(p / NX) % NY) + 100 * Math.floor(p / (NX * NY)),
);

function pixel(r: OrthoRaster, x: number, y: number): number[] {
  const o = (y * r.width + x) * 3;
  return [r.pixels[o], r.pixels[o + 1], r.pixels[o + 2]];
}

Deno.test("ortho montage: each plane shows the cursor's slice, x/y/z upwards, at 2 px per mm", () => {
  // Grey window 0 … 255 makes a pixel's grey level equal to the voxel value.
  const r = renderOrthoMontage(
    [{ data: vol, shape: [NX, NY, NZ], voxelMm: [1, 1, 1], label: "v" }],
    { colormap: "grey", window: { min: 0, max: 255 }, panelPx: 8, cursor: [2, 1, 1] },
  );
  const byPlane = Object.fromEntries(r.layout.panels.map((p) => [p.plane, p]));
  assertEquals(Object.keys(byPlane), ["axial", "coronal", "sagittal"]);
  // 4 mm is the largest extent → 8 px: 2 px per voxel (1 mm voxels).
  assertEquals([byPlane.axial.w, byPlane.axial.h], [8, 6]);
  assertEquals([byPlane.coronal.w, byPlane.coronal.h], [8, 4]);
  assertEquals([byPlane.sagittal.w, byPlane.sagittal.h], [6, 4]);
  // Expected voxel value of each pixel, written out per plane (v counts upwards on screen).
  const expect = {
    axial: (u: number, v: number) => u + 10 * v + 100 * 1, // k = cursor 1
    coronal: (u: number, v: number) => u + 10 * 1 + 100 * v, // j = cursor 1
    sagittal: (u: number, v: number) => 2 + 10 * u + 100 * v, // i = cursor 2
  };
  for (const [plane, f] of Object.entries(expect)) {
    const p = byPlane[plane];
    const rowsV = p.h / 2;
    for (let py = 0; py < p.h; py++) {
      for (let px = 0; px < p.w; px++) {
        const g = f(Math.floor(px / 2), rowsV - 1 - Math.floor(py / 2));
        assertEquals(pixel(r, p.x + px, p.y + py), [g, g, g], `${plane} (${px}, ${py})`);
      }
    }
  }
  // The colour bar runs from the window max (top) to the min (bottom).
  const bar = r.layout.bars[0];
  assertEquals([bar.min, bar.max], [0, 255]);
  assertEquals(pixel(r, bar.x, bar.y), [255, 255, 255]);
  assertEquals(pixel(r, bar.x + bar.w - 1, bar.y + bar.h - 1), [0, 0, 0]);
});

Deno.test("ortho montage: voxel aspect, one plane for 2-D images, shared windows, colour maps", () => {
  // 4 mm slices: the coronal panel is 4× as tall per voxel as it is wide.
  const r = renderOrthoMontage(
    [{ data: vol, shape: [NX, NY, NZ], voxelMm: [1, 1, 4] }],
    { panelPx: 8 },
  );
  const cor = r.layout.panels.find((p) => p.plane === "coronal")!;
  assertEquals([cor.w, cor.h], [4, 8]); // 4 mm × 8 mm at 1 px per mm
  // Chosen planes, in the given order.
  const two = renderOrthoMontage([{ data: vol, shape: [NX, NY, NZ] }], {
    planes: ["sagittal", "axial"],
  });
  assertEquals(two.layout.panels.map((p) => p.plane), ["sagittal", "axial"]);
  throws(() => renderOrthoMontage([{ data: vol, shape: [NX, NY, NZ] }], { planes: [] }), /planes/);
  // nz = 1: only the axial plane.
  const flat = renderOrthoMontage([{ data: vol.subarray(0, 12), shape: [4, 3, 1] }]);
  assertEquals(flat.layout.panels.map((p) => p.plane), ["axial"]);
  // A shared window spans both volumes; the inferno bar's top is inferno's brightest colour.
  const pair = renderOrthoMontage([
    { data: vol, shape: [NX, NY, NZ] },
    { data: vol.map((v) => 2 * v), shape: [NX, NY, NZ] },
  ], { sharedWindow: true });
  assertEquals(pair.layout.bars.map((b) => [b.min, b.max]), [[0, 246], [0, 246]]);
  const lut = colormapLut("inferno");
  assertEquals(pixel(pair, pair.layout.bars[0].x, pair.layout.bars[0].y), [...lut.subarray(765)]);
  const own = renderOrthoMontage([
    { data: vol, shape: [NX, NY, NZ] },
    { data: vol.map((v) => 2 * v), shape: [NX, NY, NZ] },
  ]);
  assertEquals(own.layout.bars.map((b) => [b.min, b.max]), [[0, 123], [0, 246]]);
});

Deno.test("ortho montage: the title widens the figure and is drawn; bad input is named", () => {
  const plain = renderOrthoMontage([{ data: vol, shape: [NX, NY, NZ] }], { panelPx: 8 });
  const titled = renderOrthoMontage([{ data: vol, shape: [NX, NY, NZ] }], {
    panelPx: 8,
    title: "OSEM: iterations 4, subsets 14, a long title",
  });
  assert(titled.width > plain.width && titled.height > plain.height);
  // Some title pixel in the first text row is white.
  let lit = 0;
  for (let x = 0; x < titled.width; x++) {
    for (let y = 6; y < 20; y++) if (pixel(titled, x, y)[0] === 255) lit++;
  }
  assert(lit > 50, `only ${lit} title pixels lit`);
  throws(
    () => renderOrthoMontage([{ data: vol, shape: [4, 3, 3], label: "osem" }]),
    /volume 0 \("osem"\).*holds 36 voxels but the data have 24/,
  );
  throws(() => renderOrthoMontage([{ data: vol, shape: [24] }]), /must be \[nx, ny, nz\]/);
  throws(
    () => renderOrthoMontage([{ data: vol, shape: [NX, NY, NZ] }], { cursor: [4, 0, 0] }),
    /cursor \[4,0,0\] is outside/,
  );
  throws(() => renderOrthoMontage([]), /no volumes/);
});

Deno.test("formatTick: three significant digits, exponents for large and small values", () => {
  assertEquals(
    [0, 1, 70.84, 0.1234, 12345, 0.0012, -3.456].map(formatTick),
    ["0", "1", "70.8", "0.123", "1.2e4", "1.2e-3", "-3.46"],
  );
});
