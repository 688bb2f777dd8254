/**
 * Simulates a PET/MR study: attenuated Poisson prompts with randoms, μ-map, MR and truth.
 *
 * - `phantom=cylinder` (default): a water cylinder with a hot and a cold spot on a small ring
 *   scanner (`crystals`, direct planes only).
 * - `phantom=brain`: the procedural brain (FDG, T1-like MR, μ) on an mMR-like scanner: 448
 *   crystals on 330 mm, `rings` (default 2) rings of the mMR's 64 at its 4.0625 mm pitch, span 1
 *   with every oblique segment, crystal efficiencies (`norm.npy`), on a 128² grid of 2.086 mm with
 *   2·rings − 1 slices of half the ring pitch (2.031 mm) — the grid the shipped priors support,
 *   and what `petrel recon ddip` reconstructs without further settings.
 * - `phantom=brainweb` (`petrel simulate --brainweb <dir> --subject N`): the same from BrainWeb
 *   subject N's label volume (`subjectNN_crisp.nii.gz` in the input folder).
 *
 * With `tofFwhmPs > 0` the prompts and additive sinograms are TOF sinograms (`tofBins` bins
 * covering the image and 3σ either side, Poisson in each TOF bin); `listMode=true` also writes the
 * prompts as list-mode events (`events.npy` + `events.json`).
 */
import { z } from "zod";
import type { RecipeContext } from "../core/runtime/mod.ts";
import { RecipeInputError } from "../core/runtime/recipe.ts";
import { centredGrid, type ImageGrid, imageGrid } from "../core/geometry/grid.ts";
import { MMR_VOXEL_MM, mmrLike3d, RingScanner } from "../core/geometry/scanner.ts";
import { sampleListMode, simulateCounts, sinogramForwardModel } from "../core/model/mod.ts";
import { writeListMode, writeNifti, writeSinogram } from "../core/io/mod.ts";
import { type TofInput, tofParameters, tofPsToMm } from "../core/geometry/tof.ts";
import { brainPhantomStudy } from "../core/sim/phantom_brain.ts";
import { readLabelVolume } from "../core/sim/dataset.ts";
import { simulateStudy } from "../core/sim/simulate.ts";
import { Rng, subSeed } from "../core/random.ts";

export const description =
  "Simulate prompts, additive, μ-map, MR and truth (phantom=cylinder|brain|brainweb; for osem/map/ddip).";

const PHANTOMS = ["cylinder", "brain", "brainweb"] as const;

export const params = z.object({
  phantom: z.enum(PHANTOMS).default("cylinder").describe(
    "cylinder (small ring scanner), brain (procedural, mMR-like 3-D) or brainweb (needs --in)",
  ),
  subject: z.string().regex(/^\d{2}$/).default("04").describe(
    "BrainWeb subject (phantom=brainweb): reads subject<NN>_crisp.nii.gz from --in",
  ),
  size: z.number().int().min(8).max(256).optional().describe(
    "image size (voxels per side; cylinder 32, brain 128)",
  ),
  voxelMm: z.number().positive().optional().describe(
    "in-plane voxel size in mm (cylinder 4, also its ring spacing; brain 2.086)",
  ),
  crystals: z.number().int().multipleOf(4).optional().describe(
    "crystals per ring (cylinder 96; brain 448, the mMR's)",
  ),
  rings: z.number().int().positive().max(64).optional().describe(
    "rings (cylinder 1 = slices, direct planes only; brain 2 of the mMR's 64 (3 slices), all segments)",
  ),
  trueCounts: z.number().positive().optional().describe(
    "expected true coincidences (cylinder 2e5; brain 1e5 per slice)",
  ),
  randomsFraction: z.number().min(0).max(0.9).default(0.2).describe("randoms / prompts"),
  axialCentreMm: z.number().default(12).describe(
    "brain/brainweb: phantom z (mm) at the scanner's centre (12: through the ventricles)",
  ),
  normalisation: z.boolean().default(true).describe(
    "brain/brainweb: crystal efficiencies (±10 %, seeded) in norm.npy",
  ),
  tofFwhmPs: z.number().min(0).default(0).describe(
    "TOF resolution FWHM in ps (0: non-TOF); prompts/additive become TOF sinograms",
  ),
  tofBins: z.number().int().positive().default(13).describe(
    "TOF bins (their width covers the image diagonal plus 3σ either side)",
  ),
  listMode: z.boolean().default(false).describe("also write the prompts as events.npy (list mode)"),
});

