/**
 * Small 2D test problems shared by the model and recon tests (32×32 image, 64-crystal ring), so
 * that they run in seconds on llvmpipe.
 *
 * @module
 */

import { centredGrid, type ImageGrid } from "../../core/geometry/grid.ts";
import { RingScanner } from "../../core/geometry/scanner.ts";

/** A 64-crystal single ring of radius 60 mm with 31 radial bins (32 views). */
export function smallScanner(): RingScanner {
  return new RingScanner({
    name: "test ring",
    radiusMm: 60,
    crystalsPerRing: 64,
    rings: 1,
    ringSpacingMm: 2,
    radialBins: 31,
    maxRingDifference: 0,
  });
}

/** 32×32×1 grid of 2 mm voxels centred on the scanner. */
export function smallGrid(n = 32): ImageGrid {
  return centredGrid([n, n, 1], [2, 2, 2]);
}

/** A disc of radius `r` mm centred at (cx, cy) mm with value `v` (added to `img`). */
export function addDisc(
  img: Float32Array,
  grid: ImageGrid,
  disc: { cx: number; cy: number; r: number; v: number },
): Float32Array {
  const [nx, ny] = grid.shape;
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      const x = grid.originMm[0] + i * grid.voxelSizeMm[0];
      const y = grid.originMm[1] + j * grid.voxelSizeMm[1];
      if ((x - disc.cx) ** 2 + (y - disc.cy) ** 2 <= disc.r ** 2) img[i + nx * j] += disc.v;
    }
  }
  return img;
}

/** A smooth-ish test phantom: a disc with a hot and a cold insert. */
export function testPhantom(grid: ImageGrid): Float32Array {
  const img = new Float32Array(grid.shape[0] * grid.shape[1] * grid.shape[2]);
  addDisc(img, grid, { cx: 0, cy: 0, r: 24, v: 1 });
  addDisc(img, grid, { cx: 8, cy: 4, r: 5, v: 2 });
  addDisc(img, grid, { cx: -9, cy: -6, r: 5, v: -0.8 });
  return img;
}

/** Throws with `msg` unless `cond`. */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

/** Throws unless |actual − expected| ≤ tol. */
export function assertClose(actual: number, expected: number, tol: number, msg = ""): void {
  if (!(Math.abs(actual - expected) <= tol)) {
    throw new Error(`${msg} expected ${expected} ± ${tol}, got ${actual}`);
  }
}

/** Throws unless the arrays are element-wise identical (bit-identical floats, NaN = NaN). */
export function assertIdentical(a: ArrayLike<number>, b: ArrayLike<number>, msg = ""): void {
  if (a.length !== b.length) throw new Error(`${msg} lengths differ: ${a.length} vs ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) throw new Error(`${msg} element ${i} differs: ${a[i]} vs ${b[i]}`);
  }
}
