import { assert, assertEquals, assertMatch, assertStringIncludes } from "../runtime/_assert.ts";
import { parseSets, splitBenchArgs } from "../../cli/main.ts";
import { cli } from "./_cli.ts";
import { EXIT, exitCodeFor } from "../../cli/exit_codes.ts";
import { etaSeconds, formatDuration, progressReporter } from "../../cli/progress.ts";
import { valueStats } from "../../cli/info.ts";
import { encodeNpy } from "../../core/io/npy.ts";
import { encodeNifti } from "../../core/io/nifti.ts";
import { centredGrid } from "../../core/geometry/grid.ts";
import { RingScanner } from "../../core/geometry/scanner.ts";
import { writeSinogram } from "../../core/io/sinogram.ts";
import { writeInterfileImage } from "../../core/io/interfile.ts";
import { fixture, ROOT, scratch } from "../runtime/_helpers.ts";

Deno.test("cli: --help and --version exit 0; no command and unknown commands exit 2", async () => {
  let r = await cli("--help");
  assertEquals(r.code, EXIT.ok);
  assertStringIncludes(r.out, "Usage: petrel");
  for (const c of ["run", "simulate", "recon", "info", "verify", "bench"]) {
    assertStringIncludes(r.out, c);
    const h = await cli(c, "--help");
    assertEquals(h.code, EXIT.ok, c);
    assertStringIncludes(h.out, `Usage: petrel ${c}`);
  }
  r = await cli("--version");
  assertEquals([r.code, r.out.trim()], [EXIT.ok, "0.1.0"]);
  assertEquals((await cli()).code, EXIT.usage);
  r = await cli("bogus");
  assertEquals(r.code, EXIT.usage);
  assertStringIncludes(r.err, "unknown command 'bogus'");
});

Deno.test("cli: parsing errors exit 2 with a message", async () => {
  await using s = await scratch();
  const echo = fixture("echo");
  const cases: [string[], RegExp][] = [
    [["run", echo, "--in", s.inDir], /required option '-o, --out <dir>'/],
    [["run", "--out", s.outDir], /missing required argument 'recipe'/],
    [["run", echo, "--out", s.outDir, "--set", "count"], /--set expects key=value, got "count"/],
    [["run", echo, "--out", s.outDir, "--timeout", "soon"], /--timeout must be a positive number/],
    [["run", echo, "--out", s.outDir, "--seed", "1.5"], /--seed must be an integer/],
    [["run", echo, "--out", s.outDir, "--frobnicate"], /unknown option '--frobnicate'/],
    [
      ["recon", "fbp", "--out", s.outDir],
      /value 'fbp' is invalid for argument 'algorithm'.*osem, map, ddip/,
    ],
  ];
  for (const [args, re] of cases) {
    const r = await cli(...args);
    assertEquals(r.code, EXIT.usage, args.join(" "));
    assertMatch(r.err, re, args.join(" "));
  }
  assertEquals(await Deno.stat(s.outDir).then(() => true, () => false), false);
});

Deno.test("cli run: ok (0), text and --json results, --set coercion, --force", async () => {
  await using s = await scratch();
  let r = await cli(
    "run",
    fixture("echo"),
    "--in",
    s.inDir,
    "--out",
    s.outDir,
    "-s",
    "count=3",
    "-q",
  );
  assertEquals(r.code, EXIT.ok, r.err);
  assertMatch(r.out, /^ok: .*echo\.ts finished in/);
  assertStringIncludes(r.out, "sub/values.f32 (12 bytes)");
  r = await cli("run", fixture("echo"), "--in", s.inDir, "--out", s.outDir, "--json");
  assertEquals(r.code, EXIT.input);
  assertMatch(JSON.parse(r.out).error, /is not empty/);
  r = await cli(
    "run",
    fixture("echo"),
    "--in",
    s.inDir,
    "--out",
    s.outDir,
    "--force",
    "--json",
    "--seed",
    "9",
    "--set",
    "scale=[2,3]",
  );
  assertEquals(r.code, EXIT.ok, r.err);
  const j = JSON.parse(r.out);
  assertEquals([j.ok, j.exitStatus], [true, 0]);
  assertEquals(j.outputs.map((o: { path: string }) => o.path), [
    "copy.bin",
    "info.json",
    "sub/values.f32",
  ]);
  const m = JSON.parse(await Deno.readTextFile(j.manifestPath));
  assertEquals([m.seed, m.params.scale], [9, [2, 3]]);
  assertStringIncludes(r.err, "progress 8/8 (100%)");
  assertStringIncludes(r.err, "wrote 8 values");
});

