/**
 * Training sets of 2.5D stacks for the diffusion prior, in a format PyTorch reads without petrel
 * (`petrel-stacks-v1`, documented in `docs/data.md`):
 *
 * - `pet.npy`: float16, C order, shape (N, 3, H, W) — N stacks of 3 adjacent axial slices, W (x)
 *   fastest; each subject's true activity divided by its volume maximum (values in [0, 1]);
 * - `mr.npy`: float16 (N, 3, H, W), the matching T1-like MR divided by its volume maximum;
 * - `manifest.json`: `{format, count, height, width, voxel_mm, tracer, subjects, entries:
 *   [{subject, slice_centre, seed, pet_scale}], command}`;
 * - optionally (`fractions: true`) `fractions.npy`: uint8 (N, 4, 3, H, W), the partial-volume
 *   fractions × 255 of the label groups {@linkcode FRACTION_GROUPS} (CSF, grey matter, white
 *   matter, extra-cerebral tissue; background is the rest), which the prior's trainer needs for
 *   its tracer-like remaps; the manifest then lists them as `fraction_groups`.
 *
 * @module
 */

import { centredGrid, type ImageGrid } from "../geometry/grid.ts";
import { MMR_VOXEL_MM } from "../geometry/scanner.ts";
import { readNifti, writeNifti } from "../io/nifti.ts";
import { encodeNpy } from "../io/npy.ts";
import { writeFilesAtomic } from "../io/files.ts";
import { BRAINWEB_SHAPE, type LabelVolume, labelVolumeFromImage } from "./labels.ts";
import { type SimulatedStudy, type SimulateOptions, simulateStudy } from "./simulate.ts";
import { REGION_NAMES, type TracerName, TRACERS, type TracerStudy } from "./tracers.ts";

/**
 * Format tag of the stacks written by {@linkcode buildDataset}.
 *
 * @example
 * ```ts
 * import { STACKS_FORMAT } from "@petrel/petrel";
 * const m = JSON.parse(await Deno.readTextFile("data/stacks/manifest.json"));
 * if (m.format !== STACKS_FORMAT) throw new Error(`data/stacks is not ${STACKS_FORMAT}`);
 * ```
 */
export const STACKS_FORMAT = "petrel-stacks-v1";

/**
 * The BrainWeb subjects of the shared folder, training and held-out test split.
 *
 * @example
 * ```ts
 * import { BRAINWEB_TRAIN_SUBJECTS, buildDataset } from "@petrel/petrel";
 * // train on all but the validation subject "50"
 * await buildDataset({
 *   outDir: "data/stacks_no50",
 *   brainwebDir: "data/brainweb",
 *   subjects: BRAINWEB_TRAIN_SUBJECTS.filter((s) => s !== "50"),
 * });
 * ```
 */
export const BRAINWEB_TRAIN_SUBJECTS = [
  "05",
  "06",
  "18",
  "38",
  "42",
  "43",
  "44",
  "45",
  "46",
  "47",
  "48",
  "50",
] as const;
/**
 * Held-out BrainWeb test subjects (never in a training set).
 *
 * @example
 * ```ts
 * import { BRAINWEB_TEST_SUBJECTS, readLabelVolume } from "@petrel/petrel";
 * const test = await Promise.all(
 *   BRAINWEB_TEST_SUBJECTS.map((s) => readLabelVolume(`data/brainweb/subject${s}_crisp.nii.gz`)),
 * );
 * ```
 */
export const BRAINWEB_TEST_SUBJECTS = ["51", "52", "53"] as const;
/**
 * The validation subject the reconstruction constants are tuned on (`docs/results.md`). It is in
 * {@linkcode BRAINWEB_TRAIN_SUBJECTS} for the shipped prior; the next prior leaves it out
 * (`scripts/prior/train.py --exclude-subjects`), so that tuning is done on an unseen anatomy.
 *
 * @example
 * ```ts
 * import { BRAINWEB_VALIDATION_SUBJECTS, readLabelVolume } from "@petrel/petrel";
 * const [subject] = BRAINWEB_VALIDATION_SUBJECTS; // "50"
 * const vol = await readLabelVolume(`data/brainweb/subject${subject}_crisp.nii.gz`);
 * ```
 */
export const BRAINWEB_VALIDATION_SUBJECTS = ["50"] as const;

