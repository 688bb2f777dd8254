/** Shared by the DDIP tests: the tiny test prior and the disc phantom. */
import { centredGrid, type ImageGrid } from "../../core/geometry/grid.ts";
import { loadPrior } from "../../core/diffusion/load.ts";
import type { ScorePrior } from "../../core/diffusion/prior.ts";
import { addDisc } from "../model/fixtures.ts";

const DIR = new URL("../fixtures/prior", import.meta.url).pathname;
let shared: Promise<ScorePrior> | null = null;

/** The tiny random-weight prior of tests/fixtures/prior, loaded once per test module (1 thread). */
export function tinyPrior(): Promise<ScorePrior> {
  shared ??= loadPrior(DIR, { provider: "wasm", numThreads: 1 });
  return shared;
}

/** Two discs (a hot insert in a warm disc) in every slice, `1 + slope·k` times brighter in slice k. */
export function discPhantom(grid: ImageGrid, slope: number): Float32Array {
  const [nx, ny, nz] = grid.shape;
  const img = new Float32Array(nx * ny * nz);
  const plane = new Float32Array(nx * ny);
  const g2 = centredGrid([nx, ny, 1], grid.voxelSizeMm);
  addDisc(plane, g2, { cx: 0, cy: 0, r: 24, v: 1 });
  addDisc(plane, g2, { cx: 8, cy: 4, r: 6, v: 3 });
  for (let k = 0; k < nz; k++) {
    for (let t = 0; t < nx * ny; t++) img[k * nx * ny + t] = plane[t] * (1 + slope * k);
  }
  return img;
}