Deno.test("cli run: --force refuses folders that are not petrel runs", async () => {
  await using s = await scratch();
  const r = await cli(
    "run",
    fixture("echo"),
    "--in",
    s.inDir,
    "--out",
    `${s.root}/other`,
    "--force",
  );
  assertEquals(r.code, EXIT.usage);
  assertStringIncludes(r.err, "--force only empties folders that hold a previous petrel run");
  assertEquals(await Deno.readTextFile(s.secret), "another user's data");
});

Deno.test("cli run: exit codes 2 (params), 3 (input), 4 (permission), 5 (limits), 1 (recipe)", async () => {
  await using s = await scratch();
  const cases: [string, string[], number, RegExp][] = [
    ["echo", ["--set", "count=many"], EXIT.usage, /invalid parameters: count/],
    ["missing_input", [], EXIT.input, /nope\.nii/],
    [
      "read_passwd",
      [],
      EXIT.permission,
      /permission denied: the recipe tried to read "\/etc\/passwd"/,
    ],
    ["infinite_loop", ["--timeout", "2"], EXIT.limit, /wall-clock limit of 2 s/],
    ["output_flood", ["--max-output", "4"], EXIT.limit, /output quota/],
    ["throws", [], EXIT.other, /RangeError: iterations must be positive/],
  ];
  for (const [name, extra, code, re] of cases) {
    const out = `${s.root}/out_${name}`;
    const r = await cli("run", fixture(name), "--in", s.inDir, "--out", out, ...extra);
    assertEquals(r.code, code, `${name}: ${r.err}`);
    assertMatch(r.err, re, name);
  }
  const r = await cli("run", `${s.root}/nope.ts`, "--out", `${s.root}/o`);
  assertEquals(r.code, EXIT.input);
  assertMatch(r.err, /recipe ".*nope\.ts" does not exist/);
});

Deno.test("cli run <recipe> --help lists the recipe's parameters", async () => {
  const r = await cli("run", fixture("echo"), "--help");
  assertEquals(r.code, EXIT.ok, r.err);
  assertStringIncludes(r.out, "Usage: petrel run");
  assertStringIncludes(r.out, "Copies data.bin and writes seeded random numbers");
  assertMatch(r.out, /--set count=<integer>\s+how many random numbers; default 8/);
  assertMatch(r.out, /--set label=<string>\s+default "echo"/);
  const bad = await cli("run", "/nonexistent/recipe.ts", "--help");
  assertEquals(bad.code, EXIT.input);
});

Deno.test("cli verify: bit-identical rerun exits 0; JSON report", async () => {
  await using s = await scratch();
  const run = await cli("run", fixture("echo"), "--in", s.inDir, "--out", s.outDir, "-q");
  assertEquals(run.code, EXIT.ok, run.err);
  const fixtures = fixture("echo").replace(/\/[^/]+$/, "");
  // The fixture recipe lies outside the default roots: allowed explicitly.
  let r = await cli("verify", s.outDir, "--out", `${s.root}/rerun`, "-q");
  assertEquals(r.code, EXIT.input, r.err);
  assertMatch(r.err, /outside the folders a manifest may name/);
  r = await cli("verify", s.outDir, "--out", `${s.root}/rerun`, "-q", "--allow-root", fixtures);
  assertEquals(r.code, EXIT.ok, r.err + r.out);
  assertStringIncludes(r.out, "bit-identical: yes");
  assertStringIncludes(r.err, `manifest asks to read: ${fixture("echo")}`);
  r = await cli("verify", `${s.outDir}/manifest.json`, "--json", "-q", "--allow-root", fixtures);
  const j = JSON.parse(r.out);
  assertEquals([r.code, j.bitIdentical, j.sameAdapter, j.rerunRemoved], [
    EXIT.ok,
    true,
    true,
    true,
  ]);
  assertEquals(await Deno.stat(j.rerunDir).then(() => true, () => false), false);
  r = await cli("verify", `${s.root}/missing.json`);
  assertEquals(r.code, EXIT.input);
});

