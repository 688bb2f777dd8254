/**
 * The experiment script's bookkeeping: every finished condition lands in rows.jsonl at once, and
 * `--resume` keeps those rows and runs only the missing methods (on the procedural phantom, with
 * the cheap classical methods, so no diffusion run is needed).
 */
import { deepEqual as assertEquals, ok as assert } from "node:assert/strict";

const ROOT = new URL("../..", import.meta.url).pathname;

async function transfer(out: string, ...args: string[]) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `--config=${ROOT}/deno.json`,
      `${ROOT}/examples/tracer_transfer.ts`,
      "--brainweb",
      `${out}/no-brainweb`, // absent: the procedural phantom stands in
      "--subjects",
      "51",
      "--tracers",
      "fdg",
      "--counts",
      "100000",
      "--realisations",
      "1",
      "--stacks",
      "1",
      "--out",
      out,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(r.stderr);
  assert(r.code === 0, `tracer_transfer exited ${r.code}:\n${stderr}`);
  return stderr;
}

async function rows(out: string): Promise<Record<string, unknown>[]> {
  return (await Deno.readTextFile(`${out}/rows.jsonl`)).split("\n").filter(Boolean).map((l) =>
    JSON.parse(l)
  );
}

Deno.test("tracer_transfer writes rows per condition and --resume runs only what is missing", async () => {
  const out = await Deno.makeTempDir({ prefix: "petrel-transfer-" });
  try {
    const first = await transfer(out, "--methods", "osem");
    assert(/procedural brain phantom/.test(first), "says it fell back to the phantom");
    const one = await rows(out);
    assertEquals(one.map((r) => r.method), ["osem"]);
    assert(Number.isFinite(one[0].psnr as number) && (one[0].psnr as number) > 10);

    const second = await transfer(out, "--methods", "osem,map-rdp", "--resume");
    assert(/resuming: 1 rows/.test(second), second);
    assert(!/ osem +PSNR/.test(second), "the finished OSEM condition did not run again");
    const two = await rows(out);
    assertEquals(two.map((r) => r.method), ["osem", "map-rdp"]);
    assertEquals(two[0], one[0], "the kept row is unchanged");
    const summary = JSON.parse(await Deno.readTextFile(`${out}/results.json`));
    assertEquals(summary.rows.length, 2);
    assert((await Deno.stat(`${out}/fdg.png`)).size > 0, "the figure is rebuilt from fig/*.npy");

    // a row cut by a kill mid-write is ignored (and that condition runs again), not fatal
    await Deno.writeTextFile(`${out}/rows.jsonl`, '{"subject":"51","cen', { append: true });
    const third = await transfer(out, "--methods", "osem,map-rdp", "--resume");
    assert(/not a complete JSON row/.test(third), third);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