type Params = z.infer<typeof params>;

/** Water cylinder (μ, 1/mm), a hot lesion and a cold spot; the MR shows the same structures. */
function cylinder(
  n: number,
  slices: number,
): { mu: Float32Array; pet: Float32Array; mr: Float32Array } {
  const mu = new Float32Array(n * n * slices), pet = mu.slice(), mr = mu.slice();
  for (let i = 0; i < mu.length; i++) {
    const x = (i % n) - n / 2 + 0.5, y = (((i / n) | 0) % n) - n / 2 + 0.5;
    if (Math.hypot(x, y) >= n / 2.6) continue;
    const hot = Math.hypot(x - n / 8, y) < n / 10, cold = Math.hypot(x + n / 8, y - n / 8) < n / 12;
    [mu[i], pet[i], mr[i]] = [0.0096, hot ? 4 : cold ? 0 : 1, hot ? 0.5 : cold ? 1 : 0.8];
  }
  return { mu, pet, mr };
}

/**
 * Crystal efficiencies (lognormal-ish, ±10 %) and the normalisation factor of every bin: the
 * product of the two crystals' efficiencies.
 */
function crystalNormalisation(scanner: RingScanner, seed: number): Float32Array {
  const rng = new Rng(seed);
  const { crystalsPerRing: n, rings } = scanner.spec;
  const eff = Float32Array.from({ length: n * rings }, () => Math.exp(0.1 * rng.normal()));
  const [nr, nv] = [scanner.radialBins, scanner.views];
  const out = new Float32Array(scanner.bins);
  scanner.planes.forEach((pl, p) => {
    for (let v = 0; v < nv; v++) {
      for (let r = 0; r < nr; r++) {
        const [a, b] = scanner.crystalPair(r, v);
        out[(p * nv + v) * nr + r] = eff[pl.ring1 * n + a] * eff[pl.ring2 * n + b];
      }
    }
  });
  return out;
}

interface Phantom {
  scanner: RingScanner;
  grid: ImageGrid;
  pet: Float32Array;
  mu: Float32Array;
  mr: Float32Array;
  trueCounts: number;
  norm?: Float32Array;
  note: string;
}

async function brainPhantom(ctx: RecipeContext<Params>): Promise<Phantom> {
  const p = ctx.params;
  // 2 rings (3 slices, one DDIP stack) keep `petrel recon ddip` at a few minutes on 2 cores;
  // more rings give more slices and stacks (rings = 3: 5 slices, 3 stacks)
  const rings = p.rings ?? 2;
  const base = mmrLike3d({ rings, maxRingDifference: rings - 1 });
  const scanner = p.crystals === undefined ? base : new RingScanner({
    ...base.spec,
    crystalsPerRing: p.crystals,
    radialBins: Math.min(base.spec.radialBins, p.crystals / 2 - 1),
  });
  const slices = 2 * rings - 1;
  const size = p.size ?? 128;
  const vox = p.voxelMm ?? MMR_VOXEL_MM;
  const grid = centredGrid([size, size, slices], [vox, vox, scanner.spec.ringSpacingMm / 2]);
  scanner.checkGridFits(grid);
  // the study is computed on the grid moved to the phantom's axial position (a bed position)
  const at = imageGrid({
    ...grid,
    originMm: [grid.originMm[0], grid.originMm[1], grid.originMm[2] + p.axialCentreMm],
  });
  let study;
  let note: string;
  if (p.phantom === "brain") {
    study = brainPhantomStudy({ dims: 3, seed: ctx.seed, grid: at, tracers: ["fdg"] });
    note = `procedural brain (seed ${ctx.seed})`;
  } else {
    const file = `subject${p.subject}_crisp.nii.gz`;
    let path: string;
    try {
      path = ctx.inputPath(file);
      await Deno.stat(path);
    } catch {
      throw new RecipeInputError(
        `phantom=brainweb needs ${file} in the input folder (petrel simulate --brainweb <dir> --subject ${p.subject}); scripts/brainweb_download.ts fetches it`,
      );
    }
    const vol = await readLabelVolume(path);
    study = simulateStudy(vol, {
      grid: at,
      tracers: ["fdg"],
      seed: ctx.seed,
      placement: "head",
    });
    note = `BrainWeb subject ${p.subject}`;
  }
  return {
    scanner,
    grid,
    pet: study.activity.fdg!,
    mu: study.mu!,
    mr: study.mr!,
    trueCounts: p.trueCounts ?? 1e5 * slices,
    norm: p.normalisation ? crystalNormalisation(scanner, subSeed(ctx.seed, "norm")) : undefined,
    note: `${note}, FDG, z ${p.axialCentreMm} mm at the centre`,
  };
}

