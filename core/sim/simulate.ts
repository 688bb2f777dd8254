/**
 * Brain PET/MR studies from anatomical label volumes: tracer activity, T1-like MR, μ-map and
 * label fractions simulated on the fine label grid and box-averaged onto a reconstruction grid in
 * one streaming pass (one fine row at a time; no fine-grid float volume is ever held), so partial
 * volume effects are real and total activity is conserved.
 *
 * @module
 */

import { type ImageGrid, imageGrid, voxelCount } from "../geometry/grid.ts";
import { type AxisWeights, gridWeights } from "./downsample.ts";
import { SmoothField } from "./field.ts";
import { Label, LABEL_COUNT, labelBoundingBox, type LabelVolume } from "./labels.ts";
import { Rng, subSeed } from "../random.ts";
import {
  MR_T1_VALUES,
  MU_VALUES_PER_MM,
  Region,
  REGION_COUNT,
  regionOf,
  sampleTracerStudy,
  TABLE_STRIDE,
  TRACER_MODELS,
  type TracerName,
  TRACERS,
  type TracerStudy,
  type VariabilityOptions,
} from "./tracers.ts";

/** A sphere in reconstruction-grid (world) mm. */
export interface Sphere {
  centreMm: [number, number, number];
  radiusMm: number;
}

/** A lesion: multiplies the activity of every tracer inside the sphere, and the MR by `mrFactor`. */
export interface Lesion extends Sphere {
  /** Activity multiplier (> 1 hot, < 1 cold). */
  petFactor: number;
  /** MR multiplier; 1 (default) = invisible in the MR, which an anatomical prior must not erase. */
  mrFactor?: number;
}

/** Focal grey-matter uptake of one tracer (tau-like blobs). */
export interface Blob extends Sphere {
  tracer: TracerName;
  factor: number;
}

/** MR options. */
export interface MrOptions {
  /** Standard deviation of the log bias field (default 0.08). */
  biasAmplitude?: number;
  /** Rician noise standard deviation in MR units (WM ≈ 0.85), on the output grid (default 0.01). */
  noiseSd?: number;
}

/**
 * Options of {@linkcode simulateStudy}.
 *
 * @example
 * ```ts
 * import { datasetGrid, readLabelVolume, type SimulateOptions, simulateStudy } from "@petrel/petrel";
 * const options: SimulateOptions = {
 *   grid: datasetGrid(), // 128 × 128 × 87 voxels of 2.086 mm
 *   tracers: ["fdg", "amyloid_pos"],
 *   seed: 7,
 *   placement: "head",
 *   variability: { globalSd: 0.1, labelSd: 0.05 },
 *   texture: { amplitude: 0.08, spacingMm: 18 },
 *   lesions: [{ centreMm: [20, 35, 10], radiusMm: 6, petFactor: 2.5 }], // hot, invisible in the MR
 *   mr: { biasAmplitude: 0.08, noiseSd: 0.01 },
 * };
 * const study = simulateStudy(await readLabelVolume("data/brainweb/subject04_crisp.nii.gz"), options);
 * ```
 */
export interface SimulateOptions {
  /** Reconstruction grid to average onto. */
  grid: ImageGrid;
  /** Tracers to simulate (default `["fdg"]`). */
  tracers?: readonly TracerName[];
  /** Seed of every random choice (default 0). Same seed → identical volumes. */
  seed?: number;
  /**
   * Where the labels go on the output grid: `"head"` (default) centres the head's bounding box on
   * the world origin, `"brain"` the brain's, `"none"` keeps the label grid's own coordinates, or
   * an explicit shift in mm added to the label coordinates.
   */
  placement?: "head" | "brain" | "none" | readonly [number, number, number];
  /** Per-study variability (see {@linkcode VariabilityOptions}); `false` = nominal values. */
  variability?: VariabilityOptions | false;
  /** Smooth activity texture: log sd (default 0.08; 0 off) and correlation length (default 18 mm). */
  texture?: { amplitude?: number; spacingMm?: number };
  /** Random lesions (a count, default 0) or explicit ones. */
  lesions?: number | readonly Lesion[];
  /** Extra focal blobs; tracers with a blob model (tau) always draw their own. */
  blobs?: readonly Blob[];
  /** MR options, or `false` to skip the MR. */
  mr?: MrOptions | false;
  /** Compute the μ-map (default true). */
  mu?: boolean;
  /** Compute per-label partial-volume fractions (default true). */
  labelFractions?: boolean;
  /** Brain frame for the regions (default: from the grey/white bounding box of the labels). */
  frame?: BrainFrame;
}

