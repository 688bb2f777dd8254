/**
 * Whole volumes for DDIP: the 2.5D prior sees 3 adjacent slices, so a volume of `nz` slices is
 * covered by overlapping 3-slice stacks, each reconstructed from its own three direct-plane (2-D)
 * sinograms (a 3-ring scanner with maximum ring difference 0 whose ring spacing equals the slice
 * thickness, so the planes sit on the slice centres), and the stacks' slices are combined.
 *
 * Choices (documented in docs/ddip.md):
 * - Stack centres `1, 1 + stride, …` and always `nz − 2`; with stride 1 every interior slice is the
 *   centre of one stack; the default stride 2 needs half the stacks. `combine: "centre"` (default) takes each slice from the
 *   stack centred on it (the two end slices from the first/last stack), `"average"` averages every
 *   stack covering the slice.
 * - The intensity scale is chosen once for the volume (the prior was trained on PET divided by
 *   its volume max), from the MLEM initialisations of all stacks.
 * - `loraScope: "stack"` (default) starts every stack from the base model (stacks are independent
 *   and their results do not depend on the processing order); `"volume"` carries one LoRA state
 *   from stack to stack in slice order (each stack starts where the previous one ended).
 * - Each stack's seed is derived from the volume seed and the stack centre.
 *
 * @module
 */

import type { GpuContext } from "../../gpu/context.ts";
import { centredGrid, type ImageGrid } from "../../geometry/grid.ts";
import { RingScanner } from "../../geometry/scanner.ts";
import { type ForwardModel, ringForwardModel } from "../../model/forward_model.ts";
import { PoissonLikelihood } from "../../model/likelihood.ts";
import type { ScorePrior } from "../../diffusion/prior.ts";
import { subSeed } from "../../random.ts";
import { ddipConfig } from "./config.ts";
import { autoScale } from "./scale.ts";
import {
  addTimings,
  ddipStack,
  type DdipStackOptions,
  type DdipStackResult,
  type DdipTimings,
  mlemInit,
  zeroDdipTimings,
} from "./stack.ts";

/**
 * A scanner with the transaxial geometry of `base` and `slices` rings spaced `sliceMm` apart, with
 * maximum ring difference 0: its sinogram is `slices` direct 2-D planes on the slice centres of a
 * centred grid with that slice thickness.
 *
 * @example
 * ```ts
 * import { directPlaneScanner, MMR_VOXEL_MM, mmrLike2d } from "@petrel/petrel";
 * // 3 direct planes on the centres of 2.086 mm slices (what one DDIP stack sees)
 * const stackScanner = directPlaneScanner(mmrLike2d(), 3, MMR_VOXEL_MM);
 * stackScanner.sinogramShape; // [129, 224, 3]
 * const grid = stackScanner.imageGrid(128, MMR_VOXEL_MM); // 128 × 128 × 3, slices on the planes
 * ```
 */
export function directPlaneScanner(
  base: RingScanner,
  slices: number,
  sliceMm: number,
): RingScanner {
  return new RingScanner({
    ...base.spec,
    name: `${base.spec.name} (${slices} direct planes, ${sliceMm} mm)`,
    rings: slices,
    ringSpacingMm: sliceMm,
    maxRingDifference: 0,
  });
}

/**
 * A volume measured as direct 2-D planes, one per slice (sinograms `[radial, views, nz]`).
 *
 * @example
 * ```ts
 * import { centredGrid, type DirectPlaneVolume, MMR_VOXEL_MM, mmrLike2d } from "@petrel/petrel";
 * const nz = 40;
 * const grid = centredGrid([128, 128, nz], [MMR_VOXEL_MM, MMR_VOXEL_MM, MMR_VOXEL_MM]);
 * const vol: DirectPlaneVolume = {
 *   grid,
 *   scanner: mmrLike2d(), // its transaxial geometry: 224 views × 129 radial bins per slice
 *   counts: new Float32Array(129 * 224 * nz), // measured prompts, one direct plane per slice
 *   mu: new Float32Array(128 * 128 * nz), // 1/mm on the grid
 *   mr: new Float32Array(128 * 128 * nz), // MR on the grid divided by its max
 *   resolutionFwhmMm: [4.5, 4.5, 0],
 * };
 * ```
 */
