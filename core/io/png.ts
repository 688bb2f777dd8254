/**
 * PNG output for looking at results: a minimal encoder and slice montages with windowing, a
 * grey and PET colour maps ("hot", "inferno") and optional titles.
 *
 * Why our own encoder: a PNG of 8-bit grey or RGB pixels is a signature, three chunks and a
 * zlib stream, which `node:zlib` (built into Deno) provides; none of the PNG packages on npm is
 * worth a dependency for that (most pull in streams, Buffer polyfills or native code), and the
 * Deno standard library is not reachable here.
 *
 * Orientation: a panel shows the slice's first axis left → right and its second axis bottom → top
 * (`yUp`, the default, like a plot; for an axial slice of a RAS image that is the patient's
 * right on the right, anterior at the top). Set `yUp: false` for row 0 at the top.
 *
 * @module
 */

import { deflateSync } from "node:zlib";
import { writeFileAtomic } from "./files.ts";
import { percentileOfSorted } from "../stats.ts";

/** An 8-bit raster: `channels` values per pixel (1 grey, 3 RGB, 4 RGBA), rows top to bottom. */
export interface Raster {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Values per pixel. */
  channels: 1 | 3 | 4;
  /** Pixel values, row by row from the top. */
  pixels: Uint8Array;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** Encodes an 8-bit grey, RGB or RGBA raster as PNG bytes. */
export function encodePng(raster: Raster): Uint8Array {
  const { width, height, channels, pixels } = raster;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`encodePng: size ${width}×${height} must be positive integers`);
  }
  if (![1, 3, 4].includes(channels)) {
    throw new RangeError(`encodePng: ${channels} channels; expected 1 (grey), 3 (RGB) or 4 (RGBA)`);
  }
  if (pixels.length !== width * height * channels) {
    throw new RangeError(
      `encodePng: ${pixels.length} bytes for ${width}×${height}×${channels}; expected ${
        width * height * channels
      }`,
    );
  }
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 1 ? 0 : channels === 3 ? 2 : 6; // colour type
  const row = width * channels;
  const filtered = new Uint8Array((row + 1) * height);
  for (let y = 0; y < height; y++) {
    filtered[y * (row + 1)] = 0; // filter: none
    filtered.set(pixels.subarray(y * row, (y + 1) * row), y * (row + 1) + 1);
  }
  const z = deflateSync(filtered, { level: 6 });
  const idat = new Uint8Array(z.buffer, z.byteOffset, z.byteLength);
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", idat),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Writes a raster as a PNG file, atomically. */
export async function writePng(path: string, raster: Raster): Promise<void> {
  await writeFileAtomic(path, encodePng(raster));
}

/** Colour maps for {@linkcode renderMontage}. */
export type ColormapName = "grey" | "hot" | "inferno";

// matplotlib's inferno at t = 0, 0.1, …, 1 (interpolated linearly in between).
const INFERNO = [
  0x000004,
  0x160b39,
  0x420a68,
  0x6a176e,
  0x932667,
  0xbc3754,
  0xdd513a,
  0xf37819,
  0xfca50a,
  0xf6d746,
  0xfcffa4,
];

/** The 256-entry RGB lookup table of a colour map. */
export function colormapLut(name: ColormapName): Uint8Array {
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    let r: number, g: number, b: number;
    if (name === "grey") {
      r = g = b = t;
    } else if (name === "hot") {
      // black → red → yellow → white (as matplotlib's "hot", in three equal thirds)
      r = Math.min(1, 3 * t);
      g = Math.min(1, Math.max(0, 3 * t - 1));
      b = Math.min(1, Math.max(0, 3 * t - 2));
    } else if (name === "inferno") {
      const x = t * 10;
      const k = Math.min(9, Math.floor(x));
      const f = x - k;
      const c0 = INFERNO[k], c1 = INFERNO[k + 1];
      const ch = (c: number, s: number) => ((c >> s) & 0xff) / 255;
      r = ch(c0, 16) * (1 - f) + ch(c1, 16) * f;
      g = ch(c0, 8) * (1 - f) + ch(c1, 8) * f;
      b = ch(c0, 0) * (1 - f) + ch(c1, 0) * f;
    } else {
      throw new TypeError(`unknown colour map "${name}"; expected "grey", "hot" or "inferno"`);
    }
    lut[3 * i] = Math.round(255 * r);
    lut[3 * i + 1] = Math.round(255 * g);
    lut[3 * i + 2] = Math.round(255 * b);
  }
  return lut;
}