/**
 * Label groups of `fractions.npy` (in this order): BrainWeb labels summed into each group.
 * Background (label 0) is 1 − the sum.
 *
 * @example
 * ```ts
 * import { FRACTION_GROUPS } from "./dataset.ts";
 * console.log(FRACTION_GROUPS.map((g) => g.name)); // ["csf", "grey", "white", "extra"]
 * ```
 */
export const FRACTION_GROUPS: readonly { name: string; labels: readonly number[] }[] = [
  { name: "csf", labels: [1] },
  { name: "grey", labels: [2] },
  { name: "white", labels: [3] },
  { name: "extra", labels: [4, 5, 6, 7, 8, 9, 10, 11] },
];

/** One stack of the manifest. */
export interface StackEntry {
  subject: string;
  slice_centre: number;
  seed: number;
  pet_scale: number;
}

/** The manifest of a stacks directory. */
export interface StacksManifest {
  format: typeof STACKS_FORMAT;
  count: number;
  height: number;
  width: number;
  voxel_mm: [number, number, number];
  tracer: TracerName;
  subjects: string[];
  entries: StackEntry[];
  command: string;
  /** With `fractions.npy`: its groups, in order, and the scale (255 = fraction 1). */
  fraction_groups?: { name: string; labels: number[] }[];
  fraction_scale?: number;
}

/** Options of {@linkcode buildDataset}. */
export interface DatasetOptions {
  /** Output directory (created). */
  outDir: string;
  /** Folder of `subjectNN_crisp.nii.gz`. */
  brainwebDir: string;
  /** Subjects (two-digit ids), default {@linkcode BRAINWEB_TRAIN_SUBJECTS}. */
  subjects?: readonly string[];
  /** Tracer, default "fdg". */
  tracer?: TracerName;
  /** Transaxial size (default 128) and voxel size (default 2.086 mm, also the slice spacing). */
  size?: number;
  voxelMm?: number;
  /** Slices (default: enough to cover the 181 mm BrainWeb volume, 87). */
  slices?: number;
  /** Minimum grey + white matter fraction of the centre slice (default 0.05). */
  minBrainFraction?: number;
  /** Take every `stride`-th admissible centre slice (default 1). */
  stride?: number;
  /** Independent realisations per subject (default 1); seed = base + 100·r + subject number. */
  realisations?: number;
  /** Base seed (default 1000). */
  seed?: number;
  /** Random lesions per study (default 0). */
  lesions?: number;
  /** Also write `fractions.npy` (label-group fractions, see the module doc; default false). */
  fractions?: boolean;
  /** Required label-volume shape (default the BrainWeb shape; `null` accepts any). */
  expectShape?: readonly [number, number, number] | null;
  /** Command line recorded in the manifest. */
  command?: string;
  /** Progress messages (default: none). */
  log?: (msg: string) => void;
}

/**
 * Reads a BrainWeb-style label volume (`.nii` / `.nii.gz`, uint8) and validates it.
 *
 * @example
 * ```ts
 * import { BRAINWEB_SHAPE, readLabelVolume } from "@petrel/petrel";
 * // throws naming the file when it is not uint8 labels 0 … 11 of 362 × 434 × 362 voxels
 * const vol = await readLabelVolume("data/brainweb/subject04_crisp.nii.gz", { expectShape: BRAINWEB_SHAPE });
 * ```
 */
export async function readLabelVolume(
  path: string,
  options: { expectShape?: readonly [number, number, number] } = {},
): Promise<LabelVolume> {
  const img = await readNifti(path);
  return labelVolumeFromImage(img, { what: path, expectShape: options.expectShape });
}

/**
 * Reconstruction grid of the dataset: `size`² × `slices` voxels of `voxelMm`, centred.
 *
 * @example
 * ```ts
 * import { datasetGrid } from "@petrel/petrel";
 * const grid = datasetGrid(); // 128 × 128 × 87 voxels of 2.086 mm, centred
 * ```
 */
export function datasetGrid(size = 128, voxelMm = MMR_VOXEL_MM, slices = 87): ImageGrid {
  return centredGrid([size, size, slices], [voxelMm, voxelMm, voxelMm]);
}

/**
 * Admissible centre slices: both neighbours inside, brain fraction ≥ `min`, every `stride`-th.
 *
 * @example
 * ```ts
 * import { brainPhantomStudy, datasetGrid, stackCentres } from "@petrel/petrel";
 * const grid = datasetGrid(64, 4, 45);
 * const study = brainPhantomStudy({ grid, seed: 1 });
 * // every 3rd slice with ≥ 5 % grey + white matter, both neighbours inside the grid
 * const centres = stackCentres(study.brainFraction!, grid, { minBrainFraction: 0.05, stride: 3 });
 * ```
 */
