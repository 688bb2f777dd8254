/**
 * Which image grids a prior can work on, read from its metadata: the in-plane size its VJP graph
 * was exported for (`shapes.vjp.H/W`; fine-tuning needs exactly that), the multiple the U-Net
 * needs (`architecture.spatial_multiple`) and the voxel size it was trained at (`grid.voxel_mm`,
 * or `training.voxel_mm`) with a relative tolerance (`grid.rel_tolerance`, default 5 %).
 *
 * @module
 */

import type { ImageGrid } from "../geometry/grid.ts";
import type { PriorMetadata } from "./metadata.ts";

/** What a prior supports (fields it does not declare are not checked). */
export interface PriorGridSupport {
  /** In-plane `[W, H]` (x, y) the VJP graph was exported for, if fixed. */
  inPlane?: [number, number];
  /** In-plane sizes must be multiples of this (1 when undeclared). */
  multiple: number;
  /** Voxel size (mm, x y z) of the training data. */
  voxelMm?: [number, number, number];
  /** Relative tolerance on the voxel size. */
  relTolerance: number;
}

type Loose = Record<string, unknown>;

function numbers3(v: unknown): [number, number, number] | undefined {
  if (typeof v === "number" && v > 0) return [v, v, v];
  if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === "number" && x > 0)) {
    return v as [number, number, number];
  }
  return undefined;
}

/**
 * Reads the grid constraints from a prior's metadata.
 *
 * @example
 * ```ts
 * import { loadPrior, priorGridSupport } from "@petrel/petrel";
 * const prior = await loadPrior("models/fdg_prior");
 * const support = priorGridSupport(prior.meta);
 * // { inPlane: [128, 128], multiple: 4, voxelMm: [2.086, 2.086, 2.086], relTolerance: 0.05 }
 * ```
 */
export function priorGridSupport(meta: PriorMetadata): PriorGridSupport {
  const m = meta as unknown as Loose;
  const vjp = ((m.shapes as Loose | undefined)?.vjp ?? undefined) as Loose | undefined;
  const inPlane = vjp && typeof vjp.W === "number" && typeof vjp.H === "number"
    ? [vjp.W, vjp.H] as [number, number]
    : undefined;
  const grid = m.grid as Loose | undefined;
  const training = m.training as Loose | undefined;
  const voxelMm = numbers3(grid?.voxel_mm) ?? numbers3(training?.voxel_mm);
  const tol = typeof grid?.rel_tolerance === "number" ? grid.rel_tolerance : 0.05;
  return {
    inPlane,
    multiple: meta.architecture?.spatial_multiple ?? 1,
    voxelMm,
    relTolerance: tol,
  };
}

/**
 * A study grid that the prior does not support.
 *
 * @example
 * ```ts
 * import { centredGrid, checkPriorGrid, PriorGridError } from "@petrel/petrel";
 * const support = { inPlane: [128, 128] as [number, number], multiple: 4, relTolerance: 0.05 };
 * try {
 *   checkPriorGrid(centredGrid([96, 96, 3], [2.086, 2.086, 2.086]), support, "models/fdg_prior");
 * } catch (e) {
 *   if (!(e instanceof PriorGridError)) throw e;
 *   console.error(e.message); // "models/fdg_prior fine-tunes on 128 × 128 in-plane voxels …"
 * }
 * ```
 */
export class PriorGridError extends RangeError {
  override name = "PriorGridError";
}

/**
 * Throws {@linkcode PriorGridError} (one sentence: what the prior supports, what the grid is, how
 * to resample) when `grid` does not fit `support`. `fineTune` false skips the fixed VJP size
 * (sampling alone runs at any multiple of `support.multiple`).
 *
 * @example
 * ```ts
 * import { centredGrid, checkPriorGrid, loadPrior, priorGridSupport } from "@petrel/petrel";
 * const prior = await loadPrior("models/fdg_prior");
 * const grid = centredGrid([128, 128, 40], [2.086, 2.086, 2.086]);
 * checkPriorGrid(grid, priorGridSupport(prior.meta), "models/fdg_prior"); // fits: no error
 * // 96 × 96 can be sampled (a multiple of 4) but not fine-tuned (the VJP graph is 128 × 128)
 * const small = centredGrid([96, 96, 3], [2.086, 2.086, 2.086]);
 * checkPriorGrid(small, priorGridSupport(prior.meta), "models/fdg_prior", { fineTune: false });
 * ```
 */
export function checkPriorGrid(
  grid: ImageGrid,
  support: PriorGridSupport,
  what: string,
  options: { fineTune?: boolean } = {},
): void {
  const [nx, ny] = grid.shape;
  const v = grid.voxelSizeMm;
  const want = support.voxelMm;
  const fix = (): string => {
    const size = support.inPlane ? `${support.inPlane[0]} × ${support.inPlane[1]}` : "";
    const vox = want ? `${want.map((x) => +x.toFixed(3)).join(" × ")} mm` : "";
    return `resample the μ-map and MR onto ${size ? size + " voxels" : "a grid"}${
      vox ? ` of ${vox}` : ""
    } (e.g. \`petrel simulate --set phantom=brain\` makes such a study)`;
  };
  if (want) {
    for (let a = 0; a < 3; a++) {
      if (Math.abs(v[a] - want[a]) > support.relTolerance * want[a]) {
        throw new PriorGridError(
          `${what} was trained on ${want.map((x) => +x.toFixed(3)).join(" × ")} mm voxels (±${
            Math.round(100 * support.relTolerance)
          } %), but the study's grid has ${
            v.map((x) => +x.toFixed(3)).join(" × ")
          } mm voxels; ${fix()}`,
        );
      }
    }
  }
  if ((options.fineTune ?? true) && support.inPlane) {
    const [w, h] = support.inPlane;
    if (nx !== w || ny !== h) {
      throw new PriorGridError(
        `${what} fine-tunes on ${w} × ${h} in-plane voxels (its VJP graph's fixed size), but the study's grid is ${nx} × ${ny}; ${fix()}`,
      );
    }
  }
  if (nx % support.multiple !== 0 || ny % support.multiple !== 0) {
    throw new PriorGridError(
      `${what} needs in-plane sizes that are multiples of ${support.multiple}, but the study's grid is ${nx} × ${ny}; ${fix()}`,
    );
  }
  if (grid.shape[2] < 3) {
    throw new PriorGridError(
      `${what} works on stacks of 3 adjacent slices, but the study's grid has ${
        grid.shape[2]
      } slice(s); reconstruct at least 3 slices`,
    );
  }
}