/** Display window: explicit bounds, or percentiles of the shown voxels (default 0 and 100). */
export interface DisplayWindow {
  /** Value shown black (overrides the lower percentile). */
  min?: number;
  /** Value shown white / brightest (overrides the upper percentile). */
  max?: number;
  /** Lower and upper percentiles in 0 … 100 (default [0, 100] = data min and max). */
  percentiles?: [number, number];
}

/** An image for a montage: voxels x-fastest with shape `[nx, ny]` or `[nx, ny, nz]`. */
export interface MontageImage {
  /** Voxels, x fastest. */
  data: ArrayLike<number>;
  /** `[nx, ny]` or `[nx, ny, nz]`. */
  shape: readonly number[];
  /** Drawn above the panel. */
  title?: string;
  /** This image's window (overrides the montage's). */
  window?: DisplayWindow;
  /** This image's colour map (overrides the montage's). */
  colormap?: ColormapName;
}

/** Options of {@linkcode renderMontage} / {@linkcode writePngMontage}. */
export interface MontageOptions {
  /** Colour map (default "grey"). */
  colormap?: ColormapName;
  /** Window of every image (default: each image's own min … max). */
  window?: DisplayWindow;
  /** One window computed over all images together (default false). */
  sharedWindow?: boolean;
  /** Axis the slices cut: "z" (axial, default), "y" (coronal) or "x" (sagittal). */
  axis?: "x" | "y" | "z";
  /** Slice indices along the axis, one montage row each (default: the middle slice). */
  slices?: readonly number[];
  /** Integer zoom (default: enough for panels of at least ~192 pixels, at most 8). */
  scale?: number;
  /** Panels per row (default: the number of images; rows are then the slices). */
  columns?: number;
  /** Gap between panels in pixels (default 4). */
  gap?: number;
  /** Second axis of a panel upwards (default true). */
  yUp?: boolean;
}

function resolveWindow(values: ArrayLike<number>[], w: DisplayWindow = {}): [number, number] {
  let n = 0;
  for (const v of values) n += v.length;
  const all = new Float64Array(n);
  let o = 0;
  for (const v of values) {
    for (let i = 0; i < v.length; i++) {
      if (Number.isFinite(v[i])) all[o++] = v[i];
    }
  }
  const s = all.subarray(0, o).sort();
  const [plo, phi] = w.percentiles ?? [0, 100];
  const min = w.min ?? percentileOfSorted(s, plo);
  let max = w.max ?? percentileOfSorted(s, phi);
  if (!(max > min)) max = min + 1;
  return [min, max];
}

interface Panel {
  w: number;
  h: number;
  values: Float64Array;
}

function slicePanel(img: MontageImage, axis: "x" | "y" | "z", index: number, idx: number): Panel {
  const sh = img.shape;
  if (sh.length < 2 || sh.length > 3 || !sh.every((n) => Number.isInteger(n) && n > 0)) {
    throw new RangeError(
      `montage image ${idx}: shape ${JSON.stringify(sh)} must be [nx, ny] or [nx, ny, nz]`,
    );
  }
  const [nx, ny, nz] = [sh[0], sh[1], sh[2] ?? 1];
  if (nx * ny * nz !== img.data.length) {
    throw new RangeError(
      `montage image ${idx}: shape ${JSON.stringify(sh)} holds ${nx * ny * nz} voxels but the ` +
        `data have ${img.data.length}`,
    );
  }
  const n = axis === "z" ? nz : axis === "y" ? ny : nx;
  if (!Number.isInteger(index) || index < 0 || index >= n) {
    throw new RangeError(
      `montage image ${idx}: slice ${index} is outside 0 … ${n - 1} along ${axis}`,
    );
  }
  const [w, h] = axis === "z" ? [nx, ny] : axis === "y" ? [nx, nz] : [ny, nz];
  const values = new Float64Array(w * h);
  for (let v = 0; v < h; v++) {
    for (let u = 0; u < w; u++) {
      const p = axis === "z"
        ? u + nx * (v + ny * index)
        : axis === "y"
        ? u + nx * (index + ny * v)
        : index + nx * (u + ny * v);
      values[u + w * v] = img.data[p];
    }
  }
  return { w, h, values };
}

/**
 * Renders slices of several images side by side into an RGB raster (see
 * {@linkcode MontageOptions}); columns are images, rows are slices.
 */