function cylinderPhantom(p: Params): Phantom {
  const [size, voxelMm, crystals, rings] = [
    p.size ?? 32,
    p.voxelMm ?? 4,
    p.crystals ?? 96,
    p.rings ?? 1,
  ];
  const scanner = new RingScanner({
    name: "small ring scanner",
    radiusMm: size * voxelMm,
    crystalsPerRing: crystals,
    rings,
    ringSpacingMm: voxelMm,
    radialBins: crystals / 2 - 1,
    maxRingDifference: 0,
  });
  const grid = scanner.imageGrid(size, voxelMm);
  return {
    scanner,
    grid,
    ...cylinder(size, rings),
    trueCounts: p.trueCounts ?? 2e5,
    note: "cylinder",
  };
}

export default async function run(ctx: RecipeContext<Params>): Promise<void> {
  const p = ctx.params;
  ctx.log(`phase: phantom (${p.phantom})`);
  const ph = p.phantom === "cylinder" ? cylinderPhantom(p) : await brainPhantom(ctx);
  const { scanner, grid, mu, pet, mr } = ph;
  ctx.log(
    `phase: projection (${scanner.spec.name}, ${scanner.planes.length} planes × ${scanner.views} views × ${scanner.radialBins} bins; grid ${
      grid.shape.join("×")
    } of ${grid.voxelSizeMm.map((v) => +v.toFixed(3)).join("×")} mm)`,
  );
  const gpu = await ctx.gpu();
  let tof: TofInput | undefined;
  if (p.tofFwhmPs > 0) {
    const diag = Math.hypot(...grid.shape.map((n, a) => n * grid.voxelSizeMm[a]));
    const sigma = tofPsToMm(p.tofFwhmPs) / (2 * Math.sqrt(2 * Math.LN2));
    tof = {
      bins: p.tofBins,
      binWidthMm: +((diag + 6 * sigma) / p.tofBins).toFixed(3),
      fwhmPs: p.tofFwhmPs,
    };
  }
  const opts = { grid, muMap: mu, multiplicative: ph.norm };
  const model = sinogramForwardModel(gpu, scanner, { ...opts, tof });
  const truthDev = gpu.array(grid.shape, pet);
  const sim = await simulateCounts(model, truthDev, {
    trueCounts: ph.trueCounts,
    randomsFraction: p.randomsFraction,
    seed: ctx.seed,
  });
  truthDev.destroy();
  model.destroy();
  await writeNifti(`${ctx.outDir}/truth.nii`, { data: pet.map((v) => v * sim.scale), grid });
  await writeNifti(`${ctx.outDir}/mu.nii`, { data: mu, grid }, { description: "mu, 1/mm" });
  await writeNifti(`${ctx.outDir}/mr.nii`, { data: mr, grid }, { description: "T1-like MR" });
  await writeSinogram(`${ctx.outDir}/prompts.npy`, {
    data: sim.counts,
    scanner,
    quantity: "prompts",
    description: ph.note,
    tof,
  });
  await writeSinogram(`${ctx.outDir}/additive.npy`, {
    data: sim.additive,
    scanner,
    quantity: "additive",
    tof,
  });
  if (p.listMode) {
    const events = sampleListMode(scanner, sim.counts, {
      seed: subSeed(ctx.seed, "listmode"),
      tof: tof && tofParameters(tof),
      counts: true,
    });
    await writeListMode(`${ctx.outDir}/events.npy`, {
      events,
      scanner,
      tof,
      description: ph.note,
    });
  }
  if (ph.norm) {
    await writeSinogram(`${ctx.outDir}/norm.npy`, {
      data: ph.norm,
      scanner,
      quantity: "normalisation-factors",
    });
  }
  ctx.progress(1, 1);
  ctx.log(
    `simulated ${
      sim.counts.reduce((a, b) => a + b, 0)
    } prompts (${ph.note}), sinogram ${scanner.sinogramShape}`,
  );
}