/** A simulated study on the reconstruction grid (all volumes `[nx, ny, nz]`, x fastest). */
export interface SimulatedStudy {
  readonly grid: ImageGrid;
  readonly seed: number;
  /** Shift added to the label volume's coordinates (mm). */
  readonly shiftMm: [number, number, number];
  /** True activity per tracer (arbitrary units per mm³). */
  readonly activity: Partial<Record<TracerName, Float32Array>>;
  /** The sampled tracer parameters. */
  readonly studies: Partial<Record<TracerName, TracerStudy>>;
  /** T1-like MR (with bias field and noise when asked). */
  readonly mr?: Float32Array;
  /** The MR before noise. */
  readonly mrClean?: Float32Array;
  /** μ-map in 1/mm. */
  readonly mu?: Float32Array;
  /** Fraction of each output voxel covered by each label (index = label; [0] = background). */
  readonly labelFractions?: Float32Array[];
  /** Majority label per voxel. */
  readonly labels?: Uint8Array;
  /** Grey + white matter fraction per voxel. */
  readonly brainFraction?: Float32Array;
  /** Procedural region of each voxel's grey matter (majority, {@linkcode Region.NONE} if none). */
  readonly regions?: Uint8Array;
  readonly lesions: Lesion[];
  readonly blobs: Blob[];
}

/** Brain-normalised frame of a label volume (for {@linkcode regionOf}). */
export interface BrainFrame {
  /** Brain bounding-box centre, x and y (mm, label coordinates). */
  cx: number;
  cy: number;
  /** Half sizes of the brain box along x and y (mm). */
  hx: number;
  hy: number;
  /** Top of the brain (mm, label coordinates). */
  zTop: number;
}

/**
 * The brain frame of a label volume, from the bounding box of grey + white matter.
 *
 * @example
 * ```ts
 * import { brainFrame, readLabelVolume, regionAt } from "@petrel/petrel";
 * const vol = await readLabelVolume("data/brainweb/subject04_crisp.nii.gz");
 * const frame = brainFrame(vol);
 * regionAt(frame, frame.cx, frame.cy, frame.zTop - 10); // a region code near the vertex
 * ```
 */
export function brainFrame(vol: LabelVolume): BrainFrame {
  const box = labelBoundingBox(vol, [Label.GREY_MATTER, Label.WHITE_MATTER]);
  const g = vol.grid;
  const lo = [0, 1, 2].map((a) => g.originMm[a] + (box.min[a] - 0.5) * g.voxelSizeMm[a]);
  const hi = [0, 1, 2].map((a) => g.originMm[a] + (box.max[a] + 0.5) * g.voxelSizeMm[a]);
  return {
    cx: (lo[0] + hi[0]) / 2,
    cy: (lo[1] + hi[1]) / 2,
    hx: (hi[0] - lo[0]) / 2,
    hy: (hi[1] - lo[1]) / 2,
    zTop: hi[2],
  };
}

/**
 * Region of a point in label coordinates (mm).
 *
 * @example
 * ```ts
 * import { brainPhantomLabels, REGION_NAMES, regionAt } from "@petrel/petrel";
 * const { frame } = brainPhantomLabels({ dims: 2 });
 * REGION_NAMES[regionAt(frame, 0, frame.cy + 0.8 * frame.hy, 0)]; // anterior: "frontal"
 * ```
 */
export function regionAt(frame: BrainFrame, x: number, y: number, z: number): number {
  return regionOf(
    (x - frame.cx) / frame.hx,
    (y - frame.cy) / frame.hy,
    (frame.zTop - z) / frame.hy,
  );
}

interface RegionMap {
  map: Uint8Array;
  bx: Int32Array;
  by: Int32Array;
  bz: Int32Array;
  nbx: number;
  nby: number;
  nbz: number;
}

function buildRegionMap(vol: LabelVolume, frame: BrainFrame): RegionMap {
  const g = vol.grid;
  const b = g.voxelSizeMm.map((v) => Math.max(1, Math.round(2 / v)));
  const nb = [0, 1, 2].map((a) => Math.ceil(g.shape[a] / b[a]));
  const map = new Uint8Array(nb[0] * nb[1] * nb[2]);
  for (let k = 0; k < nb[2]; k++) {
    const z = g.originMm[2] + (Math.min((k + 0.5) * b[2], g.shape[2]) - 0.5) * g.voxelSizeMm[2];
    for (let j = 0; j < nb[1]; j++) {
      const y = g.originMm[1] + (Math.min((j + 0.5) * b[1], g.shape[1]) - 0.5) * g.voxelSizeMm[1];
      for (let i = 0; i < nb[0]; i++) {
        const x = g.originMm[0] + (Math.min((i + 0.5) * b[0], g.shape[0]) - 0.5) *
            g.voxelSizeMm[0];
        map[i + nb[0] * (j + nb[1] * k)] = regionAt(frame, x, y, z);
      }
    }
  }
  const idx = (n: number, s: number) => Int32Array.from({ length: n }, (_, i) => Math.floor(i / s));
  return {
    map,
    bx: idx(g.shape[0], b[0]),
    by: idx(g.shape[1], b[1]),
    bz: idx(g.shape[2], b[2]),
    nbx: nb[0],
    nby: nb[1],
    nbz: nb[2],
  };
}

