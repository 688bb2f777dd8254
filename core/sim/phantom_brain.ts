/**
 * Offline procedural brain phantom (BrainWeb labels 0–11), 2D or 3D, varied by seed: a folded
 * cortical grey-matter ribbon (sulci as sheets where a random smooth field crosses zero, with an
 * interhemispheric fissure), white matter, lateral and third ventricles, deep grey nuclei
 * (caudate, putamen, thalamus), a foliated cerebellum, brainstem, CSF, dura, skull with marrow,
 * fat, scalp and neck muscle. The label volume then goes through {@linkcode simulateStudy} like a
 * BrainWeb model.
 *
 * @module
 */

import { centredGrid, type ImageGrid } from "../geometry/grid.ts";
import { MMR_VOXEL_MM } from "../geometry/scanner.ts";
import { Label, type LabelVolume, labelVolume } from "./labels.ts";
import { Rng, subSeed } from "../random.ts";
import {
  type BrainFrame,
  type SimulatedStudy,
  type SimulateOptions,
  simulateStudy,
} from "./simulate.ts";

/** Options of {@linkcode brainPhantomLabels}. */
export interface BrainPhantomOptions {
  /** Seed of the anatomy (default 0). */
  seed?: number;
  /** 2 (one axial slice) or 3 (default). */
  dims?: 2 | 3;
  /** Fine voxel size in mm (default 1 in 3D, 0.5 in 2D). */
  voxelMm?: number;
  /** 2D: axial position of the slice in phantom mm (default 12, through the ventricles). */
  sliceZMm?: number;
  /** 2D: slice thickness in mm (default 2.086). */
  sliceThicknessMm?: number;
}

/** A procedural phantom's labels and its brain frame (for the regions). */
export interface BrainPhantom {
  readonly volume: LabelVolume;
  readonly frame: BrainFrame;
}

interface Ellipsoid {
  c: [number, number, number];
  a: [number, number, number];
}

function rho(e: Ellipsoid, x: number, y: number, z: number): number {
  const u = (x - e.c[0]) / e.a[0], v = (y - e.c[1]) / e.a[1], w = (z - e.c[2]) / e.a[2];
  return Math.sqrt(u * u + v * v + w * w);
}

/** Radial distance (mm) inside the ellipsoid's surface (negative outside). */
function depthIn(e: Ellipsoid, x: number, y: number, z: number): number {
  const r = rho(e, x, y, z);
  const dx = x - e.c[0], dy = y - e.c[1], dz = z - e.c[2];
  const d = Math.sqrt(dx * dx + dy * dy + dz * dz);
  if (r < 1e-9) return Math.min(...e.a);
  return d * (1 - r) / r;
}

/** Anatomy parameters drawn from the seed. */
function anatomy(seed: number) {
  const rng = new Rng(subSeed(seed, "phantom-anatomy"));
  const j = (s: number) => 1 + s * (2 * rng.uniform() - 1);
  const scale: [number, number, number] = [j(0.05), j(0.05), j(0.05)];
  const cerebrum: Ellipsoid = {
    c: [0, 4, 8 * scale[2]],
    a: [64 * scale[0], 82 * scale[1], 62 * scale[2]],
  };
  const cerebellum: Ellipsoid = {
    c: [0, -44 * scale[1], -42 * scale[2]],
    a: [50 * scale[0], 30 * scale[1], 22 * scale[2]],
  };
  const vs = j(0.25);
  const ventricles: Ellipsoid[] = [-1, 1].map((s) => ({
    c: [s * 9 * scale[0], 0, 14 * scale[2]] as [number, number, number],
    a: [5 * vs, 25 * scale[1], 8 * vs] as [number, number, number],
  }));
  ventricles.push({ c: [0, -6, 2], a: [1.6 * vs, 11, 8] });
  const nuclei: Ellipsoid[] = [];
  for (const s of [-1, 1]) {
    nuclei.push({ c: [s * 14 * scale[0], 14, 12], a: [4.5, 10, 7] }); // caudate
    nuclei.push({ c: [s * 25 * scale[0], 3, 2], a: [5, 13, 9] }); // putamen
    nuclei.push({ c: [s * 9 * scale[0], -13, 4], a: [7.5, 11, 8] }); // thalamus
  }
  // Sulcal field: random plane waves.
  const waves: { k: [number, number, number]; phase: number }[] = [];
  for (let n = 0; n < 14; n++) {
    let u = [rng.normal(), rng.normal(), rng.normal()];
    const norm = Math.hypot(u[0], u[1], u[2]);
    u = u.map((c) => c / norm);
    const lambda = 16 + 14 * rng.uniform();
    const k = u.map((c) => (2 * Math.PI * c) / lambda) as [number, number, number];
    waves.push({ k, phase: 2 * Math.PI * rng.uniform() });
  }
  const depthWaves: { k: [number, number, number]; phase: number }[] = [];
  for (let n = 0; n < 3; n++) {
    const u = [rng.normal(), rng.normal(), rng.normal()];
    const norm = Math.hypot(u[0], u[1], u[2]);
    depthWaves.push({
      k: u.map((c) => (2 * Math.PI * c) / (norm * 70)) as [number, number, number],
      phase: 2 * Math.PI * rng.uniform(),
    });
  }
  return {
    cerebrum,
    cerebellum,
    ventricles,
    nuclei,
    waves,
    depthWaves,
    gmThickness: 3 * j(0.1),
    sulcusDepth: 25 * j(0.15),
  };
}

