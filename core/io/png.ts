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

/**
 * Encodes an 8-bit grey, RGB or RGBA raster as PNG bytes.
 *
 * @example
 * ```ts
 * import { encodePng } from "@petrel/petrel";
 * // a 64 × 64 grey ramp
 * const pixels = new Uint8Array(64 * 64).map((_, i) => (i % 64) * 4);
 * const png = encodePng({ width: 64, height: 64, channels: 1, pixels });
 * ```
 */
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

/**
 * Writes a raster as a PNG file, atomically.
 *
 * @example
 * ```ts
 * import { renderMontage, writePng } from "@petrel/petrel";
 * const x = new Float32Array(128 * 128);
 * await writePng("out/slice.png", renderMontage([{ data: x, shape: [128, 128], title: "OSEM" }]));
 * ```
 */
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

/**
 * The 256-entry RGB lookup table of a colour map.
 *
 * @example
 * ```ts
 * import { colormapLut } from "@petrel/petrel";
 * const lut = colormapLut("inferno");
 * const [r, g, b] = lut.subarray(3 * 255, 3 * 256); // the colour of the window's maximum
 * ```
 */
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

/**
 * Display window: explicit bounds, or percentiles of the shown voxels (default 0 and 100).
 *
 * @example
 * ```ts
 * import type { DisplayWindow } from "@petrel/petrel";
 * const robust: DisplayWindow = { percentiles: [1, 99.5] }; // ignore a few hot voxels
 * const suv: DisplayWindow = { min: 0, max: 8 }; // the same scale for every figure
 * ```
 */
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
 *
 * @example
 * ```ts
 * import { renderMontage, writePng } from "@petrel/petrel";
 * const truth = new Float32Array(128 * 128 * 3);
 * const osem = new Float32Array(128 * 128 * 3);
 * const raster = renderMontage([
 *   { data: truth, shape: [128, 128, 3], title: "truth" },
 *   { data: osem, shape: [128, 128, 3], title: "osem" },
 * ], { colormap: "hot", sharedWindow: true, slices: [0, 1, 2] }); // 3 rows × 2 columns
 * await writePng("out/montage.png", raster);
 * ```
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
 * import { writePngMontage } from "@petrel/petrel";
 * const truth = new Float32Array(128 * 128 * 3);
 * const osem = new Float32Array(128 * 128 * 3);
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
  ";": ".....##...##.........##....#...#....",
  "/": ".........#...#...#...#...#.........",
  "=": "..........#####.....#####..........",
  "%": "##...##..#...#...#...#...#..##...##",
  "(": "...#...#...#....#....#.....#.....#.",
  ")": ".#.....#.....#....#....#...#...#...",
  "+": ".......#....#..#####..#....#.......",
  "?": ".###.#...#....#...#...#.........#..",
  "a": "...........###.....#.#####...#.####",
  "b": "#....#....#.##.##..##...##...#####.",
  "c": "...........###.#....#....#...#.###.",
  "d": "....#....#.##.##..###...##...#.####",
  "e": "...........###.#...#######.....###.",
  "f": "..##..#..#.#...###...#....#....#...",
  "g": "......#####...##...#.####....#.###.",
  "h": "#....#....#.##.##..##...##...##...#",
  "i": "..#........##....#....#....#...###.",
  "j": "...#........##....#....#.#..#..##..",
  "k": "#....#....#..#.#.#..##...#.#..#..#.",
  "l": ".##....#....#....#....#....#...###.",
  "m": "..........##.#.#.#.##.#.##...##...#",
  "n": "..........#.##.##..##...##...##...#",
  "o": "...........###.#...##...##...#.###.",
  "p": ".....####.#...##...#####.#....#....",
  "q": "......#####...##...#.####....#....#",
  "r": "..........#.##.##..##....#....#....",
  "s": "...........#####.....###.....#####.",
  "t": ".#....#...###...#....#....#..#..##.",
  "u": "..........#...##...##...##..##.##.#",
  "v": "..........#...##...##...#.#.#...#..",
  "w": "..........#...##...##.#.##.#.#.#.#.",
  "x": "..........#...#.#.#...#...#.#.#...#",
  "y": ".....#...##...##...#.####....#.###.",
  "z": "..........#####...#...#...#...#####",
  "[": ".###..#....#....#....#....#....###.",
  "]": ".###....#....#....#....#....#..###.",
  "<": "...#...#...#...#.....#.....#.....#.",
  ">": ".#.....#.....#.....#...#...#...#...",
  "*": ".......#..#.#.#.###.#.#.#..#.......",
  "'": "..#....#...#.......................",
  "|": "..#....#....#....#....#....#....#..",
  "\u00b7": ".................#.................",
};

