/** Shared test helpers: small geometries and numeric comparisons. */
import { ok } from "node:assert/strict";
import { RingScanner } from "../core/geometry/scanner.ts";
import { centredGrid, type ImageGrid } from "../core/geometry/grid.ts";
import { type LorSet, lorSet } from "../core/geometry/lors.ts";
import { josephBackReference, josephForwardReference } from "../core/projector/reference.ts";

/** Asserts |a − b| ≤ tol · max(1, |b|). */
export function assertClose(a: number, b: number, tol: number, what = "value"): void {
  ok(
    Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)),
    `${what}: ${a} differs from ${b} by more than ${tol} (relative)`,
  );
}

/** Max |a − b| over two arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  ok(a.length === b.length, `length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Max |x|. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** A small single-ring scanner for fast tests (64 crystals, 33 radial bins, radius 60 mm). */
export function smallScanner(rings = 1, maxRingDifference = 0): RingScanner {
  return new RingScanner({
    name: "test ring",
    radiusMm: 60,
    crystalsPerRing: 64,
    rings,
    ringSpacingMm: 4,
    radialBins: 33,
    maxRingDifference,
  });
}

/** A 24×24×nz grid of 3 mm voxels (z voxel = ring spacing), centred. */
export function smallGrid(nz = 1, voxelZ = 4): ImageGrid {
  return centredGrid([24, 24, nz], [3, 3, voxelZ]);
}

/** Deterministic pseudo-random floats in [0, 1). */
export function randomArray(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  });
}

/** `n` random oblique LORs between points of a 160 mm box flattened to ±24 mm in z (most cross a 72 mm image). */
export function randomLors(n: number, seed: number): LorSet {
  const r = randomArray(6 * n, seed);
  const start: number[] = [];
  const end: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = (k: number) => (r[6 * i + k] - 0.5) * 160;
    start.push(p(0), p(1), p(2) * 0.3);
    end.push(p(3), p(4), p(5) * 0.3);
  }
  return lorSet(start, end);
}

/**
 * Per bin of a ring scanner's sinogram: whether its line lies at exactly 45° to the axes
 * ((2·view + radial parity) ≡ N/4 mod N/2), where Joseph's choice of axis is a tie.
 */
export function at45(scanner: RingScanner): boolean[] {
  const [nr, nv, np] = scanner.sinogramShape;
  const n = scanner.spec.crystalsPerRing;
  const out: boolean[] = [];
  for (let p = 0; p < np; p++) {
    for (let v = 0; v < nv; v++) {
      for (let r = 0; r < nr; r++) {
        const q = (((r - (nr - 1) / 2) % 2) + 2) % 2;
        out.push((2 * v + q) % (n / 2) === n / 4);
      }
    }
  }
  return out;
}

/**
 * A ring scanner's LORs on `grid` with seeded inputs x (image) and y (sinogram) and the
 * plain-TypeScript Joseph references P x and Pᵀ y. With anisotropic voxels, Joseph's choice of
 * axis matters for lines at exactly 45°, a tie that the rounding of stored end points breaks
 * either way: those bins (`tie`) are zeroed in y, and callers overwrite them in forward results.
 */
export function ringReferenceCase(scanner: RingScanner, grid: ImageGrid): {
  lors: LorSet;
  x: Float32Array;
  y: Float32Array;
  tie: boolean[];
  aniso: boolean;
  fRef: Float64Array;
  bRef: Float64Array;
} {
  const lors = scanner.lors();
  const x = randomArray(grid.shape[0] * grid.shape[1] * grid.shape[2], 3);
  const y = randomArray(lors.count, 4);
  const aniso = grid.voxelSizeMm[0] !== grid.voxelSizeMm[1];
  const tie = at45(scanner);
  if (aniso) tie.forEach((t, i) => t && (y[i] = 0));
  const fRef = josephForwardReference(lors, grid, x);
  const bRef = josephBackReference(lors, grid, y);
  return { lors, x, y, tie, aniso, fRef, bRef };
}
