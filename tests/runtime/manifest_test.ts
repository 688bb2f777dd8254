import { assert, assertEquals, assertMatch } from "./_assert.ts";
import {
  compareArrays,
  MANIFEST_FORMAT,
  parseParams,
  readManifest,
  verifyManifest,
} from "../../core/runtime/mod.ts";
import { permissionInfo } from "../../core/runtime/protocol.ts";
import { z } from "zod";
import denoJson from "../../deno.json" with { type: "json" };
import { fixture, ROOT, runFixture, scratch, webSha256 } from "./_helpers.ts";

/** The fixture recipes' folder: outside a manifest's default roots, so verify must be told. */
const FIXTURES = `${ROOT}/tests/fixtures/recipes`;

Deno.test("manifest records recipe, params, seed, versions, adapter, timings and correct hashes", async () => {
  await using s = await scratch();
  const r = await runFixture("echo", s, { seed: 7, params: { label: "m" } });
  assertEquals(r.ok, true, r.error);
  const m = await readManifest(r.manifestPath!);
  assertEquals(m.format, MANIFEST_FORMAT);
  assertEquals(m.recipe.path, fixture("echo"));
  assertEquals(m.recipe.sha256, await webSha256(fixture("echo")));
  assertEquals(m.params, { count: 8, label: "m", scale: [1, 2] });
  assertEquals(m.seed, 7);
  assertEquals(m.inputRoots, [await Deno.realPath(s.inDir)]);
  assertEquals(m.inputs.length, 1);
  assertEquals(m.inputs[0].bytes, 4);
  assertEquals(m.inputs[0].sha256, await webSha256(`${s.inDir}/data.bin`));
  assertEquals(m.outputs.map((o) => o.path), ["copy.bin", "info.json", "sub/values.f32"]);
  for (const o of m.outputs) {
    assertEquals(o.sha256, await webSha256(`${s.outDir}/${o.path}`), o.path);
    assertEquals(o.bytes, (await Deno.stat(`${s.outDir}/${o.path}`)).size);
  }
  assertEquals(m.versions.petrel, denoJson.version);
  assertEquals(m.versions.deno, Deno.version.deno);
  assertEquals(m.versions.onnxruntimeWeb, "1.30.0");
  assert(m.adapter !== null, "adapter recorded");
  assert(m.adapter.description.length > 0);
  assert(m.timings.totalMs >= (m.timings.runMs ?? 0));
  assert(Date.parse(m.timings.finishedAt) >= Date.parse(m.timings.startedAt));
  assertEquals(m.result, { ok: true, exitCode: 0 });
  assertEquals(m.limits, {
    timeoutMs: 30_000,
    memoryMb: 512,
    maxOutputBytes: 16 << 20,
    maxOutputEntries: 100_000,
    maxProcesses: 1024,
  });
});

Deno.test("verify: a rerun is bit-identical on the same adapter", async () => {
  await using s = await scratch();
  const r = await runFixture("echo", s, { seed: 3, params: { count: 16 } });
  assertEquals(r.ok, true, r.error);
  const report = await verifyManifest(r.manifestPath!, {
    outDir: `${s.root}/rerun`,
    allowRoots: [FIXTURES],
  });
  assertEquals(report.rerun.ok, true, report.rerun.error);
  assertEquals(report.sameAdapter, true);
  assertEquals(report.recipeChanged, false);
  assertEquals(report.changedInputs, []);
  assertEquals(report.outputs.map((o) => o.status), ["identical", "identical", "identical"]);
  assertEquals(report.bitIdentical, true);
});