export interface DirectPlaneVolume {
  /** Image grid `[nx, ny, nz]`, centred. */
  grid: ImageGrid;
  /** Transaxial scanner geometry (its rings are ignored). */
  scanner: RingScanner;
  /** Measured counts `[radial, views, nz]`. */
  counts: Float32Array;
  /** Additive expected counts (randoms + scatter), same layout. */
  additive?: Float32Array;
  /** Normalisation / efficiency factors, same layout (attenuation comes from `mu`). */
  multiplicative?: Float32Array;
  /** μ-map on the grid, 1/mm. */
  mu?: Float32Array;
  /** MR on the grid, on the prior's scale (divided by its volume max). */
  mr: Float32Array;
  /**
   * Ordered subsets of each stack's forward model (default 1): used by the baselines, and by the
   * x-step only with `xStepOrderedSubsets` (otherwise it uses all data per iteration).
   */
  subsets?: number;
  /** Image-space resolution model FWHM (mm) of the forward model (default none). */
  resolutionFwhmMm?: readonly [number, number, number];
}

/** One stack's forward model, likelihood and inputs (free with `destroy`). */
export interface StackSetup {
  model: ForwardModel;
  likelihood: PoissonLikelihood;
  grid: ImageGrid;
  mr: Float32Array;
  /** First slice of the stack in the volume. */
  first: number;
  destroy(): void;
}

/**
 * Planes `first … first + count − 1` of data whose planes hold `planeSize` values each (image
 * slices or sinogram planes).
 *
 * @example
 * ```ts
 * import { stackSlab } from "@petrel/petrel";
 * const mr = new Float32Array(128 * 128 * 40); // a volume, x fastest
 * const mrStack = stackSlab(mr, 128 * 128, 19); // slices 19, 20, 21: the stack centred on 20
 * const sino = new Float32Array(129 * 224 * 40); // one direct plane per slice
 * const sinoStack = stackSlab(sino, 129 * 224, 19); // its three planes
 * ```
 */
export function stackSlab(
  v: Float32Array,
  planeSize: number,
  first: number,
  count = 3,
): Float32Array {
  return v.slice(first * planeSize, (first + count) * planeSize);
}

/** The geometry of one 3-slice stack of a volume (see {@linkcode stackGeometry}). */
export interface StackGeometry {
  /** The stack's centred `[nx, ny, 3]` grid. */
  grid: ImageGrid;
  /** 3 direct planes on the stack's slice centres. */
  scanner: RingScanner;
  /** First slice of the stack in the volume. */
  first: number;
}

/**
 * The grid and direct-plane scanner of the 3-slice stack centred on slice `centre` of a volume
 * on `volumeGrid` measured by `base` (its transaxial geometry).
 *
 * @example
 * ```ts
 * import { centredGrid, MMR_VOXEL_MM, mmrLike2d, stackGeometry, stackSlab } from "@petrel/petrel";
 * const volumeGrid = centredGrid([128, 128, 40], [MMR_VOXEL_MM, MMR_VOXEL_MM, MMR_VOXEL_MM]);
 * const { grid, scanner, first } = stackGeometry(volumeGrid, mmrLike2d(), 20); // first = 19
 * const activity = new Float32Array(128 * 128 * 40); // e.g. a simulated study's activity
 * const truth = stackSlab(activity, 128 * 128, first); // the stack's 3 slices
 * ```
 */
export function stackGeometry(
  volumeGrid: ImageGrid,
  base: RingScanner,
  centre: number,
): StackGeometry {
  const [nx, ny, nz] = volumeGrid.shape;
  if (!Number.isInteger(centre) || centre < 1 || centre > nz - 2) {
    throw new RangeError(`stack centre ${centre} must be an integer in [1, ${nz - 2}]`);
  }
  const dz = volumeGrid.voxelSizeMm[2];
  return {
    grid: centredGrid([nx, ny, 3], [volumeGrid.voxelSizeMm[0], volumeGrid.voxelSizeMm[1], dz]),
    scanner: directPlaneScanner(base, 3, dz),
    first: centre - 1,
  };
}

/**
 * Builds the forward model and likelihood of the 3-slice stack centred on slice `centre`.
 *
 * @example
 * ```ts
 * import { defaultContext, mlemInit, mmrLike2d, readImage, readSinogram, stackSetup } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const { data: counts } = await readSinogram("in/prompts.npy"); // one direct plane per slice, [129, 224, nz]
 * const { data: mu, grid } = await readImage("in/mu.nii"); // 1/mm, [128, 128, nz] of 2.086 mm
 * const { data: t1 } = await readImage("in/mr.nii"); // on the same grid
 * const t1Max = t1.reduce((a, b) => Math.max(a, b), 0);
 * const vol = { grid, scanner: mmrLike2d(), counts, mu, mr: t1.map((v) => v / t1Max) };
 * const stack = stackSetup(ctx, vol, 20); // slices 19–21 and their three sinogram planes
 * const init = await mlemInit(stack.likelihood, 20);
 * stack.destroy();
 * ```
 */