/** In-place running box filter of half width `r` along one axis of a [nx, ny, nz] array. */
function boxFilterAxis(
  v: Float32Array,
  n: [number, number, number],
  axis: number,
  r: number,
): void {
  const stride = axis === 0 ? 1 : axis === 1 ? n[0] : n[0] * n[1];
  const len = n[axis];
  const lines = v.length / len;
  const buf = new Float64Array(len);
  for (let line = 0; line < lines; line++) {
    // Start index of this line.
    let start: number;
    if (axis === 0) start = line * len;
    else if (axis === 1) start = (line % n[0]) + Math.floor(line / n[0]) * n[0] * n[1];
    else start = line;
    for (let t = 0; t < len; t++) buf[t] = v[start + t * stride];
    let acc = 0;
    for (let t = 0; t <= Math.min(r, len - 1); t++) acc += buf[t];
    for (let t = 0; t < len; t++) {
      v[start + t * stride] = acc;
      const add = t + r + 1, drop = t - r;
      if (add < len) acc += buf[add];
      if (drop >= 0) acc -= buf[drop];
    }
  }
}

/**
 * Grey-matter factor per region-map block, blended smoothly across region borders (normalised
 * box filtering of half width `r` blocks, applied twice, over the blocks inside the brain box) so
 * that regional uptake changes gradually instead of along straight lines.
 */
function smoothFactorMap(rm: RegionMap, factors: readonly number[], r = 4): Float32Array {
  const n: [number, number, number] = [rm.nbx, rm.nby, rm.nbz];
  const f = new Float32Array(rm.map.length);
  const m = new Float32Array(rm.map.length);
  for (let b = 0; b < f.length; b++) {
    const reg = rm.map[b];
    if (reg !== Region.NONE) {
      f[b] = factors[reg];
      m[b] = 1;
    }
  }
  for (let pass = 0; pass < 2; pass++) {
    for (let a = 0; a < 3; a++) {
      boxFilterAxis(f, n, a, r);
      boxFilterAxis(m, n, a, r);
    }
  }
  const out = new Float32Array(f.length);
  for (let b = 0; b < f.length; b++) out[b] = m[b] > 1e-6 ? f[b] / m[b] : 1;
  return out;
}

/** Centre of the bounding box of `labels` in label coordinates (mm). */
function boxCentre(vol: LabelVolume, labels: number[]): [number, number, number] {
  const box = labelBoundingBox(vol, labels);
  const g = vol.grid;
  return [0, 1, 2].map((a) =>
    g.originMm[a] + ((box.min[a] + box.max[a]) / 2) * g.voxelSizeMm[a]
  ) as [number, number, number];
}

/**
 * Shift (mm) that {@linkcode SimulateOptions.placement} implies for a label volume.
 *
 * @example
 * ```ts
 * import { placementShift, readLabelVolume } from "@petrel/petrel";
 * const vol = await readLabelVolume("data/brainweb/subject04_crisp.nii.gz");
 * const shiftMm = placementShift(vol, "brain"); // puts the brain's bounding-box centre on the origin
 * ```
 */
export function placementShift(
  vol: LabelVolume,
  placement: SimulateOptions["placement"] = "head",
): [number, number, number] {
  if (Array.isArray(placement)) return [placement[0], placement[1], placement[2]];
  if (placement === "none") return [0, 0, 0];
  const all = Array.from({ length: LABEL_COUNT - 1 }, (_, i) => i + 1);
  const c = placement === "brain"
    ? boxCentre(vol, [Label.GREY_MATTER, Label.WHITE_MATTER])
    : placement === "head"
    ? boxCentre(vol, all)
    : null;
  if (!c) {
    throw new RangeError(
      `unknown placement ${
        JSON.stringify(placement)
      }; expected "head", "brain", "none" or [dx, dy, dz]`,
    );
  }
  return [-c[0], -c[1], -c[2]];
}

/** Draws a random voxel of `vol` whose label (and region) pass `accept`; null after 20000 tries. */
function randomVoxel(
  vol: LabelVolume,
  rng: Rng,
  accept: (label: number, x: number, y: number, z: number) => boolean,
): [number, number, number] | null {
  const g = vol.grid;
  const [nx, ny, nz] = g.shape;
  for (let t = 0; t < 20000; t++) {
    const i = Math.floor(rng.uniform() * nx);
    const j = Math.floor(rng.uniform() * ny);
    const k = Math.floor(rng.uniform() * nz);
    const x = g.originMm[0] + i * g.voxelSizeMm[0];
    const y = g.originMm[1] + j * g.voxelSizeMm[1];
    const z = g.originMm[2] + k * g.voxelSizeMm[2];
    if (accept(vol.labels[i + nx * (j + ny * k)], x, y, z)) return [x, y, z];
  }
  return null;
}