Deno.test("verify: reports changed inputs and the size of numeric differences", async () => {
  await using s = await scratch();
  const r = await runFixture("echo", s, { seed: 3, params: { count: 16 } });
  // Make the rerun differ: another seed in the record, another input file.
  const m = JSON.parse(await Deno.readTextFile(r.manifestPath!));
  m.seed = 4;
  await Deno.writeTextFile(r.manifestPath!, JSON.stringify(m));
  await Deno.writeFile(`${s.inDir}/data.bin`, new Uint8Array([9]));
  const report = await verifyManifest(r.manifestPath!, {
    outDir: `${s.root}/rerun`,
    allowRoots: [FIXTURES],
  });
  assertEquals(report.changedInputs, [`${await Deno.realPath(s.inDir)}/data.bin`]);
  const byPath = Object.fromEntries(report.outputs.map((o) => [o.path, o]));
  assertEquals(byPath["copy.bin"].status, "different");
  assertMatch(byPath["copy.bin"].note!, /not a numeric format/);
  const v = byPath["sub/values.f32"];
  assertEquals(v.status, "different");
  const a = new Float32Array((await Deno.readFile(`${s.outDir}/sub/values.f32`)).buffer);
  const b = new Float32Array((await Deno.readFile(`${s.root}/rerun/sub/values.f32`)).buffer);
  let maxAbs = 0;
  let maxRef = 0;
  for (let i = 0; i < a.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(a[i] - b[i]));
    maxRef = Math.max(maxRef, Math.abs(a[i]));
  }
  assert(maxAbs > 0);
  assertEquals(v.differing, 16);
  assertEquals(v.maxAbsDiff, maxAbs);
  assertEquals(v.maxRelDiff, maxAbs / maxRef);
  assertEquals(report.bitIdentical, false);
});

Deno.test("verify: a record from another adapter is reported as such", async () => {
  await using s = await scratch();
  const r = await runFixture("echo", s);
  const m = JSON.parse(await Deno.readTextFile(r.manifestPath!));
  m.adapter.description = "NVIDIA H100 (recorded elsewhere)";
  await Deno.writeTextFile(r.manifestPath!, JSON.stringify(m));
  const report = await verifyManifest(r.manifestPath!, {
    outDir: `${s.root}/rerun`,
    allowRoots: [FIXTURES],
  });
  assertEquals(report.sameAdapter, false);
  assertEquals(report.bitIdentical, true); // this recipe does no floating-point GPU work
});

Deno.test("compareArrays: max abs/rel difference, NaN-aware", () => {
  const r = compareArrays([1, 2, -4, NaN], [1, 2.5, -3, NaN]);
  assertEquals(r, { maxAbsDiff: 1, maxRelDiff: 0.25, differing: 2 });
  assertEquals(compareArrays([0, 0], [0, 0]), { maxAbsDiff: 0, maxRelDiff: 0, differing: 0 });
});

Deno.test("parseParams: defaults, JSON coercion of --set strings, clear errors", () => {
  const schema = z.object({
    n: z.number().int().default(2),
    name: z.string().default("x"),
    fwhm: z.array(z.number()).length(3).optional(),
    flag: z.boolean().default(false),
  });
  assertEquals(parseParams(schema, {}), { n: 2, name: "x", flag: false });
  assertEquals(
    parseParams(schema, { n: "5", name: "12", fwhm: "[4,4,5]", flag: "true" }),
    { n: 5, name: "12", fwhm: [4, 4, 5], flag: true },
  );
  let msg = "";
  try {
    parseParams(schema, { n: "2.5" });
  } catch (e) {
    msg = (e as Error).message;
  }
  assertMatch(msg, /^invalid parameters: n: /);
  try {
    parseParams(schema, { m: 1 });
  } catch (e) {
    msg = (e as Error).message;
  }
  assertEquals(msg, "unknown parameter m; expected one of: n, name, fwhm, flag");
});

Deno.test("permissionInfo recognises Deno's permission errors", () => {
  const e = new Deno.errors.NotCapable(
    'Requires read access to "/etc/passwd", run again with the --allow-read flag',
  );
  assertEquals(permissionInfo(e), { permission: "read", resource: "/etc/passwd" });
  assertEquals(
    permissionInfo(
      new TypeError('Requires net access to "example.com:80", run again with the --allow-net flag'),
    ),
    { permission: "net", resource: "example.com:80" },
  );
  assertEquals(permissionInfo(new Error("unrelated")), null);
  const wrapped = new Error("cannot read /x: Deno was not granted read access", { cause: e });
  assertEquals(permissionInfo(wrapped), { permission: "read", resource: "/etc/passwd" });
});
