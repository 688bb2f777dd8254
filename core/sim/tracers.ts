/**
 * Tracer, MR and μ-map models on BrainWeb labels, procedural brain regions (lobes from
 * coordinates), and seeded per-study variability.
 *
 * Activity units are arbitrary (FDG: grey matter 128, white matter 32, as in the usual BrainWeb
 * recipe); the μ-map is in 1/mm at 511 keV (bone 0.013 /mm = 0.13 /cm, soft tissue 0.00975 /mm).
 *
 * @module
 */

import { Label, LABEL_COUNT } from "./labels.ts";
import { Rng } from "../random.ts";

/**
 * Tracers the simulator knows.
 *
 * @example
 * ```ts
 * import { brainPhantomStudy, TRACERS } from "@petrel/petrel";
 * const study = brainPhantomStudy({ dims: 2, tracers: TRACERS }); // fdg, amyloid_neg, amyloid_pos, tau
 * ```
 */
export const TRACERS = ["fdg", "amyloid_neg", "amyloid_pos", "tau"] as const;
/** A tracer name: FDG, amyloid-negative, amyloid-positive or a tau-like focal tracer. */
export type TracerName = (typeof TRACERS)[number];

/**
 * Procedural brain regions, assigned to voxels from coordinates relative to the brain's bounding
 * box (see {@linkcode regionOf}); index 8 ("none") is outside the brain box.
 *
 * @example
 * ```ts
 * import { brainPhantomStudy, REGION_NAMES } from "@petrel/petrel";
 * const study = brainPhantomStudy({ dims: 2 });
 * const voxelsPerRegion = REGION_NAMES.map((name, r) => [name, study.regions!.filter((v) => v === r).length]);
 * ```
 */
export const REGION_NAMES: readonly string[] = [
  "frontal",
  "parietal",
  "temporal",
  "occipital",
  "precuneus_pcc",
  "medial_temporal",
  "deep_gm",
  "cerebellum",
  "none",
];
/**
 * Number of region codes (including "none").
 *
 * @example
 * ```ts
 * import { nominalTracerStudy, REGION_COUNT, TABLE_STRIDE } from "@petrel/petrel";
 * const t = nominalTracerStudy("fdg");
 * for (let r = 0; r < REGION_COUNT; r++) console.log(r, t.table[r * TABLE_STRIDE + 2]); // grey matter
 * ```
 */
export const REGION_COUNT = 9;
/**
 * Region codes by name.
 *
 * @example
 * ```ts
 * import { brainPhantomStudy, Region } from "@petrel/petrel";
 * const study = brainPhantomStudy({ tracers: ["tau"] }); // 3-D: the 2-D slice misses the temporal lobes
 * const mtl = study.regions!.map((r) => (r === Region.MEDIAL_TEMPORAL ? 1 : 0)); // an ROI mask
 * ```
 */
export const Region = {
  FRONTAL: 0,
  PARIETAL: 1,
  TEMPORAL: 2,
  OCCIPITAL: 3,
  PRECUNEUS_PCC: 4,
  MEDIAL_TEMPORAL: 5,
  DEEP_GM: 6,
  CEREBELLUM: 7,
  NONE: 8,
} as const;

/**
 * Region of a point given in brain-normalised coordinates: `xn` (left→right) and `yn`
 * (posterior→anterior) in [−1, 1] across the brain's bounding box, `dzn` = depth below the vertex
 * divided by the half antero-posterior length of the brain (≈ 0 at the top, ≈ 1.2 at the base of
 * the temporal lobes).
 *
 * @example
 * ```ts
 * import { Region, regionOf } from "@petrel/petrel";
 * regionOf(0, 0.8, 0.2) === Region.FRONTAL; // true: anterior, near the vertex
 * regionOf(0, -0.9, 0.5) === Region.OCCIPITAL; // true
 * ```
 */