type Anatomy = ReturnType<typeof anatomy>;

const GAP = 0.6; // half width of sulcal CSF (mm)

function labelAt(an: Anatomy, x: number, y: number, z: number): number {
  const depth = depthIn(an.cerebrum, x, y, z);
  const dcb = depthIn(an.cerebellum, x, y, z);
  // Brainstem: an elliptic cylinder from the thalami down through the neck.
  const bx = x / 11, by = (y + 18) / 13;
  const inStem = z < 0 && bx * bx + by * by < 1;
  const hull = Math.max(depth, dcb, inStem ? 0 : -1e9);
  if (hull < 0) {
    // Outside the brain: CSF, dura, skull (with marrow), fat, scalp; neck below the skull.
    const t = -hull - 2.5;
    const neckTop = an.cerebellum.c[2] - 0.6 * an.cerebellum.a[2];
    if (z < neckTop) {
      const nx = x / 46, ny = (y + 12) / 52;
      const r = Math.sqrt(nx * nx + ny * ny);
      if (r < 1 && t > 1) return r > 0.95 ? Label.MUSCLE_SKIN : r > 0.9 ? Label.FAT : Label.MUSCLE;
    }
    if (t < 0) return Label.CSF;
    if (t < 1) return Label.DURA;
    if (t < 8) return t > 3 && t < 5.5 ? Label.MARROW : Label.SKULL;
    if (t < 9.5) return Label.FAT;
    if (t < 10.5) return Label.AROUND_FAT;
    if (t < 13) return Label.MUSCLE_SKIN;
    return Label.BACKGROUND;
  }
  if (inStem && depth < 0 && dcb < 0) return Label.WHITE_MATTER;
  if (dcb >= 0 && depth < 0) {
    // Cerebellum: WM core, GM folia separated by thin CSF lamellae.
    if (rho(an.cerebellum, x, y, z) < 0.42) return Label.WHITE_MATTER;
    if (dcb > 1 && Math.cos((2 * Math.PI * dcb) / 4.2) > 0.82) return Label.CSF;
    return Label.GREY_MATTER;
  }
  for (const v of an.ventricles) if (rho(v, x, y, z) < 1) return Label.CSF;
  for (const n of an.nuclei) if (rho(n, x, y, z) < 1) return Label.GREY_MATTER;
  if (inStem && depth > 25) return Label.WHITE_MATTER;
  // Sulcal sheets: zero crossings of the wave field; distance ≈ |n| / |∇n|.
  let f = 0, gx = 0, gy = 0, gz = 0;
  for (const w of an.waves) {
    const a = w.k[0] * x + w.k[1] * y + w.k[2] * z + w.phase;
    f += Math.sin(a);
    const c = Math.cos(a);
    gx += c * w.k[0];
    gy += c * w.k[1];
    gz += c * w.k[2];
  }
  const g = Math.sqrt(gx * gx + gy * gy + gz * gz) + 1e-6;
  const sheet = Math.abs(f) / g;
  let dv = 0;
  for (const w of an.depthWaves) dv += Math.sin(w.k[0] * x + w.k[1] * y + w.k[2] * z + w.phase);
  const sd = an.sulcusDepth * (1 + 0.3 * dv / 1.7);
  const fiss = Math.abs(x);
  const fissDepth = z > 0 ? 30 : 8;
  if ((sheet < GAP && depth < sd) || (fiss < GAP && depth < fissDepth)) return Label.CSF;
  const ds = Math.hypot(Math.max(0, sheet - GAP), Math.max(0, depth - sd));
  const df = Math.hypot(Math.max(0, fiss - GAP), Math.max(0, depth - fissDepth));
  const dcort = Math.min(depth, ds, df);
  return dcort < an.gmThickness ? Label.GREY_MATTER : Label.WHITE_MATTER;
}