/**
 * Random lesions inside grey or white matter: radius 3–8 mm, 60 % hot (×1.6–3), 40 % cold
 * (×0.2–0.5); half of them visible in the MR (×0.75), half invisible. Centres in output mm.
 *
 * @example
 * ```ts
 * import { placementShift, randomLesions, readLabelVolume, simulateStudy, datasetGrid } from "@petrel/petrel";
 * const vol = await readLabelVolume("data/brainweb/subject04_crisp.nii.gz");
 * const shiftMm = placementShift(vol, "head");
 * const lesions = randomLesions(vol, 4, { seed: 11, shiftMm }); // centres in output mm
 * const study = simulateStudy(vol, { grid: datasetGrid(), seed: 11, lesions });
 * ```
 */
export function randomLesions(
  vol: LabelVolume,
  count: number,
  options: { seed: number; shiftMm: readonly [number, number, number] },
): Lesion[] {
  const rng = new Rng(subSeed(options.seed, "lesions"));
  const out: Lesion[] = [];
  for (let n = 0; n < count; n++) {
    const p = randomVoxel(
      vol,
      rng,
      (l) => l === Label.GREY_MATTER || l === Label.WHITE_MATTER,
    );
    if (!p) break;
    const radiusMm = 3 + 5 * rng.uniform();
    const hot = rng.uniform() < 0.6;
    const petFactor = hot ? 1.6 + 1.4 * rng.uniform() : 0.2 + 0.3 * rng.uniform();
    const mrFactor = rng.uniform() < 0.5 ? 0.75 : 1;
    out.push({
      centreMm: [p[0] + options.shiftMm[0], p[1] + options.shiftMm[1], p[2] + options.shiftMm[2]],
      radiusMm,
      petFactor,
      mrFactor,
    });
  }
  return out;
}

function tracerBlobs(
  vol: LabelVolume,
  frame: BrainFrame,
  tracer: TracerName,
  seed: number,
  shiftMm: readonly [number, number, number],
): Blob[] {
  const m = TRACER_MODELS[tracer].blobs;
  if (!m) return [];
  const rng = new Rng(subSeed(seed, `blobs:${tracer}`));
  const count = m.count[0] + Math.floor(rng.uniform() * (m.count[1] - m.count[0] + 1));
  const allowed = new Set(m.regions);
  const out: Blob[] = [];
  for (let n = 0; n < count; n++) {
    const p = randomVoxel(
      vol,
      rng,
      (l, x, y, z) => l === Label.GREY_MATTER && allowed.has(regionAt(frame, x, y, z)),
    );
    if (!p) break;
    out.push({
      tracer,
      centreMm: [p[0] + shiftMm[0], p[1] + shiftMm[1], p[2] + shiftMm[2]],
      radiusMm: m.radiusMm[0] + rng.uniform() * (m.radiusMm[1] - m.radiusMm[0]),
      factor: m.factor[0] + rng.uniform() * (m.factor[1] - m.factor[0]),
    });
  }
  return out;
}

/** What a study is made of, fixed before the streaming pass: grid, placement and random draws. */
interface StudyPlan {
  grid: ImageGrid;
  seed: number;
  tracers: TracerName[];
  shiftMm: [number, number, number];
  frame: BrainFrame;
  studies: Partial<Record<TracerName, TracerStudy>>;
  lesions: Lesion[];
  blobs: Blob[];
  /** Whether label and region fractions are wanted. */
  wantFractions: boolean;
}

/** Step 1: validates the tracers, places the labels and draws the per-study parameters. */
function planStudy(vol: LabelVolume, options: SimulateOptions): StudyPlan {
  const grid = imageGrid(options.grid);
  const seed = options.seed ?? 0;
  const tracers = [...new Set(options.tracers ?? ["fdg"])] as TracerName[];
  for (const t of tracers) {
    if (!TRACERS.includes(t)) {
      throw new RangeError(`unknown tracer "${t}"; expected one of ${TRACERS.join(", ")}`);
    }
  }
  const shiftMm = placementShift(vol, options.placement);
  const frame = options.frame ?? brainFrame(vol);
  const variability = options.variability === false
    ? { globalSd: 0, labelSd: 0, regionSdScale: 0 }
    : options.variability ?? {};
  const studies: Partial<Record<TracerName, TracerStudy>> = {};
  for (const t of tracers) {
    studies[t] = sampleTracerStudy(t, new Rng(subSeed(seed, `tracer:${t}`)), variability);
  }
  const lesions: Lesion[] = typeof options.lesions === "number"
    ? randomLesions(vol, options.lesions, { seed, shiftMm })
    : [...(options.lesions ?? [])];
  const blobs: Blob[] = [...(options.blobs ?? [])];
  for (const t of tracers) blobs.push(...tracerBlobs(vol, frame, t, seed, shiftMm));
  const wantFractions = options.labelFractions ?? true;
  return { grid, seed, tracers, shiftMm, frame, studies, lesions, blobs, wantFractions };
}

/** Per-label lookup tables and smooth fields that modulate each fine row. */
interface StudyFields {
  texture: SmoothField | null;
  bias: SmoothField | null;
  /** MR value per label, or null without MR. */
  mrTable: Float32Array | null;
  /** μ per label (1/mm), or null without μ-map. */
  muTable: Float32Array | null;
}

