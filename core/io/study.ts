/**
 * A PET/MR study as a reconstruction reads it: projection data (petrel's sidecar `.npy`/`.nii`
 * or STIR Interfile `.hs`) that name the scanner, and images (NIfTI) whose affines place them in
 * mm. The image grid comes from the inputs, not from parameters:
 *
 * - the μ-map's grid is the PET grid (attenuation maps are made on the reconstruction grid); it
 *   must be axis-aligned and fit inside the scanner;
 * - without a μ-map the MR's grid is used when it is axis-aligned, else `options.grid`;
 * - an MR on another grid is resampled onto the PET grid (trilinear, in mm through both
 *   affines) and refused when it does not overlap the PET grid at all.
 *
 * Every problem is one {@linkcode StudyError} (a {@linkcode FormatError}: exit code 3 in the CLI)
 * naming the file and what would fit.
 *
 * @module
 */

import { centredGrid, type ImageGrid, sameGrid } from "../geometry/grid.ts";
import { affineOfGrid, resampleToGrid, sameAffine } from "../geometry/affine.ts";
import type { RingScanner } from "../geometry/scanner.ts";
import type { TofParameters } from "../geometry/tof.ts";
import { FormatError } from "./files.ts";
import { readInterfileSinogram } from "./interfile.ts";
import { type NiftiImage, readNifti } from "./nifti.ts";
import { readSinogram } from "./sinogram.ts";

/**
 * A study's inputs that do not fit together (a {@linkcode FormatError}, so CLI exit code 3).
 *
 * @example
 * ```ts
 * import { readStudy, StudyError } from "@petrel/petrel";
 * try {
 *   await readStudy({ prompts: "in/prompts.npy", additive: "in/additive.npy", mu: "in/mu.nii" });
 * } catch (e) {
 *   // e.g. additive sinogram on another scanner than the prompts
 *   if (e instanceof StudyError) console.error(e.message);
 *   else throw e;
 * }
 * ```
 */
export class StudyError extends FormatError {}

/** Paths of a study's files (absolute or relative to the working directory). */
export interface StudyFiles {
  /** Measured prompts: `.npy`/`.nii` with a petrel sidecar, or STIR Interfile `.hs`. */
  prompts: string;
  /** Additive expected counts (randoms + scatter), same scanner. */
  additive?: string;
  /** Multiplicative factors (normalisation / efficiencies; attenuation comes from `mu`). */
  multiplicative?: string;
  /** μ-map, NIfTI, 1/mm. Its grid is the PET grid. */
  mu?: string;
  /** MR, NIfTI, any grid that overlaps the PET grid. */
  mr?: string;
}

/** Options of {@linkcode readStudy}. */
export interface ReadStudyOptions {
  /** PET grid when neither `mu` nor an axis-aligned `mr` gives one. */
  grid?: ImageGrid;
  /** Label of the MR in messages (default the file's base name). */
  mrLabel?: string;
}

/** What {@linkcode readStudy} returns. */
export interface PetStudy {
  scanner: RingScanner;
  /** TOF parameters when the prompts are a TOF sinogram (`[radial, views, planes, tofBins]`). */
  tof?: TofParameters;
  /** Prompts `[radial, views, planes]` (TOF: `[…, tofBins]`). */
  prompts: Float32Array;
  additive?: Float32Array;
  multiplicative?: Float32Array;
  /** The PET grid. */
  grid: ImageGrid;
  /** Where the grid came from ("mu.nii", "mr.nii" or "options"). */
  gridSource: string;
  /** μ-map on the grid (1/mm). */
  mu?: Float32Array;
  /** MR on the grid (resampled when it came on another grid). */
  mr?: Float32Array;
  /** How the MR got onto the grid: "same grid", or "resampled (coverage …)". */
  mrNote?: string;
}