export function stackCentres(
  brainFraction: Float32Array,
  grid: ImageGrid,
  options: { minBrainFraction?: number; stride?: number; offset?: number } = {},
): number[] {
  const [nx, ny, nz] = grid.shape;
  const min = options.minBrainFraction ?? 0.05;
  const ok: number[] = [];
  for (let k = 1; k < nz - 1; k++) {
    let s = 0;
    for (let t = k * nx * ny; t < (k + 1) * nx * ny; t++) s += brainFraction[t];
    if (s / (nx * ny) >= min) ok.push(k);
  }
  const stride = options.stride ?? 1;
  const offset = options.offset ?? 0;
  return ok.filter((_, n) => n % stride === offset % stride);
}

function volumeMax(v: Float32Array): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) if (v[i] > m) m = v[i];
  return m;
}

/**
 * Builds a stacks training set from BrainWeb label volumes (see the module doc for the format) and
 * returns its manifest. Files are written to temporary names and renamed.
 *
 * @example
 * ```ts
 * import { buildDataset } from "@petrel/petrel";
 * const manifest = await buildDataset({
 *   outDir: "data/stacks",
 *   brainwebDir: "data/brainweb", // subjectNN_crisp.nii.gz from fetchBrainwebSubject
 *   subjects: ["05", "06"],
 *   tracer: "fdg",
 *   stride: 3,
 *   fractions: true,
 *   log: console.log,
 * });
 * console.log(manifest.count, manifest.height, manifest.width); // N stacks of 3 × 128 × 128
 * ```
 */