export function stackSetup(ctx: GpuContext, vol: DirectPlaneVolume, centre: number): StackSetup {
  const [nx, ny, nz] = vol.grid.shape;
  const { grid, scanner, first } = stackGeometry(vol.grid, vol.scanner, centre);
  const slab = stackSlab;
  const sinoPlane = scanner.spec.radialBins * scanner.views;
  if (vol.counts.length !== sinoPlane * nz) {
    throw new RangeError(
      `counts have ${vol.counts.length} bins, expected ${
        sinoPlane * nz
      } ([radial, views, nz] = [${scanner.spec.radialBins}, ${scanner.views}, ${nz}])`,
    );
  }
  const imgPlane = nx * ny;
  const model = ringForwardModel(ctx, scanner, {
    grid,
    subsets: vol.subsets ?? 1,
    resolutionFwhmMm: vol.resolutionFwhmMm,
    muMap: vol.mu ? slab(vol.mu, imgPlane, first, 3) : undefined,
    multiplicative: vol.multiplicative ? slab(vol.multiplicative, sinoPlane, first, 3) : undefined,
    additive: vol.additive ? slab(vol.additive, sinoPlane, first, 3) : undefined,
  });
  const likelihood = new PoissonLikelihood(model, slab(vol.counts, sinoPlane, first, 3));
  return {
    model,
    likelihood,
    grid,
    mr: slab(vol.mr, imgPlane, first, 3),
    first,
    destroy() {
      likelihood.destroy();
      model.destroy();
    },
  };
}

/**
 * Stack centres covering `nz` slices with the given stride (always including nz − 2).
 *
 * @example
 * ```ts
 * import { volumeStackCentres } from "@petrel/petrel";
 * volumeStackCentres(7); // [1, 2, 3, 4, 5]: every interior slice is a centre
 * volumeStackCentres(8, 3); // [1, 4, 6]: stacks touch or overlap
 * ```
 */
export function volumeStackCentres(nz: number, stride = 1): number[] {
  if (nz < 3) throw new RangeError(`a volume needs at least 3 slices, got ${nz}`);
  if (!Number.isInteger(stride) || stride < 1 || stride > 3) {
    throw new RangeError(
      `stackStride must be 1, 2 or 3 (stacks must overlap or touch), got ${stride}`,
    );
  }
  const out: number[] = [];
  for (let c = 1; c <= nz - 2; c += stride) out.push(c);
  if (out[out.length - 1] !== nz - 2) out.push(nz - 2);
  return out;
}

/** Options of {@linkcode ddipVolume}. */
export interface DdipVolumeOptions extends Omit<DdipStackOptions, "init" | "callbacks"> {
  /**
   * Distance between stack centres (1, 2 or 3; default 2: half the stacks of stride 1 and, on
   * validation subject 50, no worse: the slices between two centres are the mean of two stacks;
   * stride 3 lost up to 0.9 dB on the slices at the stacks' edges; `docs/performance.md`).
   */
  stackStride?: number;
  /** How overlapping stacks are combined (default "centre"). */
  combine?: "centre" | "average";
  /** One LoRA per stack (default) or one carried across the volume. */
  loraScope?: "stack" | "volume";
  /**
   * Stacks reconstructed at the same time (1 or 2; default 1). With 2, one stack's network calls
   * (onnxruntime, one core) overlap the other's x-steps on the device, which on a 2-core CPU
   * machine leaves less of a core idle. Each stack's result is bit-identical to a run with 1
   * (stacks are independent with `loraScope: "stack"`; `"volume"` needs 1). `onStack` then
   * follows completion order, and each stack's network times include waiting for the other's.
   */
  concurrency?: number;
  /** Called after every stack. */
  onStack?: (
    info: { index: number; count: number; centre: number; result: DdipStackResult },
  ) => void | Promise<void>;
  /** Per-stack progress callbacks. */
  callbacks?: DdipStackOptions["callbacks"];
}