export function regionOf(xn: number, yn: number, dzn: number): number {
  const ax = Math.abs(xn);
  if (ax > 1.05 || yn < -1.05 || yn > 1.05 || dzn < -0.05 || dzn > 2) return Region.NONE;
  if (dzn > 1.1 && yn < -0.2) return Region.CEREBELLUM;
  if (ax < 0.3 && yn > -0.35 && yn < 0.35 && dzn > 0.45 && dzn < 0.95) return Region.DEEP_GM;
  if (ax > 0.15 && ax < 0.5 && yn > -0.4 && yn < 0.2 && dzn > 0.9 && dzn < 1.3) {
    return Region.MEDIAL_TEMPORAL;
  }
  if (dzn > 0.75 && ax >= 0.45 && yn > -0.6 && yn < 0.45) return Region.TEMPORAL;
  if (dzn > 0.95 && yn > -0.6 && yn < 0.5) return Region.TEMPORAL;
  if (yn < -0.62) return Region.OCCIPITAL;
  if (ax < 0.2 && yn < -0.05 && dzn < 0.8) return Region.PRECUNEUS_PCC;
  if (yn > 0.05) return Region.FRONTAL;
  return dzn < 0.9 ? Region.PARIETAL : Region.TEMPORAL;
}

/** A tracer's nominal uptake per label, its grey-matter factors per region and its variability. */
export interface TracerModel {
  readonly name: TracerName;
  /** Human-readable description. */
  readonly description: string;
  /** Nominal activity per label (index = label). */
  readonly labelValues: readonly number[];
  /** Grey-matter multiplier per region (index = region code), before variability. */
  readonly regionFactors: readonly number[];
  /** Standard deviation of the per-region grey-matter factor (relative, e.g. 0.05 = ±5 %). */
  readonly regionSd: number;
  /**
   * Regions raised one by one (amyloid-positive): each gets a factor uniform in `[lo, hi]`,
   * drawn per study.
   */
  readonly raised?: { regions: readonly number[]; lo: number; hi: number };
  /** Focal grey-matter uptake blobs (tau-like): count range, radius range (mm), factor range. */
  readonly blobs?: {
    count: [number, number];
    radiusMm: [number, number];
    factor: [number, number];
    regions: readonly number[];
  };
}

const L = Label;
function perLabel(values: Partial<Record<number, number>>): number[] {
  const out = new Array<number>(LABEL_COUNT).fill(0);
  for (const [k, v] of Object.entries(values)) out[Number(k)] = v as number;
  return out;
}
const ONES = new Array<number>(REGION_COUNT).fill(1);

/**
 * Nominal amyloid uptake per label, one table for both amyloid models: negative and positive
 * studies differ only in their grey-matter region factors (`regionFactors`, `raised`), so their
 * per-label baselines must not drift apart.
 */
const AMYLOID_LABEL_VALUES: readonly number[] = perLabel({
  [L.CSF]: 3,
  [L.GREY_MATTER]: 40,
  [L.WHITE_MATTER]: 72,
  [L.FAT]: 8,
  [L.MUSCLE]: 14,
  [L.MUSCLE_SKIN]: 16,
  [L.SKULL]: 4,
  [L.VESSELS]: 30,
  [L.AROUND_FAT]: 8,
  [L.DURA]: 16,
  [L.MARROW]: 10,
});

/**
 * The tracer models (nominal values; per-study variability is added by
 * {@linkcode sampleTracerStudy}).
 *
 * @example
 * ```ts
 * import { Label, TRACER_MODELS } from "@petrel/petrel";
 * const fdg = TRACER_MODELS.fdg;
 * fdg.labelValues[Label.GREY_MATTER] / fdg.labelValues[Label.WHITE_MATTER]; // 4
 * ```
 */
