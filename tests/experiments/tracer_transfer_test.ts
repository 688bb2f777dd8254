/**
 * The experiment's bookkeeping, in-process: every finished condition lands in rows.jsonl at
 * once, and `--resume` keeps those rows and runs only the missing methods (on the procedural
 * phantom, with the cheap classical methods, so no diffusion run is needed). Lesion rows carry
 * recovery and CRC per lesion class.
 */
import {
  deepEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { parseSettings, runExperiment } from "../../experiments/tracer_transfer/cli.ts";
import { lesionKind } from "../../experiments/tracer_transfer/condition.ts";

async function transfer(out: string, ...args: string[]): Promise<string> {
  const lines: string[] = [];
  const s = parseSettings([
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
    "--simulator",
    "operator",
    "--out",
    out,
    ...args,
  ]);
  await runExperiment(s, { log: (m) => lines.push(m) });
  return lines.join("\n");
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
    assert(one[0].simulator === "operator");
    // every lesion reaching into the stack is scored, the stack's own (hot) one among them
    const les = one[0].lesions as { kind: string; recovery: number; crc: number }[];
    assert(les.length >= 1 && les.every((l) => Number.isFinite(l.recovery) && l.recovery > 0));
    assert(les.some((l) => l.kind.startsWith("hot")));

    const second = await transfer(out, "--methods", "osem,map-rdp", "--resume");
    assert(/resuming: 1 rows/.test(second), second);
    assert(!/ osem +PSNR/.test(second), "the finished OSEM condition did not run again");
    const two = await rows(out);
    assertEquals(two.map((r) => r.method), ["osem", "map-rdp"]);
    assertEquals(two[0], one[0], "the kept row is unchanged");
    const summary = JSON.parse(await Deno.readTextFile(`${out}/results.json`));
    assertEquals(summary.rows.length, 2);
    const md = await Deno.readTextFile(`${out}/results.md`);
    assert(/operator simulator/.test(md) && /lesions: recovery \(CRC\)/.test(md), md);
    assert((await Deno.stat(`${out}/operator.fdg.png`)).size > 0, "figure rebuilt from fig/*.npy");

    // a row cut by a kill mid-write is ignored (and that condition runs again), not fatal
    await Deno.writeTextFile(`${out}/rows.jsonl`, '{"subject":"51","cen', { append: true });
    const third = await transfer(out, "--methods", "osem,map-rdp", "--resume");
    assert(/not a complete JSON row/.test(third), third);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("tracer_transfer settings: defaults, levers, and readable refusals", () => {
  const s = parseSettings([]);
  assertEquals(s.simulators, ["fine"]);
  assertEquals(s.subjects, ["51", "52", "53"]);
  assert(s.ddip.steps === 25 && s.ddip.lr === undefined, "lr from the library (auto)");
  assert(s.levers.dc.finalEmIterations === 10 && s.levers.late.betaEnd === 1e-3);
  assert(s.levers.dd.finalEmRegion === "disagreement" && s.levers.dd.disagreementThreshold === 3);
  assertThrows(() => parseSettings(["--simulator", "exact"]), /--simulator must be/);
  assertThrows(() => parseSettings(["--provider", "cuda"]), /--provider must be one of/);
  assertThrows(() => parseSettings(["--steps", "many"]), /--steps must be a number/);
  assert(lesionKind({ centreMm: [0, 0, 0], radiusMm: 4, petFactor: 2 }) === "hot mr-invisible");
  assert(
    lesionKind({ centreMm: [0, 0, 0], radiusMm: 4, petFactor: 0.3, mrFactor: 0.75 }) ===
      "cold mr-visible",
  );
});