/** Step 2: the activity texture, MR bias field and per-label MR/μ tables (own seeded streams). */
function studyFields(vol: LabelVolume, plan: StudyPlan, options: SimulateOptions): StudyFields {
  const fg = vol.grid;
  const { seed, shiftMm } = plan;
  // Smooth fields span the label volume's extent (output coordinates).
  const boxMinMm = [0, 1, 2].map((a) => fg.originMm[a] + shiftMm[a]) as [number, number, number];
  const boxMaxMm = [0, 1, 2].map((a) =>
    fg.originMm[a] + shiftMm[a] + (fg.shape[a] - 1) * fg.voxelSizeMm[a]
  ) as [number, number, number];
  const texAmp = options.texture?.amplitude ?? 0.08;
  const texture = texAmp > 0
    ? new SmoothField(new Rng(subSeed(seed, "texture")), {
      boxMinMm,
      boxMaxMm,
      spacingMm: options.texture?.spacingMm ?? 18,
      amplitude: texAmp,
    })
    : null;
  const mrOpt = options.mr === false ? null : options.mr ?? {};
  const biasAmp = mrOpt?.biasAmplitude ?? 0.08;
  const bias = mrOpt && biasAmp > 0
    ? new SmoothField(new Rng(subSeed(seed, "bias")), {
      boxMinMm,
      boxMaxMm,
      spacingMm: 60,
      amplitude: biasAmp,
    })
    : null;
  let mrTable: Float32Array | null = null;
  if (mrOpt) {
    mrTable = new Float32Array(TABLE_STRIDE);
    const rng = new Rng(subSeed(seed, "mr"));
    for (let l = 0; l < LABEL_COUNT; l++) {
      mrTable[l] = MR_T1_VALUES[l] * (options.variability === false ? 1 : 1 + 0.03 * rng.normal());
    }
  }
  const muTable = (options.mu ?? true) ? Float32Array.from(MU_VALUES_PER_MM) : null;
  return { texture, bias, mrTable, muTable };
}

/** Padded accumulation planes for one output quantity. */
class Accumulator {
  readonly row: Float64Array;
  readonly plane: Float64Array;
  readonly out: Float32Array;
  constructor(readonly px: number, readonly py: number, n: number) {
    this.row = new Float64Array(px);
    this.plane = new Float64Array(px * py);
    this.out = new Float32Array(n);
  }
}

/** Adds `values[lo..hi]` of a fine row into the padded output row `acc` with the x weights. */
function addRow(
  acc: Float64Array,
  values: ArrayLike<number>,
  wx: AxisWeights,
  lo: number,
  hi: number,
): void {
  const { slot: sx, w0: wx0, w1: wx1 } = wx;
  for (let i = lo; i <= hi; i++) {
    const v = values[i];
    if (v !== 0) {
      const s = sx[i];
      acc[s] += v * wx0[i];
      acc[s + 1] += v * wx1[i];
    }
  }
}

function spreadRow(acc: Accumulator, wy: AxisWeights, j: number): void {
  const w0 = wy.w0[j], w1 = wy.w1[j];
  const px = acc.px;
  const d0 = wy.slot[j] * px, d1 = d0 + px;
  const r = acc.row, p = acc.plane;
  for (let i = 0; i < px; i++) {
    const v = r[i];
    if (v !== 0) {
      p[d0 + i] += v * w0;
      p[d1 + i] += v * w1;
      r[i] = 0;
    }
  }
}

function spreadPlane(acc: Accumulator, wz: AxisWeights, k: number, ox: number, oy: number): void {
  const s = wz.slot[k];
  const targets: [number, number][] = [[s - 1, wz.w0[k]], [s, wz.w1[k]]];
  const p = acc.plane;
  for (const [oz, w] of targets) {
    if (oz < 0 || oz >= wz.n || w === 0) continue;
    for (let j = 0; j < oy; j++) {
      const src = (j + 1) * acc.px + 1;
      const dst = ox * (j + oy * oz);
      for (let i = 0; i < ox; i++) acc.out[dst + i] += p[src + i] * w;
    }
  }
  p.fill(0);
}

function applySpheres(
  row: Float32Array,
  labels: Uint8Array | null,
  spheres: readonly (Sphere & { f: number })[],
  y: number,
  z: number,
  x0: number,
  dx: number,
): void {
  for (const s of spheres) {
    const dy = y - s.centreMm[1], dz = z - s.centreMm[2];
    const r2 = s.radiusMm * s.radiusMm - dy * dy - dz * dz;
    if (r2 <= 0) continue;
    const rx = Math.sqrt(r2);
    const lo = Math.max(0, Math.ceil((s.centreMm[0] - rx - x0) / dx));
    const hi = Math.min(row.length - 1, Math.floor((s.centreMm[0] + rx - x0) / dx));
    for (let i = lo; i <= hi; i++) {
      if (!labels || labels[i] === Label.GREY_MATTER) row[i] *= s.f;
    }
  }
}