/** Draws `text` centred in a box of width `maxW` (or left-aligned with `align: "left"`). */
function drawText(
  rgb: Uint8Array,
  width: number,
  text: string,
  x: number,
  y: number,
  maxW: number,
  scale: number,
  { upper = true, align = "center" }: { upper?: boolean; align?: "center" | "left" } = {},
): void {
  const advance = (GLYPH_W + 1) * scale;
  const maxChars = Math.max(0, Math.floor((maxW + scale) / advance));
  const shown = (upper ? text.toUpperCase() : text).slice(0, maxChars);
  const x0 = align === "left"
    ? x
    : x + Math.max(0, Math.floor((maxW - (shown.length * advance - scale)) / 2));
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

/**
 * Characters the built-in 5×7 font can draw (others are shown as "?"). {@linkcode renderMontage}
 * draws its titles upper case; {@linkcode renderOrthoMontage} keeps the case.
 *
 * @example
 * ```ts
 * import { MONTAGE_FONT_CHARS } from "@petrel/petrel";
 * const title = "MAP-EM β=0.1";
 * const drawable = [...title.toUpperCase()].every((c) => MONTAGE_FONT_CHARS.includes(c)); // β is not
 * ```
 */
export const MONTAGE_FONT_CHARS: string = Object.keys(GLYPHS).join("");

// ---- three orthogonal planes per volume, with colour bars, units and a title ----

/** One volume of an orthogonal-planes figure ({@linkcode renderOrthoMontage}). */
export interface OrthoVolume {
  /** Voxels, x fastest. */
  data: ArrayLike<number>;
  /** `[nx, ny, nz]` (a 2-D image is `[nx, ny, 1]`). */
  shape: readonly number[];
  /** Voxel size in mm (default 1 mm cubes): panels keep the physical aspect ratio. */
  voxelMm?: readonly number[];
  /** Label of the row, drawn above its planes (e.g. "OSEM", "truth"). */
  label?: string;
  /** Colour map (overrides the figure's). */
  colormap?: ColormapName;
  /** Window (overrides the figure's; default the volume's min … max). */
  window?: DisplayWindow;
  /** Units of the values, written under the colour bar (overrides the figure's). */
  units?: string;
}

/** Options of {@linkcode renderOrthoMontage} / {@linkcode writeOrthoMontage}. */
export interface OrthoMontageOptions {
  /** Title line at the top, e.g. method and key parameters. */
  title?: string;
  /** A second, smaller line under the title. */
  subtitle?: string;
  /** Colour map of every volume (default "inferno"). */
  colormap?: ColormapName;
  /** Window of every volume (default each volume's own min … max). */
  window?: DisplayWindow;
  /** One window over all volumes together, so the rows compare directly (default false). */
  sharedWindow?: boolean;
  /** Units of every volume (default "a.u."). */
  units?: string;
  /** Voxel `[i, j, k]` the three planes pass through (default the centre voxel). */
  cursor?: readonly number[];
  /** Pixels along the largest extent of a panel (default 160; at least 1 pixel per voxel). */
  panelPx?: number;
  /**
   * Planes to draw, in this order (default all three; only "axial" for single slices). Thin
   * stacks (a few slices) read better as `["axial"]`.
   */
  planes?: readonly ("axial" | "coronal" | "sagittal")[];
}

/** Where {@linkcode renderOrthoMontage} put things (pixels; for tests and image maps). */
export interface OrthoLayout {
  /** One rectangle per drawn plane. */
  panels: {
    row: number;
    plane: "axial" | "coronal" | "sagittal";
    x: number;
    y: number;
    w: number;
    h: number;
  }[];
  /** One colour bar per row (top = window max). */
  bars: { row: number; x: number; y: number; w: number; h: number; min: number; max: number }[];
}

/** A rendered figure with its layout. */
export interface OrthoRaster extends Raster {
  /** Panel and colour-bar rectangles. */
  layout: OrthoLayout;
}

const ORTHO_GAP = 6;
const BAR_W = 12;

/**
 * A compact tick label: 3 significant digits, exponent form for very large/small values.
 *
 * @example
 * ```ts
 * import { formatTick } from "@petrel/petrel";
 * formatTick(0.123456); // "0.123"
 * formatTick(123456); // "1.2e5"
 * ```
 */
export function formatTick(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-2) return v.toExponential(1).replace("e+", "e");
  return String(Number(v.toPrecision(3)));
}