/** Result of {@linkcode ddipVolume}. */
export interface DdipVolumeResult {
  /** The reconstructed volume `[nx, ny, nz]`, activity units. */
  image: Float32Array;
  /** The MLEM initialisation volume (each slice from the same stacks as the image). */
  init: Float32Array;
  scale: number;
  centres: number[];
  timings: DdipTimings;
  /**
   * Voxel-wise standard deviation over `options.samples` chains (activity units; only when
   * samples > 1), combined over the stacks like the image.
   */
  std?: Float32Array;
}

/** One reconstructed 3-slice stack of a volume, for {@linkcode combineStacks}. */
export interface StackImages {
  /** First slice of the stack in the volume. */
  first: number;
  /** The stack's image `[nx, ny, 3]`. */
  image: Float32Array;
  /** Its MLEM initialisation `[nx, ny, 3]`. */
  init: Float32Array;
  /** Its voxel-wise standard deviation over chains, when there is one. */
  std?: Float32Array;
}

/**
 * Combines overlapping 3-slice stacks (in processing order) into a volume of `shape`, as
 * {@linkcode ddipVolume} does: `"centre"` takes each slice from the stack centred on it (the end
 * slices 0 and nz − 1 count as centres of the stacks holding them) and averages the stacks covering
 * a slice no stack is centred on (stride 2 and 3); `"average"` averages every stack covering the
 * slice. Sums in float64. Throws when a slice is not covered.
 *
 * @example
 * ```ts
 * import { combineStacks } from "@petrel/petrel";
 * const plane = 2 * 2;
 * const stack = (first: number, v: number) => ({
 *   first,
 *   image: new Float32Array(3 * plane).fill(v),
 *   init: new Float32Array(3 * plane),
 * });
 * // 6 slices, stacks centred on 1 and 4 (stride 3): every slice from exactly one stack
 * const { image } = combineStacks([2, 2, 6], [stack(0, 1), stack(3, 2)], "centre");
 * image[5 * plane]; // 2
 * ```
 */
export function combineStacks(
  shape: readonly number[],
  stacks: readonly StackImages[],
  combine: "centre" | "average",
): { image: Float32Array; init: Float32Array; std?: Float32Array } {
  const [nx, ny, nz] = shape;
  const plane = nx * ny;
  const withStd = stacks.length > 0 && stacks.every((s) => s.std !== undefined);
  const sum = new Float64Array(plane * nz);
  const initSum = new Float64Array(plane * nz);
  const stdSum = withStd ? new Float64Array(plane * nz) : null;
  const weight = new Float64Array(nz);
  const fromCentre = new Uint8Array(nz);
  for (const st of stacks) {
    if (!Number.isInteger(st.first) || st.first < 0 || st.first + 3 > nz) {
      throw new RangeError(`a stack starting at slice ${st.first} does not fit ${nz} slices`);
    }
    for (const [name, a] of [["image", st.image], ["init", st.init], ["std", st.std]] as const) {
      if (a && a.length !== 3 * plane) {
        throw new RangeError(
          `the ${name} of the stack at slice ${st.first} has ${a.length} voxels, expected ${
            3 * plane
          }`,
        );
      }
    }
    for (let d = 0; d < 3; d++) {
      const slice = st.first + d;
      const isCentre = d === 1 || (slice === 0) || (slice === nz - 1);
      let use: boolean;
      let reset = false;
      if (combine === "average") use = true;
      else if (isCentre && !fromCentre[slice]) {
        use = true;
        reset = true;
        fromCentre[slice] = 1;
      } else use = !fromCentre[slice];
      if (!use) continue;
      if (reset) {
        sum.fill(0, slice * plane, (slice + 1) * plane);
        initSum.fill(0, slice * plane, (slice + 1) * plane);
        stdSum?.fill(0, slice * plane, (slice + 1) * plane);
        weight[slice] = 0;
      }
      for (let t = 0; t < plane; t++) {
        sum[slice * plane + t] += st.image[d * plane + t];
        initSum[slice * plane + t] += st.init[d * plane + t];
        if (stdSum) stdSum[slice * plane + t] += st.std![d * plane + t];
      }
      weight[slice]++;
    }
  }
  const missing = [...weight.keys()].filter((k) => weight[k] === 0);
  if (missing.length) {
    throw new RangeError(`slices ${missing.join(", ")} are covered by no stack`);
  }
  const image = new Float32Array(plane * nz);
  const init = new Float32Array(plane * nz);
  const std = stdSum ? new Float32Array(plane * nz) : undefined;
  for (let k = 0; k < nz; k++) {
    for (let t = k * plane; t < (k + 1) * plane; t++) {
      image[t] = sum[t] / weight[k];
      init[t] = initSum[t] / weight[k];
      if (std) std[t] = stdSum![t] / weight[k];
    }
  }
  return std ? { image, init, std } : { image, init };
}