/** One fine row of the label volume as the streaming pass sees it. */
interface FineRow {
  /** Labels of the row. */
  labels: Uint8Array;
  /** First and last non-background voxel. */
  lo: number;
  hi: number;
  /** World y and z of the row (mm). */
  y: number;
  z: number;
  /** Offset of the row's (y, z) block in the region map. */
  rbase: number;
}

/** The output accumulators of the streaming pass (null/empty for what was not asked). */
interface StudySums {
  pet: Accumulator[];
  mr: Accumulator | null;
  mu: Accumulator | null;
  fractions: Accumulator[];
  regions: Accumulator[];
}

/**
 * Step 3: the streaming pass. Each non-empty fine row is turned into every output quantity
 * (activity per tracer, MR, μ, label and region fractions) and box-averaged onto the output grid
 * row by row, then plane by plane; only a few rows and one padded plane per quantity are held.
 */
function streamLabels(vol: LabelVolume, plan: StudyPlan, fields: StudyFields): StudySums {
  const { grid, tracers, shiftMm } = plan;
  const fg = vol.grid;
  const [nx, ny, nz] = fg.shape;
  const [ox, oy] = grid.shape;
  const nOut = voxelCount(grid);
  const regions = buildRegionMap(vol, plan.frame);
  const [wx, wy, wz] = gridWeights(fg, grid, shiftMm);
  const px = ox + 2, py = oy + 2;
  const newAcc = () => new Accumulator(px, py, nOut);
  const sums: StudySums = {
    pet: tracers.map(newAcc),
    mr: fields.mrTable ? newAcc() : null,
    mu: fields.muTable ? newAcc() : null,
    fractions: [],
    regions: [],
  };
  const wantFractions = plan.wantFractions;
  if (wantFractions) {
    sums.fractions = Array.from({ length: LABEL_COUNT }, newAcc);
    sums.regions = Array.from({ length: REGION_COUNT }, newAcc);
  }

  const xs = Float64Array.from(
    { length: nx },
    (_, i) => fg.originMm[0] + shiftMm[0] + i * fg.voxelSizeMm[0],
  );
  const rowMaker = new RowMaker(plan, fields, regions, xs, fg.voxelSizeMm[0]);
  const touched = new Uint8Array(LABEL_COUNT);
  const touchedReg = new Uint8Array(REGION_COUNT);
  const lab = vol.labels;
  const all: Accumulator[] = [
    ...sums.pet,
    ...(sums.mr ? [sums.mr] : []),
    ...(sums.mu ? [sums.mu] : []),
    ...sums.fractions,
    ...sums.regions,
  ];

  for (let k = 0; k < nz; k++) {
    if (wz.w0[k] === 0 && wz.w1[k] === 0) continue;
    const z = fg.originMm[2] + shiftMm[2] + k * fg.voxelSizeMm[2];
    let sliceUsed = false;
    for (let j = 0; j < ny; j++) {
      if (wy.w0[j] === 0 && wy.w1[j] === 0) continue;
      const base = (k * ny + j) * nx;
      let lo = 0;
      while (lo < nx && lab[base + lo] === 0) lo++;
      if (lo === nx) continue;
      let hi = nx - 1;
      while (lab[base + hi] === 0) hi--;
      sliceUsed = true;
      const row: FineRow = {
        labels: lab.subarray(base, base + nx),
        lo,
        hi,
        y: fg.originMm[1] + shiftMm[1] + j * fg.voxelSizeMm[1],
        z,
        rbase: regions.nbx * (regions.by[j] + regions.nby * regions.bz[k]),
      };
      rowMaker.begin(row);
      for (let t = 0; t < tracers.length; t++) {
        const values = rowMaker.activity(t, row);
        addRow(sums.pet[t].row, values, wx, lo, hi);
        values.fill(0, lo, hi + 1);
      }
      if (sums.mr) addRow(sums.mr.row, rowMaker.mr(row), wx, lo, hi);
      if (sums.mu) addRow(sums.mu.row, rowMaker.mu(row), wx, lo, hi);
      if (wantFractions) {
        addFractionRows(sums, row, wx, regions, touched, touchedReg);
      }
      for (const a of sums.pet) spreadRow(a, wy, j);
      if (sums.mr) spreadRow(sums.mr, wy, j);
      if (sums.mu) spreadRow(sums.mu, wy, j);
      for (let l = 0; l < LABEL_COUNT; l++) {
        if (touched[l]) {
          spreadRow(sums.fractions[l], wy, j);
          touched[l] = 0;
        }
      }
      for (let r = 0; r < REGION_COUNT; r++) {
        if (touchedReg[r]) {
          spreadRow(sums.regions[r], wy, j);
          touchedReg[r] = 0;
        }
      }
    }
    if (sliceUsed) { for (const a of all) spreadPlane(a, wz, k, ox, oy); }
  }
  return sums;
}