Deno.test("cli info: .npy and .nii shape, geometry and statistics", async () => {
  await using s = await scratch();
  const data = Float32Array.from({ length: 4 * 3 * 2 }, (_, i) => (i % 5) - 1);
  await Deno.writeFile(`${s.root}/a.npy`, encodeNpy({ data, shape: [4, 3, 2] }));
  const grid = centredGrid([4, 3, 2], [2, 2.5, 3]);
  await Deno.writeFile(`${s.root}/a.nii`, encodeNifti({ data, grid }));
  const r = await cli("info", `${s.root}/a.npy`, `${s.root}/a.nii`, "--json");
  assertEquals(r.code, EXIT.ok, r.err);
  const [npy, nii] = JSON.parse(r.out);
  // independent statistics
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  let nonzero = 0;
  for (const v of data) {
    sum += v;
    min = Math.min(min, v);
    max = Math.max(max, v);
    if (v !== 0) nonzero++;
  }
  for (const info of [npy, nii]) {
    assertEquals(info.shape, [4, 3, 2]);
    assertEquals([info.stats.sum, info.stats.min, info.stats.max], [sum, min, max]);
    assertEquals(info.stats.nonzero, nonzero);
    assert(Math.abs(info.stats.mean - sum / data.length) < 1e-12);
  }
  assertEquals([npy.format, nii.format], ["npy", "nifti"]);
  assertEquals(nii.grid.voxelSizeMm, [2, 2.5, 3]);
  assertEquals(nii.grid.originMm, grid.originMm);
  const text = await cli("info", `${s.root}/a.nii`);
  assertMatch(text.out, /shape\s+\[4, 3, 2\]/);
  assertMatch(text.out, /voxel\s+\[2, 2\.5, 3\] mm/);
  const bad = await cli("info", `${s.root}/nope.nii`);
  assertEquals(bad.code, EXIT.input);
  await Deno.writeTextFile(`${s.root}/broken.npy`, "not numpy");
  assertEquals((await cli("info", `${s.root}/broken.npy`)).code, EXIT.input);
});

