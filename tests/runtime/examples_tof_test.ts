// The TOF / list-mode path of the example recipes: simulate_study with tofFwhmPs and listMode,
// then osem on the TOF prompts and on the events (which must agree: same counts, same model).
import { assert, assertEquals } from "./_assert.ts";
import { runSandboxed } from "../../core/runtime/mod.ts";
import { readListMode, readNifti, readSinogram, writeSinogram } from "../../core/io/mod.ts";
import { histogramListMode } from "../../core/io/listmode.ts";
import { ROOT } from "./_helpers.ts";

async function run(
  name: string,
  outDir: string,
  inputs: string[],
  params: Record<string, unknown>,
) {
  const r = await runSandboxed({
    recipe: `${ROOT}/examples/${name}.ts`,
    inputs,
    outDir,
    params,
    seed: 3,
    timeoutMs: 120_000,
    memoryMb: 2048,
  });
  assertEquals(r.ok, true, `${name}: ${r.reason}: ${r.error}`);
}

Deno.test("examples simulate_study (TOF + list mode) → osem on TOF prompts = osem on the events = map (β 0), with norm.npy", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "petrel-tof-" });
  try {
    await run("simulate_study", `${tmp}/sim`, [], {
      size: 16,
      voxelMm: 8,
      crystals: 48,
      trueCounts: 2e4,
      tofFwhmPs: 300,
      tofBins: 9,
      listMode: true,
    });
    const prompts = await readSinogram(`${tmp}/sim/prompts.npy`);
    assertEquals(prompts.shape, [23, 24, 1, 9]);
    const lm = await readListMode(`${tmp}/sim/events.npy`);
    // The events are the prompts, event by event.
    const h = histogramListMode(lm.scanner!, lm.events, { tof: lm.tof });
    assertEquals(h.dropped, 0);
    assert(h.data.every((v, i) => v === prompts.data[i]), "events do not histogram to the prompts");
    // a non-TOF normalisation beside both: the sinogram model repeats it over the TOF bins, the
    // list-mode model gathers it per event, so the two must still agree
    const norm = Float32Array.from(
      { length: prompts.scanner.bins },
      (_, i) => 0.8 + 0.04 * (i % 11),
    );
    await writeSinogram(`${tmp}/sim/norm.npy`, {
      data: norm,
      scanner: prompts.scanner,
      quantity: "normalisation-factors",
    });
    const params = { size: 16, voxelMm: 8, iterations: 2, subsets: 4 };
    await run("osem", `${tmp}/sino`, [`${tmp}/sim`], params);
    await run("osem", `${tmp}/lm`, [`${tmp}/sim`], { ...params, data: "listmode" });
    const a = (await readNifti(`${tmp}/sino/osem.nii`)).data;
    const b = (await readNifti(`${tmp}/lm/osem.nii`)).data;
    let d = 0, m = 0;
    for (let i = 0; i < a.length; i++) {
      d = Math.max(d, Math.abs(a[i] - b[i]));
      m = Math.max(m, Math.abs(a[i]));
    }
    assert(m > 0 && d <= 1e-4 * m, `list mode differs from the TOF sinogram: ${d} of ${m}`);
    // recon map on TOF prompts uses the TOF model: with β = 0 MAP-EM is OSEM, update for update
    // (it once failed with "additive has 4968 values, expected one per bin")
    await run("map_rdp", `${tmp}/map`, [`${tmp}/sim`], { ...params, beta: 0 });
    const c = (await readNifti(`${tmp}/map/map_rdp.nii`)).data;
    let dm = 0;
    for (let i = 0; i < a.length; i++) dm = Math.max(dm, Math.abs(a[i] - c[i]));
    assert(dm <= 1e-4 * m, `TOF MAP-EM (β 0) differs from TOF OSEM: ${dm} of ${m}`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
