/**
 * Writes one simulated study as NIfTI volumes (activity per tracer, MR, μ, labels, regions) on the
 * 128 × 128 × 87 grid at 2.086 mm: a BrainWeb subject, or the procedural phantom.
 *
 * ```sh
 * deno run -A scripts/sim_study.ts --subject 51 --tracers fdg,amyloid_neg --seed 1 --lesions 2 \
 *   --out out/studies/subject51
 * deno run -A scripts/sim_study.ts --phantom --seed 3 --out out/studies/phantom3
 * ```
 *
 * @module
 */
import { datasetGrid, readLabelVolume, writeStudy } from "../core/sim/dataset.ts";
import { brainPhantomStudy } from "../core/sim/phantom_brain.ts";
import { simulateStudy } from "../core/sim/simulate.ts";
import { type TracerName, TRACERS } from "../core/sim/tracers.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

if (import.meta.main) {
  const tracers = arg("tracers", TRACERS.join(",")).split(",") as TracerName[];
  const seed = Number(arg("seed", "1"));
  const lesions = Number(arg("lesions", "0"));
  const out = arg("out", "out/studies/study");
  const grid = datasetGrid();
  const phantom = Deno.args.includes("--phantom");
  const subject = arg("subject", "51");
  const study = phantom
    ? brainPhantomStudy({ dims: 3, seed, tracers, lesions, grid })
    : simulateStudy(
      await readLabelVolume(
        `${arg("brainweb", "../shared/data/brainweb")}/subject${subject}_crisp.nii.gz`,
      ),
      { grid, tracers, seed, lesions },
    );
  const paths = await writeStudy(out, study, {
    source: phantom ? "procedural phantom" : `BrainWeb subject${subject}`,
    command: ["scripts/sim_study.ts", ...Deno.args].join(" "),
  });
  for (const p of paths) console.log(p);
}