export function renderMontage(
  images: readonly MontageImage[],
  options: MontageOptions = {},
): Raster {
  if (images.length === 0) throw new RangeError("renderMontage: no images given");
  const axis = options.axis ?? "z";
  const ax = { x: 0, y: 1, z: 2 }[axis];
  if (ax === undefined) throw new TypeError(`renderMontage: axis "${axis}" must be x, y or z`);
  const slices = options.slices ??
    [Math.floor((images[0].shape[ax] ?? 1) / 2)];
  // panels[row][col]
  const panels: Panel[][] = slices.map((s) =>
    images.map((img, i) => {
      const own = options.slices ? s : Math.floor((img.shape[ax] ?? 1) / 2);
      return slicePanel(img, axis, own, i);
    })
  );
  const shared = options.sharedWindow
    ? resolveWindow(panels.flat().map((p) => p.values), options.window)
    : undefined;
  const windows = images.map((img, i) =>
    img.window || !shared
      ? resolveWindow(panels.map((r) => r[i].values), img.window ?? options.window)
      : shared
  );
  const cellW = Math.max(...panels.flat().map((p) => p.w));
  const cellH = Math.max(...panels.flat().map((p) => p.h));
  const scale = options.scale ?? Math.min(8, Math.max(1, Math.ceil(192 / Math.max(cellW, cellH))));
  if (!Number.isInteger(scale) || scale < 1) {
    throw new RangeError(`renderMontage: scale ${scale} must be a positive integer`);
  }
  const gap = options.gap ?? 4;
  const items = panels.flatMap((row, r) => row.map((p, i) => ({ p, i, slice: slices[r] })));
  const columns = options.columns ?? images.length;
  const rows = Math.ceil(items.length / columns);
  const hasTitles = images.some((img) => img.title);
  const font = cellW * scale >= 160 ? 2 : 1;
  const titleH = hasTitles ? GLYPH_H * font + 2 * gap : 0;
  const pw = cellW * scale, ph = cellH * scale;
  const width = columns * pw + (columns + 1) * gap;
  const height = rows * (ph + titleH) + (rows + 1) * gap;
  const rgb = new Uint8Array(width * height * 3);
  const luts = new Map<ColormapName, Uint8Array>();
  const lut = (name: ColormapName) => {
    let l = luts.get(name);
    if (!l) luts.set(name, l = colormapLut(name));
    return l;
  };
  const yUp = options.yUp ?? true;
  items.forEach(({ p, i, slice }, k) => {
    const col = k % columns, row = Math.floor(k / columns);
    const x0 = gap + col * (pw + gap) + Math.floor((cellW - p.w) * scale / 2);
    const yCell = gap + row * (ph + titleH + gap);
    const y0 = yCell + titleH + Math.floor((cellH - p.h) * scale / 2);
    const table = lut(images[i].colormap ?? options.colormap ?? "grey");
    const [lo, hi] = windows[i];
    for (let v = 0; v < p.h; v++) {
      const rowPix = yUp ? p.h - 1 - v : v;
      for (let u = 0; u < p.w; u++) {
        const val = p.values[u + p.w * v];
        const t = Number.isFinite(val) ? (val - lo) / (hi - lo) : 0;
        const c = Math.round(255 * Math.min(1, Math.max(0, t)));
        for (let dy = 0; dy < scale; dy++) {
          let o = ((y0 + rowPix * scale + dy) * width + x0 + u * scale) * 3;
          for (let dx = 0; dx < scale; dx++, o += 3) {
            rgb[o] = table[3 * c];
            rgb[o + 1] = table[3 * c + 1];
            rgb[o + 2] = table[3 * c + 2];
          }
        }
      }
    }
    const title = images[i].title;
    if (title) {
      const label = slices.length > 1 ? `${title} ${axis}=${slice}` : title;
      drawText(rgb, width, label, gap + col * (pw + gap), yCell + gap, pw, font);
    }
  });
  return { width, height, channels: 3, pixels: rgb };
}

/**
 * Writes a PNG montage of slices of several images side by side (columns = images, rows =
 * slices), atomically.
 *
 * @example
 * ```ts
 * await writePngMontage("out/demo/recon.png", [
 *   { data: truth, shape: [128, 128, 3], title: "truth" },
 *   { data: osem, shape: [128, 128, 3], title: "OSEM" },
 * ], { colormap: "inferno", sharedWindow: true });
 * ```
 */
export async function writePngMontage(
  path: string,
  images: readonly MontageImage[],
  options: MontageOptions = {},
): Promise<void> {
  await writePng(path, renderMontage(images, options));
}