function textWidth(text: string, scale: number): number {
  return text.length === 0 ? 0 : text.length * (GLYPH_W + 1) * scale - scale;
}

interface OrthoPanel {
  /** Plane name. */
  plane: "axial" | "coronal" | "sagittal";
  /** Voxel size in mm along the panel's horizontal and vertical axes. */
  du: number;
  dv: number;
  w: number;
  h: number;
  /** Value at voxel (u, v), v upwards. */
  at: (u: number, v: number) => number;
}

function orthoPanels(vol: OrthoVolume, idx: number, cursor?: readonly number[]): OrthoPanel[] {
  const sh = vol.shape;
  if (sh.length !== 3 || !sh.every((n) => Number.isInteger(n) && n > 0)) {
    throw new RangeError(
      `ortho montage volume ${idx}${vol.label ? ` ("${vol.label}")` : ""}: shape ${
        JSON.stringify(sh)
      } must be [nx, ny, nz] positive integers`,
    );
  }
  const [nx, ny, nz] = sh;
  if (nx * ny * nz !== vol.data.length) {
    throw new RangeError(
      `ortho montage volume ${idx}${vol.label ? ` ("${vol.label}")` : ""}: shape ${
        JSON.stringify(sh)
      } holds ${nx * ny * nz} voxels but the data have ${vol.data.length}`,
    );
  }
  const vox = vol.voxelMm ?? [1, 1, 1];
  if (vox.length !== 3 || !vox.every((d) => Number.isFinite(d) && d > 0)) {
    throw new RangeError(
      `ortho montage volume ${idx}: voxelMm ${JSON.stringify(vox)} must be three positive mm`,
    );
  }
  const c = cursor ?? [Math.floor(nx / 2), Math.floor(ny / 2), Math.floor(nz / 2)];
  if (c.length !== 3 || c.some((v, a) => !Number.isInteger(v) || v < 0 || v >= sh[a])) {
    throw new RangeError(
      `ortho montage volume ${idx}: cursor ${JSON.stringify(c)} is outside the volume ${
        JSON.stringify(sh)
      }`,
    );
  }
  const d = vol.data;
  const [ci, cj, ck] = c;
  const panels: OrthoPanel[] = [{
    plane: "axial",
    du: vox[0],
    dv: vox[1],
    w: nx,
    h: ny,
    at: (u, v) => d[u + nx * (v + ny * ck)],
  }];
  // A single slice has no coronal or sagittal view worth drawing.
  if (nz > 1) {
    panels.push({
      plane: "coronal",
      du: vox[0],
      dv: vox[2],
      w: nx,
      h: nz,
      at: (u, v) => d[u + nx * (cj + ny * v)],
    }, {
      plane: "sagittal",
      du: vox[1],
      dv: vox[2],
      w: ny,
      h: nz,
      at: (u, v) => d[ci + nx * (u + ny * v)],
    });
  }
  return panels;
}

function volumeValues(vol: OrthoVolume): ArrayLike<number> {
  return vol.data;
}

