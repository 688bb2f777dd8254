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
import { Rng } from "./rng.ts";
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

/** Options of {@linkcode simulateStudy}. */
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

/** A derived seed for one component of a study (independent streams per component). */
export function subSeed(seed: number, tag: string): number {
  let h = 0x811c9dc5 ^ (Math.trunc(seed) | 0);
  for (let i = 0; i < tag.length; i++) {
    h = Math.imul(h ^ tag.charCodeAt(i), 0x01000193);
  }
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  h = Math.imul(h ^ (h >>> 12), 0x297a2d39);
  return (h ^ (h >>> 15)) | 0;
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

/** The brain frame of a label volume, from the bounding box of grey + white matter. */
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

/** Region of a point in label coordinates (mm). */
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

/** Shift (mm) that {@linkcode SimulateOptions.placement} implies for a label volume. */
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

/**
 * Simulates a study from a label volume onto `options.grid`: per-tracer activity with seeded
 * per-study variability, texture, lesions and focal blobs; a T1-like MR with bias field and Rician
 * noise; the μ-map (1/mm); label fractions, majority labels and regions. Streaming: memory is a
 * few fine rows plus the output volumes.
 */
export function simulateStudy(vol: LabelVolume, options: SimulateOptions): SimulatedStudy {
  const grid = imageGrid(options.grid);
  const seed = options.seed ?? 0;
  const tracers = [...new Set(options.tracers ?? ["fdg"])] as TracerName[];
  for (const t of tracers) {
    if (!TRACERS.includes(t)) {
      throw new RangeError(`unknown tracer "${t}"; expected one of ${TRACERS.join(", ")}`);
    }
  }
  const fg = vol.grid;
  const [nx, ny, nz] = fg.shape;
  const [ox, oy] = grid.shape;
  const nOut = voxelCount(grid);
  const shiftMm = placementShift(vol, options.placement);
  const frame = options.frame ?? brainFrame(vol);
  const regions = buildRegionMap(vol, frame);
  const [wx, wy, wz] = gridWeights(fg, grid, shiftMm);
  const px = ox + 2, py = oy + 2;

  // Per-study parameters.
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

  // Smooth fields over the label volume's extent (output coordinates).
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
  const mrTable = new Float32Array(TABLE_STRIDE);
  if (mrOpt) {
    const rng = new Rng(subSeed(seed, "mr"));
    for (let l = 0; l < LABEL_COUNT; l++) {
      mrTable[l] = MR_T1_VALUES[l] * (options.variability === false ? 1 : 1 + 0.03 * rng.normal());
    }
  }
  const wantMu = options.mu ?? true;
  const muTable = Float32Array.from(MU_VALUES_PER_MM);
  const wantFractions = options.labelFractions ?? true;

  const xs = Float64Array.from(
    { length: nx },
    (_, i) => fg.originMm[0] + shiftMm[0] + i * fg.voxelSizeMm[0],
  );
  const texCols = texture?.prepareX(xs);
  const biasCols = bias?.prepareX(xs);
  const texRow = new Float32Array(nx).fill(1);
  const biasRow = new Float32Array(nx).fill(1);

  const petAcc = tracers.map(() => new Accumulator(px, py, nOut));
  const petRows = tracers.map(() => new Float32Array(nx));
  const tables = tracers.map((t) => studies[t]!.table);
  const gmFactors = tracers.map((t) => smoothFactorMap(regions, studies[t]!.regionFactors));
  const petSpheres = lesions.filter((l) => l.petFactor !== 1).map((l) => ({
    ...l,
    f: l.petFactor,
  }));
  const blobSpheres = tracers.map((t) =>
    blobs.filter((b) => b.tracer === t).map((b) => ({ ...b, f: b.factor }))
  );
  const mrSpheres = lesions.filter((l) => (l.mrFactor ?? 1) !== 1).map((l) => ({
    ...l,
    f: l.mrFactor ?? 1,
  }));
  const mrAcc = mrOpt ? new Accumulator(px, py, nOut) : null;
  const mrRow = new Float32Array(nx);
  const muAcc = wantMu ? new Accumulator(px, py, nOut) : null;
  const fracAcc = wantFractions
    ? Array.from({ length: LABEL_COUNT }, () => new Accumulator(px, py, nOut))
    : [];
  const regAcc = wantFractions
    ? Array.from({ length: REGION_COUNT }, () => new Accumulator(px, py, nOut))
    : [];
  const touched = new Uint8Array(LABEL_COUNT);
  const touchedReg = new Uint8Array(REGION_COUNT);
  const lab = vol.labels;
  const { slot: sx, w0: wx0, w1: wx1 } = wx;
  const rmap = regions.map;
  const rbx = regions.bx;
  const x0 = xs[0];
  const dx = fg.voxelSizeMm[0];
  const all: Accumulator[] = [
    ...petAcc,
    ...(mrAcc ? [mrAcc] : []),
    ...(muAcc ? [muAcc] : []),
    ...fracAcc,
    ...regAcc,
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
      const y = fg.originMm[1] + shiftMm[1] + j * fg.voxelSizeMm[1];
      const labels = lab.subarray(base, base + nx);
      const rbase = regions.nbx * (regions.by[j] + regions.nby * regions.bz[k]);
      if (texture) texture.fillRow(texRow, y, z, texCols!);
      for (let t = 0; t < tracers.length; t++) {
        const row = petRows[t];
        const table = tables[t];
        const gmf = gmFactors[t];
        // Row 8 ("none") of the table holds the region-free values.
        const gmBase = table[Region.NONE * TABLE_STRIDE + Label.GREY_MATTER];
        for (let i = lo; i <= hi; i++) {
          const l = labels[i];
          row[i] = (l === Label.GREY_MATTER ? gmBase * gmf[rbase + rbx[i]] : table[l]) * texRow[i];
        }
        applySpheres(row, null, petSpheres, y, z, x0, dx);
        applySpheres(row, labels, blobSpheres[t], y, z, x0, dx);
        const acc = petAcc[t].row;
        for (let i = lo; i <= hi; i++) {
          const v = row[i];
          if (v !== 0) {
            const s = sx[i];
            acc[s] += v * wx0[i];
            acc[s + 1] += v * wx1[i];
          }
        }
        row.fill(0, lo, hi + 1);
      }
      if (mrAcc) {
        if (bias) bias.fillRow(biasRow, y, z, biasCols!);
        for (let i = lo; i <= hi; i++) mrRow[i] = mrTable[labels[i]] * biasRow[i];
        applySpheres(mrRow, null, mrSpheres, y, z, x0, dx);
        const acc = mrAcc.row;
        for (let i = lo; i <= hi; i++) {
          const v = mrRow[i];
          if (v !== 0) {
            const s = sx[i];
            acc[s] += v * wx0[i];
            acc[s + 1] += v * wx1[i];
          }
        }
      }
      if (muAcc) {
        const acc = muAcc.row;
        for (let i = lo; i <= hi; i++) {
          const v = muTable[labels[i]];
          if (v !== 0) {
            const s = sx[i];
            acc[s] += v * wx0[i];
            acc[s + 1] += v * wx1[i];
          }
        }
      }
      if (wantFractions) {
        for (let i = lo; i <= hi; i++) {
          const l = labels[i];
          if (l === 0) continue;
          touched[l] = 1;
          const acc = fracAcc[l].row;
          const s = sx[i];
          acc[s] += wx0[i];
          acc[s + 1] += wx1[i];
          if (l === Label.GREY_MATTER) {
            const r = rmap[rbase + rbx[i]];
            touchedReg[r] = 1;
            const ra = regAcc[r].row;
            ra[s] += wx0[i];
            ra[s + 1] += wx1[i];
          }
        }
      }
      for (const a of petAcc) spreadRow(a, wy, j);
      if (mrAcc) spreadRow(mrAcc, wy, j);
      if (muAcc) spreadRow(muAcc, wy, j);
      for (let l = 0; l < LABEL_COUNT; l++) {
        if (touched[l]) {
          spreadRow(fracAcc[l], wy, j);
          touched[l] = 0;
        }
      }
      for (let r = 0; r < REGION_COUNT; r++) {
        if (touchedReg[r]) {
          spreadRow(regAcc[r], wy, j);
          touchedReg[r] = 0;
        }
      }
    }
    if (sliceUsed) { for (const a of all) spreadPlane(a, wz, k, ox, oy); }
  }

  const activity: Partial<Record<TracerName, Float32Array>> = {};
  tracers.forEach((t, n) => activity[t] = petAcc[n].out);
  let mr: Float32Array | undefined;
  let mrClean: Float32Array | undefined;
  if (mrAcc) {
    mrClean = mrAcc.out;
    const sd = mrOpt?.noiseSd ?? 0.01;
    if (sd > 0) {
      const rng = new Rng(subSeed(seed, "mr-noise"));
      mr = new Float32Array(nOut);
      for (let i = 0; i < nOut; i++) {
        const a = mrClean[i] + sd * rng.normal();
        const b = sd * rng.normal();
        mr[i] = Math.sqrt(a * a + b * b);
      }
    } else mr = mrClean;
  }
  let labelFractions: Float32Array[] | undefined;
  let labelsOut: Uint8Array | undefined;
  let brainFraction: Float32Array | undefined;
  let regionsOut: Uint8Array | undefined;
  if (wantFractions) {
    labelFractions = fracAcc.map((a) => a.out);
    const bg = labelFractions[0];
    for (let i = 0; i < nOut; i++) {
      let s = 0;
      for (let l = 1; l < LABEL_COUNT; l++) s += labelFractions[l][i];
      bg[i] = Math.max(0, 1 - s);
    }
    labelsOut = new Uint8Array(nOut);
    brainFraction = new Float32Array(nOut);
    regionsOut = new Uint8Array(nOut).fill(Region.NONE);
    for (let i = 0; i < nOut; i++) {
      let best = 0, bv = -1;
      for (let l = 0; l < LABEL_COUNT; l++) {
        if (labelFractions[l][i] > bv) {
          bv = labelFractions[l][i];
          best = l;
        }
      }
      labelsOut[i] = best;
      brainFraction[i] = labelFractions[Label.GREY_MATTER][i] +
        labelFractions[Label.WHITE_MATTER][i];
      let br: number = Region.NONE, brv = 0;
      for (let r = 0; r < REGION_COUNT; r++) {
        const v = regAcc[r].out[i];
        if (v > brv) {
          brv = v;
          br = r;
        }
      }
      regionsOut[i] = br;
    }
  }
  return {
    grid,
    seed,
    shiftMm,
    activity,
    studies,
    mr,
    mrClean,
    mu: muAcc?.out,
    labelFractions,
    labels: labelsOut,
    brainFraction,
    regions: regionsOut,
    lesions,
    blobs,
  };
}