export const TRACER_MODELS: Readonly<Record<TracerName, TracerModel>> = {
  fdg: {
    name: "fdg",
    description: "FDG: grey matter 4× white matter, low scalp/muscle, CSF ≈ 0",
    labelValues: perLabel({
      [L.CSF]: 0,
      [L.GREY_MATTER]: 128,
      [L.WHITE_MATTER]: 32,
      [L.FAT]: 8,
      [L.MUSCLE]: 16,
      [L.MUSCLE_SKIN]: 16,
      [L.SKULL]: 2,
      [L.VESSELS]: 40,
      [L.AROUND_FAT]: 8,
      [L.DURA]: 16,
      [L.MARROW]: 8,
    }),
    // Deep grey nuclei and cerebellum a little below cortex; occipital a little above.
    regionFactors: [1, 1, 0.95, 1.08, 1.05, 0.8, 0.95, 0.85, 1],
    regionSd: 0.05,
  },
  amyloid_neg: {
    name: "amyloid_neg",
    description: "amyloid-negative: non-specific white-matter binding, white matter above grey",
    labelValues: AMYLOID_LABEL_VALUES,
    regionFactors: [1, 1, 1, 1, 1, 1, 1.1, 1, 1],
    regionSd: 0.04,
  },
  amyloid_pos: {
    name: "amyloid_pos",
    description:
      "amyloid-positive: cortical grey matter raised region by region (cerebellum spared)",
    labelValues: AMYLOID_LABEL_VALUES,
    regionFactors: ONES,
    regionSd: 0.04,
    raised: {
      regions: [
        Region.FRONTAL,
        Region.PARIETAL,
        Region.TEMPORAL,
        Region.OCCIPITAL,
        Region.PRECUNEUS_PCC,
        Region.DEEP_GM,
      ],
      lo: 1.4,
      hi: 2.3,
    },
  },
  tau: {
    name: "tau",
    description:
      "tau-like: low background, medial/inferior temporal uptake and focal cortical blobs",
    labelValues: perLabel({
      [L.CSF]: 2,
      [L.GREY_MATTER]: 36,
      [L.WHITE_MATTER]: 28,
      [L.FAT]: 6,
      [L.MUSCLE]: 12,
      [L.MUSCLE_SKIN]: 14,
      [L.SKULL]: 6,
      [L.VESSELS]: 24,
      [L.AROUND_FAT]: 6,
      [L.DURA]: 14,
      [L.MARROW]: 16,
    }),
    regionFactors: [1, 1.2, 1.5, 1.05, 1.2, 2.4, 1.1, 0.9, 1],
    regionSd: 0.08,
    blobs: {
      count: [3, 7],
      radiusMm: [4, 9],
      factor: [1.8, 3.5],
      regions: [Region.TEMPORAL, Region.MEDIAL_TEMPORAL, Region.PARIETAL, Region.PRECUNEUS_PCC],
    },
  },
};

/**
 * T1-weighted-like MR intensity per label (WM > GM > CSF; fat bright, bone dark).
 *
 * @example
 * ```ts
 * import { Label, MR_T1_VALUES } from "@petrel/petrel";
 * MR_T1_VALUES[Label.WHITE_MATTER] > MR_T1_VALUES[Label.GREY_MATTER]; // true: T1 contrast
 * ```
 */
export const MR_T1_VALUES: readonly number[] = perLabel({
  [L.CSF]: 0.12,
  [L.GREY_MATTER]: 0.55,
  [L.WHITE_MATTER]: 0.85,
  [L.FAT]: 1.0,
  [L.MUSCLE]: 0.42,
  [L.MUSCLE_SKIN]: 0.5,
  [L.SKULL]: 0.06,
  [L.VESSELS]: 0.3,
  [L.AROUND_FAT]: 0.8,
  [L.DURA]: 0.3,
  [L.MARROW]: 0.7,
});

/**
 * μ at 511 keV per label in 1/mm: bone (skull, marrow) 0.013, other tissue 0.00975, air 0.
 *
 * @example
 * ```ts
 * import { brainPhantomLabels, MU_VALUES_PER_MM } from "@petrel/petrel";
 * const { volume } = brainPhantomLabels({ dims: 2 });
 * const mu = Float32Array.from(volume.labels, (l) => MU_VALUES_PER_MM[l]); // 1/mm on the label grid
 * ```
 */
export const MU_VALUES_PER_MM: readonly number[] = perLabel({
  [L.CSF]: 0.00975,
  [L.GREY_MATTER]: 0.00975,
  [L.WHITE_MATTER]: 0.00975,
  [L.FAT]: 0.00975,
  [L.MUSCLE]: 0.00975,
  [L.MUSCLE_SKIN]: 0.00975,
  [L.SKULL]: 0.013,
  [L.VESSELS]: 0.00975,
  [L.AROUND_FAT]: 0.00975,
  [L.DURA]: 0.00975,
  [L.MARROW]: 0.013,
});