export async function buildDataset(options: DatasetOptions): Promise<StacksManifest> {
  const subjects = [...(options.subjects ?? BRAINWEB_TRAIN_SUBJECTS)];
  const tracer = options.tracer ?? "fdg";
  if (!TRACERS.includes(tracer)) {
    throw new RangeError(`unknown tracer "${tracer}"; expected one of ${TRACERS.join(", ")}`);
  }
  for (const s of subjects) {
    if (!/^\d\d$/.test(s)) {
      throw new RangeError(`subject "${s}" is not a two-digit BrainWeb id (e.g. "05")`);
    }
  }
  const size = options.size ?? 128;
  const voxelMm = options.voxelMm ?? MMR_VOXEL_MM;
  const grid = datasetGrid(size, voxelMm, options.slices ?? 87);
  const [nx, ny] = grid.shape;
  const plane = nx * ny;
  const log = options.log ?? (() => {});
  const realisations = options.realisations ?? 1;
  const base = options.seed ?? 1000;
  const stride = options.stride ?? 1;
  const pets: Float32Array[] = [];
  const mrs: Float32Array[] = [];
  const fracs: Uint8Array[] = [];
  const nGroups = FRACTION_GROUPS.length;
  const entries: StackEntry[] = [];
  for (const subject of subjects) {
    const path = `${options.brainwebDir}/subject${subject}_crisp.nii.gz`;
    const t0 = performance.now();
    const expectShape = options.expectShape === null
      ? undefined
      : options.expectShape ?? BRAINWEB_SHAPE;
    const vol = await readLabelVolume(path, { expectShape });
    const t1 = performance.now();
    for (let r = 0; r < realisations; r++) {
      const seed = base + 100 * r + Number(subject);
      const simOpts: SimulateOptions = {
        grid,
        tracers: [tracer],
        seed,
        placement: "head",
        mu: false,
        lesions: options.lesions ?? 0,
      };
      const study = simulateStudy(vol, simOpts);
      const pet = study.activity[tracer]!;
      const mr = study.mr!;
      const petScale = volumeMax(pet);
      const mrScale = volumeMax(mr);
      const centres = stackCentres(study.brainFraction!, grid, {
        minBrainFraction: options.minBrainFraction,
        stride,
        offset: r,
      });
      for (const c of centres) {
        const p = new Float32Array(3 * plane);
        const m = new Float32Array(3 * plane);
        for (let d = 0; d < 3; d++) {
          const src = (c - 1 + d) * plane;
          for (let t = 0; t < plane; t++) {
            p[d * plane + t] = pet[src + t] / petScale;
            m[d * plane + t] = mr[src + t] / mrScale;
          }
        }
        pets.push(p);
        mrs.push(m);
        if (options.fractions) {
          // (group, slice, y, x), fractions quantised to 1/255
          const f = new Uint8Array(nGroups * 3 * plane);
          const lf = study.labelFractions!;
          FRACTION_GROUPS.forEach((g, gi) => {
            for (let d = 0; d < 3; d++) {
              const src = (c - 1 + d) * plane;
              const dst = (gi * 3 + d) * plane;
              for (let t = 0; t < plane; t++) {
                let v = 0;
                for (const l of g.labels) v += lf[l][src + t];
                f[dst + t] = Math.round(255 * Math.min(1, Math.max(0, v)));
              }
            }
          });
          fracs.push(f);
        }
        entries.push({ subject, slice_centre: c, seed, pet_scale: petScale });
      }
      log(
        `subject ${subject} seed ${seed}: ${centres.length} stacks (read ${
          ((t1 - t0) / 1000).toFixed(1)
        } s, simulate ${((performance.now() - t1) / 1000).toFixed(1)} s)`,
      );
    }
  }
  const n = entries.length;
  const join = (parts: Float32Array[]) => {
    const out = new Float32Array(n * 3 * plane);
    parts.forEach((p, i) => out.set(p, i * 3 * plane));
    return out;
  };
  const joinBytes = (parts: Uint8Array[], len: number) => {
    const out = new Uint8Array(n * len);
    parts.forEach((p, i) => out.set(p, i * len));
    return out;
  };
  // petrel shapes are fastest first: [W, H, 3, N] → NumPy (N, 3, H, W).
  const shape = [nx, ny, 3, n];
  const fracShape = [nx, ny, 3, nGroups, n];
  const manifest: StacksManifest = {
    format: STACKS_FORMAT,
    count: n,
    height: ny,
    width: nx,
    voxel_mm: [voxelMm, voxelMm, voxelMm],
    tracer,
    subjects,
    entries,
    command: options.command ?? "",
    ...(options.fractions
      ? {
        fraction_groups: FRACTION_GROUPS.map((g) => ({ name: g.name, labels: [...g.labels] })),
        fraction_scale: 255,
      }
      : {}),
  };
  await Deno.mkdir(options.outDir, { recursive: true });
  await writeFilesAtomic([
    {
      path: `${options.outDir}/pet.npy`,
      data: encodeNpy({ data: join(pets), shape }, { dtype: "float16" }),
    },
    {
      path: `${options.outDir}/mr.npy`,
      data: encodeNpy({ data: join(mrs), shape }, { dtype: "float16" }),
    },
    ...(options.fractions
      ? [{
        path: `${options.outDir}/fractions.npy`,
        data: encodeNpy({ data: joinBytes(fracs, nGroups * 3 * plane), shape: fracShape }, {
          dtype: "uint8",
        }),
      }]
      : []),
  ]);
  // The manifest last: its presence means the arrays are complete.
  await writeFilesAtomic([
    { path: `${options.outDir}/manifest.json`, data: JSON.stringify(manifest, null, 1) + "\n" },
  ]);
  return manifest;
}

/**
 * Command-line entry of the dataset builder (`scripts/build_dataset.ts`):
 * `--out DIR --brainweb DIR --subjects 05,06,… --tracer fdg --stride 3 --realisations 1
 * --seed 1000 --lesions 0 [--fractions] --min-brain 0.05 --size 128 --voxel 2.086 --slices 87`.
 *
 * @example
 * ```ts
 * import { datasetCli } from "@petrel/petrel";
 * await datasetCli(["--out", "data/stacks", "--brainweb", "data/brainweb", "--subjects", "05,06", "--stride", "3"]);
 * ```
 */
