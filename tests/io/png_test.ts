import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { inflateSync } from "node:zlib";
import {
  colormapLut,
  encodePng,
  renderMontage,
  writePng,
  writePngMontage,
} from "../../core/io/png.ts";
import { hasPython, python } from "./_python.ts";

const PY = await hasPython();

/** Independent minimal PNG decoder for 8-bit, filter-0 files (what petrel writes). */
function decode(png: Uint8Array): { w: number; h: number; type: number; rows: Uint8Array[] } {
  assertEquals([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const dv = new DataView(png.buffer, png.byteOffset);
  let o = 8, w = 0, h = 0, type = 0;
  const idat: Uint8Array[] = [];
  while (o < png.length) {
    const len = dv.getUint32(o);
    const t = new TextDecoder().decode(png.subarray(o + 4, o + 8));
    const data = png.subarray(o + 8, o + 8 + len);
    if (t === "IHDR") {
      w = new DataView(data.buffer, data.byteOffset).getUint32(0);
      h = new DataView(data.buffer, data.byteOffset).getUint32(4);
      type = data[9];
    }
    if (t === "IDAT") idat.push(data);
    o += 12 + len;
  }
  const raw = new Uint8Array(inflateSync(idat[0]));
  const ch = type === 0 ? 1 : type === 2 ? 3 : 4;
  const rows = [];
  for (let y = 0; y < h; y++) {
    assertEquals(raw[y * (w * ch + 1)], 0);
    rows.push(raw.subarray(y * (w * ch + 1) + 1, (y + 1) * (w * ch + 1)));
  }
  return { w, h, type, rows };
}

Deno.test("encodePng writes grey and RGB pixels that decode back exactly", () => {
  const grey = Uint8Array.from({ length: 6 * 4 }, (_, i) => i * 10);
  const d = decode(encodePng({ width: 6, height: 4, channels: 1, pixels: grey }));
  assertEquals([d.w, d.h, d.type], [6, 4, 0]);
  assertEquals([...d.rows[2]], [...grey.subarray(12, 18)]);
  const rgb = Uint8Array.from({ length: 3 * 5 * 2 }, (_, i) => (i * 37) % 256);
  const e = decode(encodePng({ width: 5, height: 2, channels: 3, pixels: rgb }));
  assertEquals(e.type, 2);
  assertEquals([...e.rows[1]], [...rgb.subarray(15)]);
  throws(
    () => encodePng({ width: 5, height: 2, channels: 3, pixels: new Uint8Array(29) }),
    /expected 30/,
  );
});

Deno.test(
  { name: "PNG files are accepted by Pillow with the right pixels", ignore: !PY },
  async () => {
    const dir = await Deno.makeTempDir();
    const rgb = Uint8Array.from({ length: 3 * 7 * 3 }, (_, i) => (i * 53) % 256);
    await writePng(`${dir}/a.png`, { width: 7, height: 3, channels: 3, pixels: rgb });
    const r = await python<{ size: number[]; px: number[] }>(`
from PIL import Image; import json
im = Image.open("${dir}/a.png"); im.verify(); im = Image.open("${dir}/a.png")
print(json.dumps({"size": list(im.size), "px": list(im.getpixel((4, 2)))}))`);
    assertEquals(r.size, [7, 3]);
    assertEquals(r.px, [...rgb.subarray(3 * (2 * 7 + 4), 3 * (2 * 7 + 4) + 3)]);
    await Deno.remove(dir, { recursive: true });
  },
);

Deno.test("colour maps run from dark to bright with the expected ends", () => {
  const grey = colormapLut("grey");
  assertEquals([...grey.subarray(0, 3)], [0, 0, 0]);
  assertEquals([...grey.subarray(765)], [255, 255, 255]);
  const hot = colormapLut("hot");
  assertEquals([...hot.subarray(765)], [255, 255, 255]);
  assertEquals([...hot.subarray(3 * 85, 3 * 85 + 3)], [255, 0, 0]);
  const inferno = colormapLut("inferno");
  assertEquals([...inferno.subarray(0, 3)], [0, 0, 4]);
  assertEquals([...inferno.subarray(765)], [0xfc, 0xff, 0xa4]);
  // luminance increases monotonically for the PET maps
  for (const lut of [hot, inferno]) {
    let prev = -1;
    for (let i = 0; i < 256; i += 5) {
      const l = 0.3 * lut[3 * i] + 0.59 * lut[3 * i + 1] + 0.11 * lut[3 * i + 2];
      assert(l >= prev - 1e-9, `luminance at ${i}`);
      prev = l;
    }
  }
});

Deno.test("a montage places images side by side with windowing, y up and titles", () => {
  // image 0: a ramp along x; image 1: bright voxel at (1, 0)
  const a = Float32Array.from({ length: 4 * 3 }, (_, i) => i % 4);
  const b = new Float32Array(12);
  b[1] = 10;
  const m = renderMontage([
    { data: a, shape: [4, 3], title: "ramp" },
    { data: b, shape: [4, 3, 1] },
  ], { scale: 1, gap: 2, window: { min: 0, max: 3 } });
  // columns: gap + 4 + gap + 4 + gap; rows: title band (7 + 4) + 3 + 2 gaps
  assertEquals(m.width, 14);
  assertEquals(m.height, 2 + 11 + 3 + 2);
  const px = (x: number, y: number) => m.pixels[3 * (y * m.width + x)];
  const top = 2 + 11;
  // ramp: x = 0 → black, x = 3 → white, in every row
  assertEquals([px(2, top), px(3, top), px(4, top), px(5, top)], [0, 85, 170, 255]);
  // image 1 voxel (1, 0) is at the bottom row with y up; window [0, 3] saturates it
  assertEquals(px(8 + 1, top + 2), 255);
  assertEquals(px(8 + 1, top), 0);
});

Deno.test("montage titles are drawn in the band above their panel", () => {
  const t = renderMontage([
    { data: new Float32Array(40 * 2), shape: [40, 2], title: "ramp" },
    { data: new Float32Array(40 * 2), shape: [40, 2] },
  ], { scale: 1, gap: 2 });
  const px = (x: number, y: number) => t.pixels[3 * (y * t.width + x)];
  let lit0 = 0, lit1 = 0;
  for (let y = 0; y < 13; y++) {
    for (let x = 0; x < 42; x++) lit0 += px(x, y) > 0 ? 1 : 0;
    for (let x = 44; x < t.width; x++) lit1 += px(x, y) > 0 ? 1 : 0;
  }
  // R, A, M, P have 18, 18, 18 and 15 lit cells in the 5×7 font
  assertEquals(lit0, 18 + 18 + 18 + 15);
  assertEquals(lit1, 0);
});

Deno.test("montage slices along x, y and z and percentile windows", () => {
  const shape = [3, 4, 5];
  const v = Float32Array.from({ length: 60 }, (_, i) => i);
  const z = renderMontage([{ data: v, shape }], { slices: [0, 4], scale: 1, gap: 0 });
  assertEquals([z.width, z.height], [3, 8]);
  const y = renderMontage([{ data: v, shape }], { axis: "y", slices: [1], scale: 1, gap: 0 });
  assertEquals([y.width, y.height], [3, 5]);
  const x = renderMontage([{ data: v, shape }], { axis: "x", scale: 2, gap: 0 });
  assertEquals([x.width, x.height], [8, 10]);
  // percentile window: 50th..100th → the lower half of values is black
  const p = renderMontage([{ data: v, shape }], {
    slices: [2],
    scale: 1,
    gap: 0,
    window: { percentiles: [50, 100] },
  });
  assertEquals(p.pixels[3 * (3 * 3)], 0); // top-left of y-up panel = row y = 3 → values 33..35
  throws(() => renderMontage([{ data: v, shape }], { slices: [5] }), /outside 0 … 4/);
  throws(() => renderMontage([{ data: v, shape: [3, 4, 4] }]), /holds 48 voxels/);
});

Deno.test("writePngMontage writes a decodable PNG atomically", async () => {
  const dir = await Deno.makeTempDir();
  const v = Float32Array.from({ length: 16 * 16 * 3 }, (_, i) => Math.sin(i / 7) + 1);
  await writePngMontage(`${dir}/m.png`, [
    { data: v, shape: [16, 16, 3], title: "pet 1/4 dose" },
    { data: v, shape: [16, 16, 3], title: "mr", colormap: "grey" },
  ], { colormap: "inferno", sharedWindow: true, slices: [0, 2] });
  const d = decode(await Deno.readFile(`${dir}/m.png`));
  assert(d.w > 2 * 16 && d.h > 2 * 16);
  const names = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  assertEquals(names, ["m.png"]);
  await Deno.remove(dir, { recursive: true });
});