/** Sampled per-study tracer parameters. */
export interface TracerStudy {
  readonly tracer: TracerName;
  /** Global scale factor of the study. */
  readonly globalScale: number;
  /**
   * Activity per (region, label): `table[region * 16 + label]` (hard region borders; row 8,
   * "none", holds the region-free values). `simulateStudy` uses row 8 for every label
   * and blends `regionFactors` smoothly across region borders for grey matter.
   */
  readonly table: Float32Array;
  /** Grey-matter factor per region actually used. */
  readonly regionFactors: number[];
}

/** Variability options (all relative standard deviations; 0 switches a term off). */
export interface VariabilityOptions {
  /** Global scale sd (log-normal), default 0.15. */
  globalSd?: number;
  /** Per-label sd, default 0.06. */
  labelSd?: number;
  /** Multiply the tracer's per-region sd by this, default 1. */
  regionSdScale?: number;
}

/**
 * Row stride of {@linkcode TracerStudy.table}.
 *
 * @example
 * ```ts
 * import { Label, nominalTracerStudy, Region, TABLE_STRIDE } from "@petrel/petrel";
 * const { table } = nominalTracerStudy("amyloid_neg");
 * table[Region.FRONTAL * TABLE_STRIDE + Label.GREY_MATTER]; // frontal grey-matter activity
 * ```
 */
export const TABLE_STRIDE = 16;

/**
 * Draws the per-study tracer parameters (global scale, per-label and per-region factors, raised
 * regions) from `rng`. The same generator state gives the same study.
 *
 * @example
 * ```ts
 * import { Rng, sampleTracerStudy, subSeed } from "@petrel/petrel";
 * const rng = new Rng(subSeed(42, "tracer"));
 * const s = sampleTracerStudy("amyloid_pos", rng, { globalSd: 0.1 });
 * console.log(s.globalScale, s.regionFactors); // the raised regions differ per study
 * ```
 */
export function sampleTracerStudy(
  tracer: TracerName,
  rng: Rng,
  options: VariabilityOptions = {},
): TracerStudy {
  const model = TRACER_MODELS[tracer];
  if (!model) {
    throw new RangeError(`unknown tracer "${tracer}"; expected one of ${TRACERS.join(", ")}`);
  }
  const globalSd = options.globalSd ?? 0.15;
  const labelSd = options.labelSd ?? 0.06;
  const regionSd = model.regionSd * (options.regionSdScale ?? 1);
  const globalScale = Math.exp(globalSd * rng.normal());
  const labelF = model.labelValues.map((v) => v * Math.max(0.5, 1 + labelSd * rng.normal()));
  const regionFactors = model.regionFactors.map((f, r) =>
    r === Region.NONE ? 1 : f * Math.max(0.5, 1 + regionSd * rng.normal())
  );
  if (model.raised) {
    for (const r of model.raised.regions) {
      const u = rng.uniform();
      regionFactors[r] *= model.raised.lo + u * (model.raised.hi - model.raised.lo);
    }
  }
  const table = new Float32Array(REGION_COUNT * TABLE_STRIDE);
  for (let r = 0; r < REGION_COUNT; r++) {
    for (let l = 0; l < LABEL_COUNT; l++) {
      const f = l === Label.GREY_MATTER ? regionFactors[r] : 1;
      table[r * TABLE_STRIDE + l] = globalScale * labelF[l] * f;
    }
  }
  return { tracer, globalScale, table, regionFactors };
}

/**
 * A nominal tracer table without variability (for tests and figures).
 *
 * @example
 * ```ts
 * import { nominalTracerStudy } from "@petrel/petrel";
 * const { globalScale, regionFactors } = nominalTracerStudy("fdg"); // 1 and the model's factors
 * ```
 */
export function nominalTracerStudy(tracer: TracerName): TracerStudy {
  const rng = new Rng(0);
  return sampleTracerStudy(tracer, rng, { globalSd: 0, labelSd: 0, regionSdScale: 0 });
}