/**
 * The procedural phantom's labels on a fine grid (centred on the origin) and its brain frame.
 *
 * @example
 * ```ts
 * import { brainPhantomLabels, simulateStudy } from "@petrel/petrel";
 * const { volume, frame } = brainPhantomLabels({ seed: 2, dims: 2 }); // 0.5 mm labels, one slice
 * const study = simulateStudy(volume, { grid: volume.grid, frame, placement: "none" }); // on its own grid
 * ```
 */
export function brainPhantomLabels(options: BrainPhantomOptions = {}): BrainPhantom {
  const seed = options.seed ?? 0;
  const dims = options.dims ?? 3;
  if (dims !== 2 && dims !== 3) throw new RangeError(`dims must be 2 or 3, got ${dims}`);
  const vox = options.voxelMm ?? (dims === 3 ? 1 : 0.5);
  if (!(vox > 0 && vox <= 4)) throw new RangeError(`voxelMm must be in (0, 4] mm, got ${vox}`);
  const an = anatomy(seed);
  const nx = Math.ceil(180 / vox), ny = Math.ceil(220 / vox);
  let grid: ImageGrid;
  let zs: number[];
  const sliceZ = options.sliceZMm ?? 12;
  if (dims === 3) {
    const nz = Math.ceil(190 / vox);
    grid = centredGrid([nx, ny, nz], [vox, vox, vox]);
    zs = Array.from({ length: nz }, (_, k) => grid.originMm[2] + k * vox);
  } else {
    const t = options.sliceThicknessMm ?? MMR_VOXEL_MM;
    grid = centredGrid([nx, ny, 1], [vox, vox, t]);
    zs = [sliceZ];
  }
  const labels = new Uint8Array(nx * ny * zs.length);
  for (let k = 0; k < zs.length; k++) {
    const z = zs[k];
    for (let j = 0; j < ny; j++) {
      const y = grid.originMm[1] + j * vox;
      const base = (k * ny + j) * nx;
      for (let i = 0; i < nx; i++) {
        labels[base + i] = labelAt(an, grid.originMm[0] + i * vox, y, z);
      }
    }
  }
  const c = an.cerebrum;
  const zOffset = dims === 3 ? 0 : sliceZ; // 2D labels sit at z = 0
  const frame: BrainFrame = {
    cx: c.c[0],
    cy: c.c[1],
    hx: c.a[0],
    hy: c.a[1],
    zTop: c.c[2] + c.a[2] - zOffset,
  };
  return { volume: labelVolume(labels, grid), frame };
}

/** Options of {@linkcode brainPhantomStudy}. */
export interface BrainPhantomStudyOptions
  extends BrainPhantomOptions, Omit<SimulateOptions, "grid" | "placement" | "frame"> {
  /** Output grid (default: 128² × 1 (2D) or 128² × 90 (3D) voxels of 2.086 mm, centred). */
  grid?: ImageGrid;
}

/**
 * A full study on the procedural phantom: activity per tracer, MR, μ-map, label fractions and
 * regions on the output grid (the phantom is centred on the world origin; in 2D the slice sits at
 * z = 0).
 *
 * @example
 * ```ts
 * const study = brainPhantomStudy({ seed: 3, dims: 2 }); // activity per tracer, MR, μ-map, masks
 * const fdg = study.activity.fdg;
 * ```
 */
export function brainPhantomStudy(options: BrainPhantomStudyOptions = {}): SimulatedStudy {
  const dims = options.dims ?? 3;
  // In 2D the slice is as thick as the output voxels unless told otherwise.
  const ph = brainPhantomLabels(
    dims === 2 && options.grid && options.sliceThicknessMm === undefined
      ? { ...options, sliceThicknessMm: options.grid.voxelSizeMm[2] }
      : options,
  );
  const grid = options.grid ??
    (dims === 3
      ? centredGrid([128, 128, 90], [MMR_VOXEL_MM, MMR_VOXEL_MM, MMR_VOXEL_MM])
      : centredGrid([128, 128, 1], [MMR_VOXEL_MM, MMR_VOXEL_MM, ph.volume.grid.voxelSizeMm[2]]));
  return simulateStudy(ph.volume, {
    ...options,
    grid,
    placement: "none",
    frame: ph.frame,
  });
}