/** Fills the fine-row values of each quantity (activity per tracer, MR, μ) into reused buffers. */
class RowMaker {
  readonly #petRows: Float32Array[];
  readonly #tables: Float32Array[];
  readonly #gmFactors: Float32Array[];
  readonly #petSpheres: (Sphere & { f: number })[];
  readonly #blobSpheres: (Sphere & { f: number })[][];
  readonly #mrSpheres: (Sphere & { f: number })[];
  readonly #texRow: Float32Array;
  readonly #biasRow: Float32Array;
  readonly #mrRow: Float32Array;
  readonly #muRow: Float32Array;
  readonly #texCols;
  readonly #biasCols;
  readonly #x0: number;

  constructor(
    plan: StudyPlan,
    readonly fields: StudyFields,
    readonly regions: RegionMap,
    xs: Float64Array,
    readonly dx: number,
  ) {
    const nx = xs.length;
    const { tracers, studies, lesions, blobs } = plan;
    this.#petRows = tracers.map(() => new Float32Array(nx));
    this.#tables = tracers.map((t) => studies[t]!.table);
    this.#gmFactors = tracers.map((t) => smoothFactorMap(regions, studies[t]!.regionFactors));
    this.#petSpheres = lesions.filter((l) => l.petFactor !== 1).map((l) => ({
      ...l,
      f: l.petFactor,
    }));
    this.#blobSpheres = tracers.map((t) =>
      blobs.filter((b) => b.tracer === t).map((b) => ({ ...b, f: b.factor }))
    );
    this.#mrSpheres = lesions.filter((l) => (l.mrFactor ?? 1) !== 1).map((l) => ({
      ...l,
      f: l.mrFactor ?? 1,
    }));
    this.#texCols = fields.texture?.prepareX(xs);
    this.#biasCols = fields.bias?.prepareX(xs);
    this.#texRow = new Float32Array(nx).fill(1);
    this.#biasRow = new Float32Array(nx).fill(1);
    this.#mrRow = new Float32Array(nx);
    this.#muRow = new Float32Array(nx);
    this.#x0 = xs[0];
  }

  /** Starts a row: fills the texture shared by every tracer. */
  begin(row: FineRow): void {
    if (this.fields.texture) {
      this.fields.texture.fillRow(this.#texRow, row.y, row.z, this.#texCols!);
    }
  }

  /**
   * Activity of tracer `t` along the row: per-label value (grey matter by its smoothed regional
   * factor), times the texture, then lesions and blobs. The caller zeroes `[lo, hi]` after use.
   */
  activity(t: number, row: FineRow): Float32Array {
    const { labels, lo, hi, y, z, rbase } = row;
    const out = this.#petRows[t];
    const table = this.#tables[t];
    const gmf = this.#gmFactors[t];
    const texRow = this.#texRow;
    const rbx = this.regions.bx;
    // Row 8 ("none") of the table holds the region-free values.
    const gmBase = table[Region.NONE * TABLE_STRIDE + Label.GREY_MATTER];
    for (let i = lo; i <= hi; i++) {
      const l = labels[i];
      out[i] = (l === Label.GREY_MATTER ? gmBase * gmf[rbase + rbx[i]] : table[l]) * texRow[i];
    }
    applySpheres(out, null, this.#petSpheres, y, z, this.#x0, this.dx);
    applySpheres(out, labels, this.#blobSpheres[t], y, z, this.#x0, this.dx);
    return out;
  }

  /** T1-like MR along the row: per-label value times the bias field, then MR-visible lesions. */
  mr(row: FineRow): Float32Array {
    const { labels, lo, hi, y, z } = row;
    const mrTable = this.fields.mrTable!;
    if (this.fields.bias) this.fields.bias.fillRow(this.#biasRow, y, z, this.#biasCols!);
    const out = this.#mrRow;
    const biasRow = this.#biasRow;
    for (let i = lo; i <= hi; i++) out[i] = mrTable[labels[i]] * biasRow[i];
    applySpheres(out, null, this.#mrSpheres, y, z, this.#x0, this.dx);
    return out;
  }

  /** μ (1/mm) along the row, per label. */
  mu(row: FineRow): Float32Array {
    const { labels, lo, hi } = row;
    const muTable = this.fields.muTable!;
    const out = this.#muRow;
    for (let i = lo; i <= hi; i++) out[i] = muTable[labels[i]];
    return out;
  }
}

/** Adds a fine row's label indicator (and grey-matter region indicator) to the fraction sums. */
function addFractionRows(
  sums: StudySums,
  row: FineRow,
  wx: AxisWeights,
  regions: RegionMap,
  touched: Uint8Array,
  touchedReg: Uint8Array,
): void {
  const { labels, lo, hi, rbase } = row;
  const { slot: sx, w0: wx0, w1: wx1 } = wx;
  const rmap = regions.map;
  const rbx = regions.bx;
  for (let i = lo; i <= hi; i++) {
    const l = labels[i];
    if (l === 0) continue;
    touched[l] = 1;
    const acc = sums.fractions[l].row;
    const s = sx[i];
    acc[s] += wx0[i];
    acc[s + 1] += wx1[i];
    if (l === Label.GREY_MATTER) {
      const r = rmap[rbase + rbx[i]];
      touchedReg[r] = 1;
      const ra = sums.regions[r].row;
      ra[s] += wx0[i];
      ra[s + 1] += wx1[i];
    }
  }
}

/** Step 4: Rician noise on the clean MR (sd in MR units; 0 returns the clean MR itself). */
function ricianMr(mrClean: Float32Array, sd: number, seed: number): Float32Array {
  if (!(sd > 0)) return mrClean;
  const rng = new Rng(subSeed(seed, "mr-noise"));
  const mr = new Float32Array(mrClean.length);
  for (let i = 0; i < mrClean.length; i++) {
    const a = mrClean[i] + sd * rng.normal();
    const b = sd * rng.normal();
    mr[i] = Math.sqrt(a * a + b * b);
  }
  return mr;
}

/** Per-voxel summaries of the label fractions. */
interface LabelSummary {
  labelFractions: Float32Array[];
  labels: Uint8Array;
  brainFraction: Float32Array;
  regions: Uint8Array;
}

/**
 * Step 5: background fraction (1 − the rest), majority label, grey + white fraction and majority
 * grey-matter region per output voxel.
 */
function summariseLabels(fractions: Accumulator[], regionSums: Accumulator[]): LabelSummary {
  const labelFractions = fractions.map((a) => a.out);
  const nOut = labelFractions[0].length;
  const bg = labelFractions[0];
  for (let i = 0; i < nOut; i++) {
    let s = 0;
    for (let l = 1; l < LABEL_COUNT; l++) s += labelFractions[l][i];
    bg[i] = Math.max(0, 1 - s);
  }
  const labels = new Uint8Array(nOut);
  const brainFraction = new Float32Array(nOut);
  const regions = new Uint8Array(nOut).fill(Region.NONE);
  for (let i = 0; i < nOut; i++) {
    let best = 0, bv = -1;
    for (let l = 0; l < LABEL_COUNT; l++) {
      if (labelFractions[l][i] > bv) {
        bv = labelFractions[l][i];
        best = l;
      }
    }
    labels[i] = best;
    brainFraction[i] = labelFractions[Label.GREY_MATTER][i] +
      labelFractions[Label.WHITE_MATTER][i];
    let br: number = Region.NONE, brv = 0;
    for (let r = 0; r < REGION_COUNT; r++) {
      const v = regionSums[r].out[i];
      if (v > brv) {
        brv = v;
        br = r;
      }
    }
    regions[i] = br;
  }
  return { labelFractions, labels, brainFraction, regions };
}

/**
 * Simulates a study from a label volume onto `options.grid`: per-tracer activity with seeded
 * per-study variability, texture, lesions and focal blobs; a T1-like MR with bias field and Rician
 * noise; the μ-map (1/mm); label fractions, majority labels and regions. Streaming: memory is a
 * few fine rows plus the output volumes.
 *
 * The steps: `planStudy` (placement and random draws), `studyFields` (texture, bias,
 * per-label tables), `streamLabels` (the box-averaging pass), `ricianMr`, `summariseLabels`.
 *
 * @example
 * ```ts
 * import { centredGrid, readLabelVolume, simulateStudy } from "@petrel/petrel";
 * const vol = await readLabelVolume("data/brainweb/subject04_crisp.nii.gz");
 * const s = simulateStudy(vol, { grid: centredGrid([64, 64, 40], [2.5, 2.5, 2.5]), seed: 1 });
 * s.activity.fdg; // Float32Array [nx, ny, nz]
 * ```
 */
export function simulateStudy(vol: LabelVolume, options: SimulateOptions): SimulatedStudy {
  const plan = planStudy(vol, options);
  const fields = studyFields(vol, plan, options);
  const sums = streamLabels(vol, plan, fields);
  const activity: Partial<Record<TracerName, Float32Array>> = {};
  plan.tracers.forEach((t, n) => activity[t] = sums.pet[n].out);
  const mrClean = sums.mr?.out;
  const mr = mrClean && ricianMr(mrClean, (options.mr || {}).noiseSd ?? 0.01, plan.seed);
  const summary = plan.wantFractions ? summariseLabels(sums.fractions, sums.regions) : undefined;
  return {
    grid: plan.grid,
    seed: plan.seed,
    shiftMm: plan.shiftMm,
    activity,
    studies: plan.studies,
    mr,
    mrClean,
    mu: sums.mu?.out,
    labelFractions: summary?.labelFractions,
    labels: summary?.labels,
    brainFraction: summary?.brainFraction,
    regions: summary?.regions,
    lesions: plan.lesions,
    blobs: plan.blobs,
  };
}
