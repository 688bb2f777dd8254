/**
 * Writes a 2.5D stacks training set (petrel-stacks-v1, see docs/data.md) from BrainWeb labels.
 *
 * ```sh
 * deno run -A scripts/build_dataset.ts --out out/datasets/fdg_train --stride 3 \
 *   --subjects 05,06,18,38,42,43,44,45,46,47,48,50
 * ```
 *
 * @module
 */
import { datasetCli } from "../core/sim/dataset.ts";

if (import.meta.main) {
  const m = await datasetCli(Deno.args);
  console.log(`${m.count} stacks of ${m.subjects.length} subjects (${m.tracer})`);
}
