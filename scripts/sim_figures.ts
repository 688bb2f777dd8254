/**
 * Writes the simulation figures of docs/data.md: one PNG montage per tracer (PET, MR, μ-map in
 * columns, three axial slices in rows) for a BrainWeb subject (when ../shared is present) and for
 * the procedural brain phantom, plus the NEMA IEC and Derenzo phantoms.
 *
 * ```sh
 * deno run -A scripts/sim_figures.ts [--out docs/figures] [--brainweb ../shared/data/brainweb]
 * ```
 *
 * @module
 */
import { centredGrid } from "../core/geometry/grid.ts";
import { MMR_VOXEL_MM } from "../core/geometry/scanner.ts";
import { type MontageImage, writePngMontage } from "../core/io/png.ts";
import { datasetGrid, readLabelVolume } from "../core/sim/dataset.ts";
import { brainPhantomStudy } from "../core/sim/phantom_brain.ts";
import { derenzoPhantom, nemaIecPhantom } from "../core/sim/phantoms.ts";
import { type SimulatedStudy, simulateStudy } from "../core/sim/simulate.ts";
import { TRACERS } from "../core/sim/tracers.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

async function montages(s: SimulatedStudy, prefix: string, slices: number[]): Promise<void> {
  const shape = s.grid.shape;
  for (const t of TRACERS) {
    const images: MontageImage[] = [
      { data: s.activity[t]!, shape, title: t.toUpperCase(), colormap: "inferno" },
      { data: s.mr!, shape, title: "MR T1" },
      { data: s.mu!, shape, title: "MU 1/MM", window: { min: 0, max: 0.014 } },
    ];
    const path = `${prefix}_${t}.png`;
    await writePngMontage(path, images, { slices, scale: 1 });
    console.log(path);
  }
}

if (import.meta.main) {
  const out = arg("out", "docs/figures");
  const bw = arg("brainweb", "../shared/data/brainweb");
  await Deno.mkdir(out, { recursive: true });
  const tracers = [...TRACERS];
  const phantom = brainPhantomStudy({ dims: 3, seed: 1, tracers, lesions: 2 });
  await montages(phantom, `${out}/sim_phantom`, [30, 44, 58]);
  let subject: string | null = `${bw}/subject05_crisp.nii.gz`;
  try {
    await Deno.stat(subject);
  } catch {
    console.log(`${subject} not found: BrainWeb figures skipped`);
    subject = null;
  }
  if (subject) {
    const vol = await readLabelVolume(subject);
    const s = simulateStudy(vol, { grid: datasetGrid(), tracers, seed: 1, lesions: 2 });
    await montages(s, `${out}/sim_brainweb05`, [35, 48, 60]);
  }
  const g = centredGrid([160, 160, 1], [MMR_VOXEL_MM, MMR_VOXEL_MM, MMR_VOXEL_MM]);
  const nema = nemaIecPhantom(g);
  const der = derenzoPhantom(g);
  await writePngMontage(`${out}/sim_nema_derenzo.png`, [
    { data: nema.activity, shape: g.shape, title: "NEMA IEC", colormap: "inferno" },
    { data: nema.mu, shape: g.shape, title: "MU" },
    { data: der.activity, shape: g.shape, title: "DERENZO", colormap: "inferno" },
  ], { scale: 1, slices: [0] });
  console.log(`${out}/sim_nema_derenzo.png`);
}