export async function datasetCli(args: readonly string[]): Promise<StacksManifest> {
  const { Command } = await import("commander");
  const program = new Command("build_dataset")
    .description("Write 2.5D PET/MR training stacks (petrel-stacks-v1) from BrainWeb label volumes")
    .requiredOption("--out <dir>", "output directory")
    .option("--brainweb <dir>", "folder of subjectNN_crisp.nii.gz", "../shared/data/brainweb")
    .option(
      "--subjects <list>",
      "comma-separated two-digit subject ids",
      BRAINWEB_TRAIN_SUBJECTS.join(","),
    )
    .option("--tracer <name>", `tracer (${TRACERS.join(", ")})`, "fdg")
    .option("--stride <n>", "take every n-th admissible centre slice", "1")
    .option("--realisations <n>", "independent studies per subject", "1")
    .option("--seed <n>", "base seed", "1000")
    .option("--lesions <n>", "random lesions per study", "0")
    .option("--fractions", "also write fractions.npy (label-group fractions, for the trainer)")
    .option("--min-brain <f>", "minimum grey+white fraction of the centre slice", "0.05")
    .option("--size <n>", "transaxial voxels", "128")
    .option("--voxel <mm>", "voxel size in mm", String(MMR_VOXEL_MM))
    .option("--slices <n>", "axial slices of the grid", "87")
    .exitOverride();
  program.parse([...args], { from: "user" });
  const o = program.opts();
  const int = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      throw new RangeError(`--${name} must be an integer ≥ ${min}, got "${v}"`);
    }
    return n;
  };
  const subjects = String(o.subjects).split(",").map((s) => s.trim()).filter((s) => s !== "");
  const held = subjects.filter((s) => (BRAINWEB_TEST_SUBJECTS as readonly string[]).includes(s));
  const log = (m: string) => console.error(m);
  if (held.length > 0) log(`warning: held-out test subjects in the list: ${held.join(", ")}`);
  const val = subjects.filter((s) =>
    (BRAINWEB_VALIDATION_SUBJECTS as readonly string[]).includes(s)
  );
  if (val.length > 0) {
    log(
      `note: validation subject ${val.join(", ")} in the list (the trainer excludes it by default)`,
    );
  }
  return await buildDataset({
    outDir: o.out,
    brainwebDir: o.brainweb,
    subjects,
    tracer: o.tracer as TracerName,
    stride: int("stride", o.stride, 1),
    realisations: int("realisations", o.realisations, 1),
    seed: int("seed", o.seed, 0),
    lesions: int("lesions", o.lesions, 0),
    fractions: o.fractions === true,
    minBrainFraction: Number(o.minBrain),
    size: int("size", o.size, 8),
    voxelMm: Number(o.voxel),
    slices: int("slices", o.slices, 3),
    command: ["scripts/build_dataset.ts", ...args].join(" "),
    log,
  });
}

/**
 * Writes a simulated study as NIfTI volumes into `dir`: `activity_<tracer>.nii.gz`,
 * `mr.nii.gz`, `mu_per_mm.nii.gz`, `labels.nii.gz` (uint8 majority labels),
 * `regions.nii.gz` (uint8), `brain_fraction.nii.gz`, and `study.json` (seed, shift, per-tracer
 * parameters, lesions, blobs). Returns the paths written.
 *
 * @example
 * ```ts
 * import { brainPhantomStudy, writeStudy } from "@petrel/petrel";
 * const study = brainPhantomStudy({ seed: 1, dims: 2, tracers: ["fdg", "amyloid_pos"] });
 * const paths = await writeStudy("out/phantom", study); // activity_fdg.nii.gz, mr.nii.gz, …, study.json
 * ```
 */
export async function writeStudy(
  dir: string,
  study: SimulatedStudy,
  meta: Record<string, unknown> = {},
): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const grid = study.grid;
  const paths: string[] = [];
  const put = async (name: string, data: ArrayLike<number> | undefined, uint8 = false) => {
    if (!data) return;
    const path = `${dir}/${name}.nii.gz`;
    await writeNifti(path, { data, grid }, uint8 ? { dtype: "uint8" } : {});
    paths.push(path);
  };
  for (const [t, v] of Object.entries(study.activity)) {
    await put(`activity_${t}`, v as Float32Array);
  }
  await put("mr", study.mr);
  await put("mu_per_mm", study.mu);
  await put("labels", study.labels, true);
  await put("regions", study.regions, true);
  await put("brain_fraction", study.brainFraction);
  const info = {
    ...meta,
    grid,
    seed: study.seed,
    shiftMm: study.shiftMm,
    regions: REGION_NAMES,
    studies: Object.fromEntries(
      Object.entries(study.studies).map(([t, s]) => {
        const st = s as TracerStudy;
        return [t, {
          globalScale: st.globalScale,
          regionFactors: st.regionFactors,
          labelValues: Array.from(st.table.subarray(8 * 16, 8 * 16 + 12)),
        }];
      }),
    ),
    lesions: study.lesions,
    blobs: study.blobs,
  };
  const path = `${dir}/study.json`;
  await writeFilesAtomic([{ path, data: JSON.stringify(info, null, 1) + "\n" }]);
  paths.push(path);
  return paths;
}
