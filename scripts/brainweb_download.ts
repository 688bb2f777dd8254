/**
 * Downloads BrainWeb crisp label models (MINC1) into a cache, checks sha256 and converts them to
 * uint8 NIfTI for `scripts/build_dataset.ts --brainweb <cache>`. Needs internet access.
 *
 * ```sh
 * deno run -A scripts/brainweb_download.ts --cache ~/.cache/petrel/brainweb --subjects 04,05
 * ```
 *
 * @module
 */
import { BRAINWEB_SUBJECTS, fetchBrainwebSubject } from "../core/sim/brainweb.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

if (import.meta.main) {
  const cacheDir = arg("cache", `${Deno.env.get("HOME") ?? "."}/.cache/petrel/brainweb`);
  const subjects = arg("subjects", BRAINWEB_SUBJECTS.join(",")).split(",").filter((s) => s);
  const baseUrl = arg("url", "") || undefined;
  for (const s of subjects) {
    const r = await fetchBrainwebSubject(s, { cacheDir, baseUrl, log: console.error });
    console.log(`${r.niftiPath} sha256(mnc.gz)=${r.sha256}${r.fromCache ? " (cached)" : ""}`);
  }
}
