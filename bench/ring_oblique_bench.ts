/**
 * The oblique ring projector beside Joseph's on small multi-ring scanners (where `projector:
 * "auto"` chooses between them): forward and back, wall and process CPU time, medians / means over
 * `--repeats`, and the largest difference of the two projections relative to Joseph's maximum.
 *
 *   deno run -A bench/ring_oblique_bench.ts --rings 2 --max-ring-difference 1 [--half] [--repeats 5]
 *
 * mMR-like rings (`mmrLike3d`), 128² transaxial voxels of 2.086 mm; one slice per ring, or with
 * `--half` 2·rings − 1 slices at half the ring pitch (the grid `petrel simulate` writes for
 * `petrel recon ddip`).
 *
 * @module
 */
import { adapterTitle, timeGpu } from "./_timing.ts";
import { defaultContext } from "../core/gpu/context.ts";
import { MMR_VOXEL_MM, mmrLike3d } from "../core/geometry/scanner.ts";
import { JosephProjector } from "../core/projector/joseph.ts";
import { RingObliqueProjector } from "../core/projector/ring_oblique.ts";

function arg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

/** Runs the comparison for the command line `args`. */
export async function main(args: string[]): Promise<void> {
  const rings = arg(args, "--rings", 2);
  const mrd = arg(args, "--max-ring-difference", rings - 1);
  const repeats = arg(args, "--repeats", 5);
  const ctx = await defaultContext();
  const scanner = mmrLike3d({ rings, maxRingDifference: mrd });
  const grid = args.includes("--half")
    ? scanner.imageGrid(128, MMR_VOXEL_MM, {
      nz: 2 * rings - 1,
      voxelZMm: scanner.spec.ringSpacingMm / 2,
    })
    : scanner.imageGrid(128, MMR_VOXEL_MM);
  const nvox = grid.shape.reduce((a, b) => a * b);
  const x = ctx.array(grid.shape, new Float32Array(nvox).map((_, i) => 1 + (i % 7)));
  console.log(adapterTitle(
    `${rings} rings, max ring difference ${mrd}, ${scanner.planes.length} planes, image ${
      grid.shape.join("×")
    }`,
    ctx,
  ));
  const out: Record<string, Float32Array[]> = {};
  const cpu: Record<string, number> = {};
  for (const kind of ["joseph", "ring"]) {
    const P = kind === "joseph"
      ? new JosephProjector(ctx, scanner.lors(), grid)
      : new RingObliqueProjector(ctx, scanner, grid);
    const y = ctx.array(P.outShape);
    const b = ctx.array(P.inShape);
    const f = await timeGpu(ctx, () => ctx.run((rec) => P.apply(rec, x, y)), repeats);
    const bk = await timeGpu(ctx, () => ctx.run((rec) => P.adjoint(rec, y, b)), repeats);
    out[kind] = [await y.read(), await b.read()];
    cpu[kind] = f.cpu + bk.cpu;
    console.log(
      `${kind.padEnd(7)} fwd ${f.wall.toFixed(1)} ms wall / ${f.cpu.toFixed(1)} ms CPU, back ${
        bk.wall.toFixed(1)
      } / ${bk.cpu.toFixed(1)}`,
    );
    P.destroy();
    y.destroy();
    b.destroy();
  }
  console.log(`pair CPU ring / joseph: ${(cpu.ring / cpu.joseph).toFixed(2)}`);
  ["forward", "back"].forEach((what, k) => {
    const a = out.joseph[k];
    const c = out.ring[k];
    let m = 0;
    let d = 0;
    for (let i = 0; i < a.length; i++) {
      m = Math.max(m, Math.abs(a[i]));
      d = Math.max(d, Math.abs(a[i] - c[i]));
    }
    console.log(`${what}: max |ring − joseph| / max |joseph| = ${(d / m).toExponential(1)}`);
  });
  x.destroy();
}

if (import.meta.main) await main(Deno.args);