/**
 * Renders each volume as a row of three orthogonal planes through a cursor voxel (axial: x right,
 * y up; coronal: x right, z up; sagittal: y right, z up; only the axial plane when `nz` is 1),
 * with a colour bar labelled with the window's bounds and the units, and an optional title and
 * subtitle above. Panels keep the physical aspect ratio from `voxelMm` (nearest-neighbour).
 *
 * @example
 * ```ts
 * import { centredGrid, renderOrthoMontage, writePng } from "@petrel/petrel";
 * const grid = centredGrid([128, 128, 64], [2.086, 2.086, 2.031]);
 * const x = new Float32Array(128 * 128 * 64);
 * const fig = renderOrthoMontage(
 *   [{ data: x, shape: grid.shape, voxelMm: grid.voxelSizeMm, label: "OSEM" }],
 *   { title: "OSEM 4 x 14", units: "Bq/ml", cursor: [64, 64, 32] },
 * );
 * console.log(fig.layout.bars[0]); // where the colour bar went, with its min and max
 * await writePng("out/ortho.png", fig);
 * ```
 */
export function renderOrthoMontage(
  volumes: readonly OrthoVolume[],
  options: OrthoMontageOptions = {},
): OrthoRaster {
  if (volumes.length === 0) throw new RangeError("renderOrthoMontage: no volumes given");
  const want = options.planes;
  if (
    want && (want.length === 0 || want.some((p) => !["axial", "coronal", "sagittal"].includes(p)))
  ) {
    throw new RangeError(
      `renderOrthoMontage: planes ${
        JSON.stringify(want)
      } must list "axial", "coronal" or "sagittal"`,
    );
  }
  const rows = volumes.map((v, i) => {
    const all = orthoPanels(v, i, options.cursor);
    if (!want) return all;
    const picked = want.map((w) => all.find((p) => p.plane === w)).filter((p) => p !== undefined);
    return picked.length ? picked : all.slice(0, 1);
  });
  const shared = options.sharedWindow
    ? resolveWindow(volumes.map(volumeValues), options.window)
    : undefined;
  const windows = volumes.map((v) =>
    v.window ? resolveWindow([v.data], v.window) : shared ?? resolveWindow([v.data], options.window)
  );
  // One physical scale for the whole figure, so every row's planes line up.
  const panelPx = options.panelPx ?? 160;
  if (!(panelPx > 0)) throw new RangeError(`renderOrthoMontage: panelPx ${panelPx} must be > 0`);
  let extentMm = 0, minVoxMm = Infinity;
  for (const r of rows) {
    for (const p of r) {
      extentMm = Math.max(extentMm, p.w * p.du, p.h * p.dv);
      minVoxMm = Math.min(minVoxMm, p.du, p.dv);
    }
  }
  const pxPerMm = Math.max(panelPx / extentMm, 1 / minVoxMm);
  const size = (p: OrthoPanel) => [
    Math.max(1, Math.round(p.w * p.du * pxPerMm)),
    Math.max(1, Math.round(p.h * p.dv * pxPerMm)),
  ];
  const gap = ORTHO_GAP;
  const labelH = GLYPH_H + gap;
  const title = options.title ?? "";
  const subtitle = options.subtitle ?? "";
  const rowInfo = rows.map((r, i) => {
    const sizes = r.map(size);
    const h = Math.max(...sizes.map((s) => s[1]), 3 * (GLYPH_H + 4));
    const planesW = sizes.reduce((a, s) => a + s[0], 0) + gap * (sizes.length - 1);
    const [lo, hi] = windows[i];
    const units = volumes[i].units ?? options.units ?? "a.u.";
    const ticks = [formatTick(hi), formatTick((lo + hi) / 2), formatTick(lo)];
    const labelW = Math.max(...ticks.map((t) => textWidth(t, 1)), textWidth(units, 1));
    return { sizes, h, planesW, ticks, units, labelW };
  });
  const contentW = Math.max(
    ...rowInfo.map((r) => r.planesW + gap + BAR_W + 4 + r.labelW),
  );
  const titleScale = title && textWidth(title, 2) + 2 * gap <= contentW + 2 * gap ? 2 : 1;
  const width = Math.max(
    contentW + 2 * gap,
    textWidth(title, titleScale) + 2 * gap,
    textWidth(subtitle, 1) + 2 * gap,
  );
  const titleH = (title ? GLYPH_H * titleScale + gap : 0) + (subtitle ? GLYPH_H + gap : 0);
  const height = gap + titleH +
    rowInfo.reduce((a, r) => a + labelH + r.h + gap + GLYPH_H + gap, 0);
  const rgb = new Uint8Array(width * height * 3);
  const put = (x: number, y: number, c: ArrayLike<number>, o = 0) => {
    const k = (y * width + x) * 3;
    rgb[k] = c[o];
    rgb[k + 1] = c[o + 1];
    rgb[k + 2] = c[o + 2];
  };
  const text = (t: string, x: number, y: number, scale = 1) =>
    drawText(rgb, width, t, x, y, width - x, scale, { upper: false, align: "left" });
  let y = gap;
  if (title) {
    text(title, gap, y, titleScale);
    y += GLYPH_H * titleScale + gap;
  }
  if (subtitle) {
    text(subtitle, gap, y);
    y += GLYPH_H + gap;
  }
  const luts = new Map<ColormapName, Uint8Array>();
  const layout: OrthoLayout = { panels: [], bars: [] };
  rows.forEach((panels, i) => {
    const info = rowInfo[i];
    const vol = volumes[i];
    const name = vol.colormap ?? options.colormap ?? "inferno";
    let table = luts.get(name);
    if (!table) luts.set(name, table = colormapLut(name));
    const [lo, hi] = windows[i];
    const label = vol.label ?? "";
    text(label ? `${label}` : "", gap, y);
    const y0 = y + labelH;
    let x = gap;
    panels.forEach((p, k) => {
      const [pw, ph] = info.sizes[k];
      const top = y0 + Math.floor((info.h - ph) / 2);
      layout.panels.push({ row: i, plane: p.plane, x, y: top, w: pw, h: ph });
      for (let py = 0; py < ph; py++) {
        const v = Math.min(p.h - 1, Math.floor(((ph - 1 - py) + 0.5) * p.h / ph));
        for (let px = 0; px < pw; px++) {
          const u = Math.min(p.w - 1, Math.floor((px + 0.5) * p.w / pw));
          const val = p.at(u, v);
          const t = Number.isFinite(val) ? (val - lo) / (hi - lo) : 0;
          put(x + px, top + py, table!, 3 * Math.round(255 * Math.min(1, Math.max(0, t))));
        }
      }
      drawText(rgb, width, p.plane, x, y0 + info.h + 2, pw, 1, { upper: false });
      x += pw + gap;
    });
    // Colour bar: brightest at the top, labelled max / middle / min, units below.
    const bx = gap + info.planesW + gap;
    layout.bars.push({ row: i, x: bx, y: y0, w: BAR_W, h: info.h, min: lo, max: hi });
    for (let py = 0; py < info.h; py++) {
      const c = Math.round(255 * (1 - py / Math.max(1, info.h - 1)));
      for (let px = 0; px < BAR_W; px++) put(bx + px, y0 + py, table!, 3 * c);
    }
    const lx = bx + BAR_W + 4;
    text(info.ticks[0], lx, y0);
    text(info.ticks[1], lx, y0 + Math.floor((info.h - GLYPH_H) / 2));
    text(info.ticks[2], lx, y0 + info.h - GLYPH_H);
    text(info.units, bx, y0 + info.h + 2);
    y = y0 + info.h + gap + GLYPH_H + gap;
  });
  return { width, height, channels: 3, pixels: rgb, layout };
}

/**
 * Writes a figure of three orthogonal planes per volume, with colour bars, units and a title
 * (see {@linkcode renderOrthoMontage}) as a PNG file, atomically.
 *
 * @example
 * ```ts
 * import { centredGrid, writeOrthoMontage } from "@petrel/petrel";
 * const grid = centredGrid([128, 128, 64], [2.086, 2.086, 2.031]);
 * const x = new Float32Array(128 * 128 * 64);
 * const truth = new Float32Array(128 * 128 * 64);
 * await writeOrthoMontage("out/osem.png", [
 *   { data: x, shape: grid.shape, voxelMm: grid.voxelSizeMm, label: "OSEM" },
 *   { data: truth, shape: grid.shape, voxelMm: grid.voxelSizeMm, label: "truth" },
 * ], { title: "OSEM, 4 iterations x 14 subsets", units: "counts/voxel", sharedWindow: true });
 * ```
 */
export async function writeOrthoMontage(
  path: string,
  volumes: readonly OrthoVolume[],
  options: OrthoMontageOptions = {},
): Promise<void> {
  await writePng(path, renderOrthoMontage(volumes, options));
}