// ---- a 5×7 bitmap font for titles (upper-case letters, digits, a few signs) ----

const GLYPH_W = 5;
const GLYPH_H = 7;
const GLYPHS: Record<string, string> = {
  "0": ".###.#...##..###.#.###..##...#.###.",
  "1": "..#...##....#....#....#....#...###.",
  "2": ".###.#...#....#...#...#...#...#####",
  "3": "#####...#...#.....#.....##...#.###.",
  "4": "...#...##..#.#.#..#.#####...#....#.",
  "5": "######....####.....#....##...#.###.",
  "6": "..##..#...#....####.#...##...#.###.",
  "7": "#####....#...#...#...#....#....#...",
  "8": ".###.#...##...#.###.#...##...#.###.",
  "9": ".###.#...##...#.####....#...#..##..",
  "A": ".###.#...##...##...#######...##...#",
  "B": "####.#...##...#####.#...##...#####.",
  "C": ".###.#...##....#....#....#...#.###.",
  "D": "###..#..#.#...##...##...##..#.###..",
  "E": "######....#....####.#....#....#####",
  "F": "######....#....####.#....#....#....",
  "G": ".###.#...##....#.####...##...#.####",
  "H": "#...##...##...#######...##...##...#",
  "I": ".###...#....#....#....#....#...###.",
  "J": "..###...#....#....#....#.#..#..##..",
  "K": "#...##..#.#.#..##...#.#..#..#.#...#",
  "L": "#....#....#....#....#....#....#####",
  "M": "#...###.###.#.##.#.##...##...##...#",
  "N": "#...##...###..##.#.##..###...##...#",
  "O": ".###.#...##...##...##...##...#.###.",
  "P": "####.#...##...#####.#....#....#....",
  "Q": ".###.#...##...##...##.#.##..#..##.#",
  "R": "####.#...##...#####.#.#..#..#.#...#",
  "S": ".#####....#.....###.....#....#####.",
  "T": "#####..#....#....#....#....#....#..",
  "U": "#...##...##...##...##...##...#.###.",
  "V": "#...##...##...##...##...#.#.#...#..",
  "W": "#...##...##...##.#.##.#.##.#.#.#.#.",
  "X": "#...##...#.#.#...#...#.#.#...##...#",
  "Y": "#...##...#.#.#...#....#....#....#..",
  "Z": "#####....#...#...#...#...#....#####",
  " ": "...................................",
  ".": ".........................##...##...",
  ",": "....................##....#...#....",
  "-": "...............#####...............",
  "_": "..............................#####",
  ":": ".....##...##.........##...##.......",
  "/": ".........#...#...#...#...#.........",
  "=": "..........#####.....#####..........",
  "%": "##...##..#...#...#...#...#..##...##",
  "(": "...#...#...#....#....#.....#.....#.",
  ")": ".#.....#.....#....#....#...#...#...",
  "+": ".......#....#..#####..#....#.......",
  "?": ".###.#...#....#...#...#.........#..",
};

function drawText(
  rgb: Uint8Array,
  width: number,
  text: string,
  x: number,
  y: number,
  maxW: number,
  scale: number,
): void {
  const advance = (GLYPH_W + 1) * scale;
  const maxChars = Math.max(0, Math.floor((maxW + scale) / advance));
  const shown = text.toUpperCase().slice(0, maxChars);
  const x0 = x + Math.max(0, Math.floor((maxW - (shown.length * advance - scale)) / 2));
  const height = rgb.length / 3 / width;
  for (let c = 0; c < shown.length; c++) {
    const g = GLYPHS[shown[c]] ?? GLYPHS["?"];
    for (let gy = 0; gy < GLYPH_H; gy++) {
      for (let gx = 0; gx < GLYPH_W; gx++) {
        if (g[gy * GLYPH_W + gx] !== "#") continue;
        for (let sy = 0; sy < scale; sy++) {
          for (let sx = 0; sx < scale; sx++) {
            const px = x0 + c * advance + gx * scale + sx;
            const py = y + gy * scale + sy;
            if (px >= width || py >= height) continue;
            const o = (py * width + px) * 3;
            rgb[o] = rgb[o + 1] = rgb[o + 2] = 255;
          }
        }
      }
    }
  }
}

/** Characters the title font can draw (others are shown as "?"; lower case as upper case). */
export const MONTAGE_FONT_CHARS: string = Object.keys(GLYPHS).join("");