Deno.test("cli: the petrel.ts entry point returns the exit status to the shell", async () => {
  await using s = await scratch();
  const run = (...args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `--config=${ROOT}/deno.json`, `${ROOT}/petrel.ts`, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
  const denied = await run("run", fixture("env"), "--out", s.outDir);
  assertEquals(denied.code, EXIT.permission);
  assertStringIncludes(new TextDecoder().decode(denied.stderr), "environment variable HOME");
  assertEquals((await run("info")).code, EXIT.usage);
});

Deno.test("exitCodeFor maps every sandbox outcome", () => {
  const base = { ok: false, exitCode: 1, durationMs: 1 };
  assertEquals(exitCodeFor({ ...base, ok: true, exitCode: 0 }), 0);
  assertEquals(exitCodeFor({ ...base, reason: "permission" }), 4);
  for (const reason of ["timeout", "memory", "output-quota"] as const) {
    assertEquals(exitCodeFor({ ...base, reason }), 5);
  }
  assertEquals(exitCodeFor({ ...base, reason: "cancelled" }), 130);
  assertEquals(exitCodeFor({ ...base, reason: "error", errorKind: "params" }), 2);
  assertEquals(exitCodeFor({ ...base, reason: "error", errorKind: "input" }), 3);
  assertEquals(exitCodeFor({ ...base, reason: "error", errorKind: "recipe" }), 1);
});

Deno.test("parseSets keeps values as strings and splits at the first '='", () => {
  assertEquals(parseSets(["a=1", "expr=x=y", "empty="]), { a: "1", expr: "x=y", empty: "" });
});

Deno.test("progress: plain lines are throttled, the bar shows percent and ETA", () => {
  let t = 0;
  let plain = "";
  const p = progressReporter({
    write: (s) => (plain += s),
    tty: false,
    now: () => t,
    label: "osem",
  });
  t = 1000;
  p.update(1, 4); // 1 s for 1 of 4 → ETA 3 s
  t = 1500;
  p.update(2, 4); // throttled
  t = 4000;
  p.update(4, 4); // final line always printed
  p.finish();
  assertEquals(plain, "osem 1/4 (25%) elapsed 1s ETA 3s\nosem 4/4 (100%) elapsed 4s ETA 0s\n");
  let bar = "";
  const b = progressReporter({ write: (s) => (bar += s), tty: true, now: () => t, width: 10 });
  t += 2000;
  b.update(1, 2);
  assertStringIncludes(bar, "[█████░░░░░]  50% 1/2 ETA 2s");
  b.log("hello");
  assertStringIncludes(bar, "\r\x1b[2Khello\n");
  b.finish();
  assert(bar.endsWith("\r\x1b[2K"));
  // Start-up time (10 s before the first step) does not count in the rate: 1 s/step → ETA 9 s.
  let slow = "";
  t = 0;
  const q = progressReporter({ write: (s) => (slow += s), tty: false, now: () => t });
  t = 10_000;
  q.update(1, 11);
  t = 11_000;
  q.update(2, 11);
  assert(slow.endsWith("2/11 (18%) elapsed 11s ETA 9s\n"), slow);
  assertEquals(formatDuration(3725), "1:02:05");
  assertEquals(formatDuration(65), "1:05");
  assertEquals(etaSeconds(0, 10, 1000), NaN);
});

Deno.test("valueStats: NaNs counted apart", () => {
  const s = valueStats([1, NaN, 3]);
  assertEquals([s.count, s.nan, s.mean, s.min, s.max, s.std], [3, 1, 2, 1, 3, 1]);
});

Deno.test("cli simulate/recon --help list the built-in recipe's parameters", async () => {
  const sim = await cli("simulate", "--help");
  assertEquals(sim.code, EXIT.ok, sim.err);
  assertMatch(
    sim.out,
    /--set trueCounts=<number>\s+expected true coincidences \(cylinder 2e5; brain/,
  );
  assertMatch(sim.out, /--set phantom=<string>.*default "cylinder"/);
  const ddip = await cli("recon", "ddip", "--help");
  assertEquals(ddip.code, EXIT.ok, ddip.err);
  // the defaults are the library's (DDIP_DEFAULTS, core/recon/ddip/config.ts)
  assertMatch(ddip.out, /--set steps=<integer>.*default 25\n/);
  assertMatch(ddip.out, /--set lr=<value>.*default "auto"\n/);
  assertMatch(ddip.out, /--set scaleHeadroom=<number>.*default 1\.8\n/);
  const map = await cli("recon", "map", "--help");
  assertEquals(map.code, EXIT.ok, map.err);
  assertMatch(map.out, /--set beta=<number>\s+prior strength β; default 0\.5/);
});

Deno.test("cli info: sinograms (sidecar) show the scanner; Interfile images their grid", async () => {
  await using s = await scratch();
  const scanner = new RingScanner({
    name: "tiny",
    radiusMm: 80,
    crystalsPerRing: 32,
    rings: 2,
    ringSpacingMm: 4,
    radialBins: 15,
    maxRingDifference: 1,
  });
  const data = Float32Array.from({ length: scanner.bins }, (_, i) => i % 7);
  await writeSinogram(`${s.root}/y.npy`, { data, scanner, quantity: "prompts" });
  const grid = centredGrid([4, 3, 2], [2, 2, 3]);
  await writeInterfileImage(`${s.root}/x.hv`, { data: new Float32Array(24).fill(2), grid });
  const r = await cli("info", `${s.root}/y.npy`, `${s.root}/y.json`, `${s.root}/x.hv`, "--json");
  assertEquals(r.code, EXIT.ok, r.err);
  const [npy, side, hv] = JSON.parse(r.out);
  for (const info of [npy, side]) {
    assertEquals(info.shape, [15, 16, 4]);
    assertEquals(info.sinogram.quantity, "prompts");
    assertEquals(info.sinogram.scanner.views, 16);
    assertEquals(info.sinogram.scanner.planes, 4); // segments 0 (2 planes), −1, +1
    assertEquals(info.stats.sum, data.reduce((a, b) => a + b, 0));
  }
  assertEquals([hv.format, hv.shape, hv.grid.voxelSizeMm, hv.stats.mean], [
    "interfile",
    [4, 3, 2],
    [2, 2, 3],
    2,
  ]);
  const text = await cli("info", `${s.root}/y.npy`);
  assertMatch(text.out, /scanner\s+"tiny": radius 80 mm, 32 crystals × 2 rings/);
});

Deno.test("cli bench: --list names bench/*.ts; an unknown benchmark is a usage error", async () => {
  const expected: string[] = [];
  for await (const e of Deno.readDir(`${ROOT}/bench`)) {
    if (e.isFile && e.name.endsWith(".ts")) expected.push(e.name.replace(/\.ts$/, ""));
  }
  const list = await cli("bench", "--list");
  assertEquals(list.code, EXIT.ok);
  assertEquals(list.out.trim().split("\n"), expected.sort());
  const bad = await cli("bench", "no_such_bench");
  assertEquals(bad.code, EXIT.usage);
  assertStringIncludes(bad.err, "no benchmark no_such_bench.ts in bench/");
});

Deno.test("splitBenchArgs: names first, then everything for the benchmarks", () => {
  assertEquals(splitBenchArgs(["projector_bench", "--cases", "2d,stack3", "--json"]), {
    names: ["projector_bench"],
    passThrough: ["--cases", "2d,stack3", "--json"],
  });
  assertEquals(splitBenchArgs(["--", "--json"]), { names: [], passThrough: ["--json"] });
  assertEquals(splitBenchArgs(["a", "b"]), { names: ["a", "b"], passThrough: [] });
});