function base(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

function fmt(v: readonly number[], digits = 3): string {
  return v.map((x) => +x.toFixed(digits)).join(" × ");
}

/**
 * "128 × 128 × 5 voxels of 2.086 × 2.086 × 2.031 mm"
 *
 * @example
 * ```ts
 * import { centredGrid, describeGrid } from "@petrel/petrel";
 * describeGrid(centredGrid([128, 128, 5], [2.086, 2.086, 2.031])); // "128 × 128 × 5 voxels of 2.086 × 2.086 × 2.031 mm"
 * ```
 */
export function describeGrid(g: ImageGrid): string {
  return `${g.shape.join(" × ")} voxels of ${fmt(g.voxelSizeMm)} mm`;
}

async function readProjection(
  path: string,
): Promise<{ data: Float32Array; scanner: RingScanner; tof?: TofParameters }> {
  if (path.endsWith(".hs")) return await readInterfileSinogram(path);
  return await readSinogram(path);
}

function extentMm(im: { grid: ImageGrid }): string {
  const g = im.grid;
  return [0, 1, 2].map((a) => {
    const lo = g.originMm[a] - g.voxelSizeMm[a] / 2;
    const hi = lo + g.shape[a] * g.voxelSizeMm[a];
    return `${lo.toFixed(1)}…${hi.toFixed(1)}`;
  }).join(", ");
}

function volumeShape(im: NiftiImage, path: string): [number, number, number] {
  if (im.shape.length > 3 && im.shape.slice(3).some((n) => n > 1)) {
    throw new StudyError(
      `${path}: shape [${im.shape.join(", ")}] is not a single 3-D volume`,
    );
  }
  return [im.shape[0] ?? 1, im.shape[1] ?? 1, im.shape[2] ?? 1];
}

/**
 * Reads a study and puts every image on the PET grid (see the module notes for the rules).
 *
 * @example
 * ```ts
 * const s = await readStudy({ prompts: "sim/prompts.npy", mu: "sim/mu.nii", mr: "sim/mr.nii" });
 * console.log(describeGrid(s.grid), s.mrNote);
 * ```
 */
export async function readStudy(
  files: StudyFiles,
  options: ReadStudyOptions = {},
): Promise<PetStudy> {
  const prompts = await readProjection(files.prompts);
  const scanner = prompts.scanner;
  const tof = prompts.tof;
  const nonTof = scanner.sinogramShape.reduce((a, b) => a * b, 1);
  // TOF prompts take their terms per TOF bin or as one non-TOF sinogram (the TOF model spreads it)
  const sameScanner = async (path: string | undefined, what: string) => {
    if (!path) return undefined;
    const s = await readProjection(path);
    if (s.data.length !== prompts.data.length && !(tof && s.data.length === nonTof)) {
      throw new StudyError(
        `${path}: the ${what} have ${s.data.length} bins but ${
          base(files.prompts)
        } has ${prompts.data.length} (scanner "${scanner.spec.name}", [radial, views, planes] = [${scanner.sinogramShape}]${
          tof ? `, ${tof.bins} TOF bins: give ${nonTof} (non-TOF) or ${prompts.data.length}` : ""
        }); both must be on the same scanner`,
      );
    }
    return s.data;
  };
  const additive = await sameScanner(files.additive, "additive terms");
  const multiplicative = await sameScanner(files.multiplicative, "multiplicative factors")
    .then((m) => m && checkFactors(files.multiplicative!, m));
  const muIm = files.mu ? await readNifti(files.mu) : undefined;
  const mrIm = files.mr ? await readNifti(files.mr) : undefined;
  if (muIm) volumeShape(muIm, files.mu!);
  if (mrIm) volumeShape(mrIm, files.mr!);

  let grid: ImageGrid;
  let gridSource: string;
  if (muIm) {
    if (!muIm.axisAligned) {
      throw new StudyError(
        `${files.mu}: the μ-map's affine is rotated or flipped; it must be on the (axis-aligned) PET grid, so resample it onto one first`,
      );
    }
    grid = muIm.grid;
    gridSource = base(files.mu!);
  } else if (mrIm && mrIm.axisAligned) {
    grid = mrIm.grid;
    gridSource = base(files.mr!);
  } else if (options.grid) {
    grid = options.grid;
    gridSource = "options";
  } else {
    throw new StudyError(
      `${files.prompts}: no image gives the PET grid: add a μ-map (mu.nii) on the reconstruction grid${
        mrIm ? ` (${files.mr} is rotated, so it cannot define one)` : ""
      }`,
    );
  }
  try {
    scanner.checkGridFits(grid);
  } catch (e) {
    throw new StudyError(
      `${gridSource === "options" ? "the given grid" : gridSource} (${describeGrid(grid)}, z ${
        extentMm({ grid }).split(", ")[2]
      } mm) does not fit ${base(files.prompts)}'s scanner: ${(e as Error).message}`,
    );
  }

  let mr: Float32Array | undefined;
  let mrNote: string | undefined;
  if (mrIm) {
    const shape = volumeShape(mrIm, files.mr!);
    if (mrIm.axisAligned && sameGrid(mrIm.grid, grid)) {
      mr = mrIm.data;
      mrNote = "same grid";
    } else if (sameAffine(mrIm.affine, affineOfGrid(grid)) && sameGrid({ ...grid, shape }, grid)) {
      mr = mrIm.data;
      mrNote = "same grid";
    } else {
      const r = resampleToGrid({ data: mrIm.data, shape, affine: mrIm.affine }, grid);
      if (r.coverage === 0) {
        throw new StudyError(
          `${files.mr} does not overlap the PET grid: the MR spans x, y, z ${
            extentMm(mrIm)
          } mm, the PET grid (${gridSource}) ${
            extentMm({ grid })
          } mm; register the MR to the PET study (its affine must place it in the scanner's mm)`,
        );
      }
      mr = r.data;
      mrNote = `resampled from ${describeGrid({ ...mrIm.grid, shape })} (trilinear; ${
        (100 * r.coverage).toFixed(1)
      } % of the PET grid covered)`;
    }
  }
  return {
    scanner,
    ...(tof ? { tof } : {}),
    prompts: prompts.data,
    additive,
    multiplicative,
    grid,
    gridSource,
    mu: muIm?.data,
    mr,
    mrNote,
  };
}

/**
 * The file names a reconstruction looks for, in this order, for the normalisation (the
 * multiplicative factors besides attenuation): `petrel simulate` writes `norm.npy`.
 *
 * @example
 * ```ts
 * import { NORMALISATION_FILES } from "@petrel/petrel";
 * NORMALISATION_FILES[0]; // "norm.npy"
 * ```
 */
export const NORMALISATION_FILES: readonly string[] = ["norm.npy", "multiplicative.npy", "norm.hs"];

/**
 * The first of {@linkcode NORMALISATION_FILES} that exists, as `pathOf` places it (a recipe's
 * `ctx.inputPath`; a name it throws for counts as absent), or undefined when there is none.
 *
 * @example
 * ```ts
 * import { findNormalisation } from "@petrel/petrel";
 * const path = await findNormalisation((name) => `study/${name}`); // "study/norm.npy" if it exists
 * ```
 */
export async function findNormalisation(
  pathOf: (name: string) => string,
): Promise<string | undefined> {
  for (const name of NORMALISATION_FILES) {
    let path: string;
    try {
      path = pathOf(name);
    } catch {
      continue; // a run given single files rather than a folder: that name is not among them
    }
    if (await Deno.stat(path).then((st) => st.isFile, () => false)) return path;
  }
  return undefined;
}

/**
 * Reads normalisation factors (a non-TOF sinogram, `.npy` with sidecar or Interfile `.hs`) for
 * the prompts of `scanner` (read from `promptsPath`): one factor per non-TOF bin of that scanner,
 * each finite and ≥ 0 (0: a dead bin). A TOF model repeats them over its TOF bins; list mode
 * gathers them at each event's bin. Errors are {@linkcode StudyError}s naming the file.
 *
 * @example
 * ```ts
 * import { readNormalisation, readSinogram } from "@petrel/petrel";
 * const prompts = await readSinogram("study/prompts.npy");
 * const norm = await readNormalisation("study/norm.npy", prompts.scanner, "study/prompts.npy");
 * norm.length === prompts.scanner.sinogramShape.reduce((a, b) => a * b, 1); // true
 * ```
 */
export async function readNormalisation(
  path: string,
  scanner: RingScanner,
  promptsPath: string,
): Promise<Float32Array> {
  const { data } = await readProjection(path);
  const bins = scanner.sinogramShape.reduce((a, b) => a * b, 1);
  if (data.length !== bins) {
    throw new StudyError(
      `${path}: the normalisation factors have ${data.length} bins but ${
        base(promptsPath)
      }'s scanner "${scanner.spec.name}" has ${bins} non-TOF bins ([radial, views, planes] = [${scanner.sinogramShape}]); both must be on the same scanner`,
    );
  }
  return checkFactors(path, data);
}

/** Normalisation factors must be finite and ≥ 0 (0: a dead bin); else a StudyError naming the file. */
function checkFactors(path: string, data: Float32Array): Float32Array {
  for (let i = 0; i < data.length; i++) {
    if (!(data[i] >= 0) || !Number.isFinite(data[i])) {
      throw new StudyError(
        `${path}: normalisation factor ${i} is ${data[i]}; factors must be finite and ≥ 0`,
      );
    }
  }
  return data;
}

/** What {@linkcode reconGrid} returns. */
export interface ReconGrid {
  grid: ImageGrid;
  /** Where the grid came from: an image's file name, or "parameters". */
  source: string;
}

/**
 * The image grid of a reconstruction: the grid of an image among the inputs (the μ-map, whose
 * NIfTI affine places it in the scanner) when there is one, else `size`² voxels of `voxelMm` on
 * the scanner's rings (a scanner sidecar has no image grid). `size`/`voxelMm` given beside an
 * image must agree with it, so a parameter can never silently override a header. Errors are
 * {@linkcode StudyError}s naming the file.
 *
 * @example
 * ```ts
 * import { readNifti, readSinogram, reconGrid } from "@petrel/petrel";
 * const prompts = await readSinogram("study/prompts.npy");
 * const mu = await readNifti("study/mu.nii");
 * const { grid, source } = reconGrid(prompts.scanner, { image: { ...mu, path: "study/mu.nii" } });
 * ```
 */
export function reconGrid(
  scanner: RingScanner,
  options: {
    image?: { grid: ImageGrid; axisAligned: boolean; path: string };
    size?: number;
    voxelMm?: number;
    defaults?: { size: number; voxelMm: number };
  },
): ReconGrid {
  const im = options.image;
  let grid: ImageGrid;
  let source: string;
  if (im) {
    if (!im.axisAligned) {
      throw new StudyError(
        `${im.path}: the affine is rotated or flipped; the reconstruction grid must be axis-aligned, so resample the image onto one first`,
      );
    }
    grid = im.grid;
    source = base(im.path);
    const [nx, ny] = grid.shape;
    if (options.size !== undefined && (options.size !== nx || options.size !== ny)) {
      throw new StudyError(
        `${im.path} is on ${
          describeGrid(grid)
        }, but size=${options.size} was asked for; leave size out (the grid comes from the image) or resample the image`,
      );
    }
    const vx = options.voxelMm;
    if (
      vx !== undefined &&
      (Math.abs(vx - grid.voxelSizeMm[0]) > 1e-3 * vx ||
        Math.abs(vx - grid.voxelSizeMm[1]) > 1e-3 * vx)
    ) {
      throw new StudyError(
        `${im.path} is on ${
          describeGrid(grid)
        }, but voxelMm=${vx} was asked for; leave voxelMm out (the grid comes from the image) or resample the image`,
      );
    }
  } else {
    const d = options.defaults ?? { size: 32, voxelMm: 4 };
    const [size, voxelMm] = [options.size ?? d.size, options.voxelMm ?? d.voxelMm];
    grid = centredGrid([size, size, scanner.spec.rings], [
      voxelMm,
      voxelMm,
      scanner.spec.ringSpacingMm,
    ]);
    source = "parameters";
  }
  try {
    scanner.checkGridFits(grid);
  } catch (e) {
    throw new StudyError(
      `${source === "parameters" ? "the requested grid" : im!.path} (${
        describeGrid(grid)
      }) does not fit scanner "${scanner.spec.name}": ${(e as Error).message}`,
    );
  }
  return { grid, source };
}