/**
 * Reconstructs a whole volume with overlapping 3-slice DDIP stacks (see the module notes).
 *
 * @example
 * ```ts
 * import { ddipVolume, defaultContext, loadPrior, mmrLike2d, readImage, readSinogram } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const { data: counts } = await readSinogram("in/prompts.npy"); // one direct plane per slice, [129, 224, nz]
 * const { data: mu, grid } = await readImage("in/mu.nii"); // 1/mm, [128, 128, nz] of 2.086 mm
 * const { data: t1 } = await readImage("in/mr.nii"); // on the same grid
 * const t1Max = t1.reduce((a, b) => Math.max(a, b), 0);
 * const vol = { grid, scanner: mmrLike2d(), counts, mu, mr: t1.map((v) => v / t1Max) };
 * const prior = await loadPrior("models/fdg_prior", { adapter: ctx.adapter });
 * const r = await ddipVolume(ctx, prior, vol, {
 *   stackStride: 2, // the default: stacks centred on every second slice
 *   samples: 2, // mean image and voxel-wise std over 2 seeds
 * });
 * console.log(r.centres, r.scale, r.std !== undefined);
 * ```
 */
export async function ddipVolume(
  ctx: GpuContext,
  prior: ScorePrior,
  vol: DirectPlaneVolume,
  options: DdipVolumeOptions = {},
): Promise<DdipVolumeResult> {
  const config = ddipConfig(options.config);
  const [nx, ny, nz] = vol.grid.shape;
  const plane = nx * ny;
  const centres = volumeStackCentres(nz, options.stackStride ?? 2);
  const combine = options.combine ?? "centre";
  const scope = options.loraScope ?? "stack";
  const concurrency = options.concurrency ?? 1;
  if (concurrency !== 1 && concurrency !== 2) {
    throw new RangeError(`concurrency must be 1 or 2 (stacks at a time), got ${concurrency}`);
  }
  if (concurrency > 1 && scope === "volume") {
    throw new RangeError(
      'concurrency 2 needs loraScope "stack": with "volume" each stack starts from the previous one\'s LoRA',
    );
  }
  if (vol.mr.length !== plane * nz) {
    throw new RangeError(`mr has ${vol.mr.length} voxels, expected ${plane * nz}`);
  }
  const baseSeed = options.seed ?? config.seed;
  // 1. MLEM initialisations and the volume-wide scale (each stack's centre plane counts)
  const inits: Float32Array[] = [];
  let stackGrid: ImageGrid | null = null;
  for (const c of centres) {
    const st = stackSetup(ctx, vol, c);
    try {
      inits.push(await mlemInit(st.likelihood, config.initIterations));
      stackGrid = st.grid;
    } finally {
      st.destroy();
    }
  }
  const scale = options.scale ??
    await autoScale(ctx, inits.map((init) => ({ grid: stackGrid!, init, planes: [1, 1] })), config);
  if (!(scale > 0) || !Number.isFinite(scale)) {
    throw new RangeError(`volume scale must be a finite number > 0, got ${scale}`);
  }
  // 2. the stacks (`concurrency` at a time; combined in centre order)
  const shared = scope === "volume" ? options.params ?? prior.createParams() : null;
  const timings = zeroDdipTimings();
  const stacks: StackImages[] = new Array(centres.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < centres.length && !failed) {
      const i = next++;
      const c = centres[i];
      const st = stackSetup(ctx, vol, c);
      let result: DdipStackResult;
      try {
        result = await ddipStack(prior, { likelihood: st.likelihood, grid: st.grid, mr: st.mr }, {
          ...options,
          config,
          init: inits[i],
          scale,
          seed: subSeed(baseSeed, `ddip-stack-${c}`),
          params: shared ?? undefined,
        });
      } catch (e) {
        failed = true; // the other worker stops after its stack
        throw e;
      } finally {
        st.destroy();
      }
      addTimings(timings, result.timings);
      stacks[i] = { first: st.first, image: result.image, init: result.init, std: result.std };
      await options.onStack?.({ index: i, count: centres.length, centre: c, result });
    }
  };
  const outcomes = await Promise.allSettled(Array.from({ length: concurrency }, worker));
  for (const o of outcomes) if (o.status === "rejected") throw o.reason;
  const { image, init, std } = combineStacks(vol.grid.shape, stacks, combine);
  return { image, init, scale, centres, timings, std };
}
