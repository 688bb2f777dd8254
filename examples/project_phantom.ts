/** Forward-projects a disk phantom with the Joseph projector and writes image + sinogram. */
import { z } from "zod";
import type { RecipeContext } from "../core/runtime/mod.ts";
import { applyToHost, JosephProjector } from "../core/projector/mod.ts";
import { RingScanner } from "../core/geometry/mod.ts";
import { writeNifti, writeSinogram } from "../core/io/mod.ts";

export const description = "Project a hot-disk phantom on a small 2-D ring scanner.";
export const params = z.object({
  size: z.number().int().min(8).max(512).default(32).describe("image size (voxels per side)"),
  voxelMm: z.number().positive().default(4).describe("voxel size in mm"),
  crystals: z.number().int().multipleOf(4).default(64).describe("crystals in the ring"),
});

export default async function run(ctx: RecipeContext<z.infer<typeof params>>): Promise<void> {
  const { size, voxelMm, crystals } = ctx.params;
  const scanner = new RingScanner({
    radiusMm: size * voxelMm,
    crystalsPerRing: crystals,
    rings: 1,
    ringSpacingMm: voxelMm,
    radialBins: crystals / 2 - 1,
    maxRingDifference: 0,
  });
  const grid = scanner.imageGrid(size, voxelMm);
  const image = new Float32Array(size * size).map((_, i) => {
    const x = (i % size) - size / 2 + 0.5, y = Math.floor(i / size) - size / 2 + 0.5;
    return Math.hypot(x, y) < size / 3 ? (Math.hypot(x - size / 8, y) < size / 10 ? 4 : 1) : 0;
  });
  const gpu = await ctx.gpu();
  const projector = new JosephProjector(gpu, scanner.lors(), grid);
  const sinogram = await applyToHost(gpu, projector, image);
  await writeNifti(`${ctx.outDir}/phantom.nii`, { data: image, grid });
  await writeSinogram(`${ctx.outDir}/projection.npy`, {
    data: sinogram,
    scanner,
    quantity: "other",
  });
  ctx.log(`projected ${size}×${size} onto ${scanner.sinogramShape.join("×")} bins`);
}
