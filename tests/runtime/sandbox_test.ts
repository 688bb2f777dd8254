import { assert, assertEquals, assertMatch, assertStringIncludes } from "./_assert.ts";
import { readManifest, runSandboxed } from "../../core/runtime/mod.ts";
import { fixture, listTree, ROOT, runFixture, scratch, singleReluOnnx } from "./_helpers.ts";

/** Checks that a failed run touched nothing but its manifest, and the scratch area is intact. */
async function assertContained(s: Awaited<ReturnType<typeof scratch>>): Promise<void> {
  assertEquals(await listTree(s.outDir), ["manifest.json"]);
  assertEquals(await listTree(s.root), [
    "in/data.bin",
    "other/secret.txt",
    "out/manifest.json",
  ]);
  assertEquals(await Deno.readTextFile(s.secret), "another user's data");
}

const PERMISSION_CASES: [string, Record<string, unknown>, RegExp][] = [
  ["read_passwd", {}, /read "\/etc\/passwd"/],
  ["read_via_io", {}, /read "\/etc\/passwd"/],
  ["static_import", {}, /read "\/etc\/passwd"/],
  ["net", { how: "fetch" }, /network connection to example\.com:80/],
  ["net", { how: "connect" }, /network connection to 127\.0\.0\.1:80/],
  ["env", {}, /environment variable HOME/],
  ["run", {}, /start the program "\/bin\/sh"/],
  ["ffi", {}, /native library "libc\.so\.6"/],
  ["sys", {}, /system information \(hostname\)/],
  ["remote_import", {}, /import code from https:\/\/example\.com\/evil\.ts/],
  ["npm_import", {}, /import code from npm:left-pad/],
];

for (const [name, params, message] of PERMISSION_CASES) {
  Deno.test(`sandbox denies ${name} ${JSON.stringify(params)} with a clear error`, async () => {
    await using s = await scratch();
    const r = await runFixture(name, s, { params });
    assertEquals(r.ok, false);
    assertEquals(r.reason, "permission", r.error);
    assertMatch(r.error!, message);
    assertStringIncludes(r.error!, "permission denied");
    await assertContained(s);
    const m = await readManifest(r.manifestPath!);
    assertEquals(m.result.reason, "permission");
    assertEquals(m.outputs, []);
  });
}

Deno.test("sandbox denies reading another job's folder", async () => {
  await using s = await scratch();
  const r = await runFixture("read_path", s, { params: { path: s.secret } });
  assertEquals(r.reason, "permission");
  assertStringIncludes(r.error!, `read "${s.secret}"`);
  await assertContained(s);
});

Deno.test("sandbox denies reading petrel files outside its sources (lockfile, .git, server)", async () => {
  await using s = await scratch();
  for (const path of [`${ROOT}/deno.lock`, `${ROOT}/.git/config`, `${ROOT}/core/server/mod.ts`]) {
    await Deno.remove(s.outDir, { recursive: true }).catch(() => {});
    const r = await runFixture("read_path", s, { params: { path } });
    assertEquals(r.reason, "permission", `${path}: ${r.error}`);
  }
});

Deno.test("sandbox denies writing outside the output folder; nothing is written", async () => {
  await using s = await scratch();
  for (const target of [`${s.root}/victim.txt`, `${s.inDir}/data.bin`, s.secret]) {
    await Deno.remove(s.outDir, { recursive: true }).catch(() => {});
    const r = await runFixture("write_outside", s, { params: { target } });
    assertEquals(r.reason, "permission", r.error);
    assertStringIncludes(r.error!, `write "${target}"`);
    await assertContained(s);
  }
  assertEquals(await Deno.readFile(`${s.inDir}/data.bin`), new Uint8Array([1, 2, 3, 250]));
});

Deno.test("sandboxed imports never modify petrel's lockfile or node_modules", async () => {
  await using s = await scratch();
  const lockBefore = await Deno.readTextFile(`${ROOT}/deno.lock`);
  const r = await runFixture("npm_import", s);
  assertEquals(r.reason, "permission");
  assertEquals(await Deno.readTextFile(`${ROOT}/deno.lock`), lockBefore);
  const leftPad = await Deno.lstat(`${ROOT}/node_modules/left-pad`).then(() => true, () => false);
  assertEquals(leftPad, false);
});

Deno.test("sandbox stops an infinite loop at the wall-clock limit", async () => {
  await using s = await scratch();
  const r = await runFixture("infinite_loop", s, { timeoutMs: 2500 });
  assertEquals(r.reason, "timeout");
  assertStringIncludes(r.error!, "2.5 s");
  assert(r.durationMs >= 2500 && r.durationMs < 10_000, `took ${r.durationMs} ms`);
  await assertContained(s);
});

Deno.test("sandbox stops a JavaScript heap bomb and a typed-array bomb at the memory cap", async () => {
  for (const name of ["memory_bomb", "buffer_bomb"]) {
    await using s = await scratch();
    const r = await runFixture(name, s, { memoryMb: 300 });
    assertEquals(r.reason, "memory", `${name}: ${r.error}`);
    assertMatch(r.error!, /memory limit/);
    await assertContained(s);
  }
});

Deno.test("sandbox stops an output flood at the quota", async () => {
  await using s = await scratch();
  const quota = 8 << 20;
  const r = await runFixture("output_flood", s, { maxOutputBytes: quota });
  assertEquals(r.reason, "output-quota", r.error);
  assert(r.durationMs < 15_000);
  const m = await readManifest(r.manifestPath!);
  assertEquals(m.result.reason, "output-quota");
});

Deno.test("writeOutput refuses to exceed the quota", async () => {
  await using s = await scratch();
  const r = await runFixture("echo", s, { maxOutputBytes: 10, params: { count: 64 } });
  assertEquals(r.reason, "output-quota");
  // Either writeOutput's own check names the limit, or (when Deno itself writes cache files
  // first, as on a fresh machine) the `ulimit -f` backstop or the disk-use scan (a folder
  // takes a block) stops the run: all are clear.
  assertMatch(r.error!, /limit is 10|exceeded the output quota|output quota of 10 bytes/);
});

Deno.test("cancelling through the AbortSignal kills the run", async () => {
  await using s = await scratch();
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(), 1500);
  const r = await runFixture("infinite_loop", s, { signal: ac.signal });
  clearTimeout(t);
  assertEquals(r.reason, "cancelled");
  assert(r.durationMs < 10_000);
});

Deno.test("recipe errors, early exits and missing inputs are reported as such", async () => {
  {
    await using s = await scratch();
    const r = await runFixture("throws", s);
    assertEquals([r.reason, r.errorKind], ["error", "recipe"]);
    assertEquals(r.error, "RangeError: iterations must be positive, got -1");
  }
  {
    await using s = await scratch();
    const r = await runFixture("early_exit", s);
    assertEquals([r.reason, r.errorKind], ["error", "recipe"]);
    assertMatch(r.error!, /exited before finishing/);
  }
  {
    await using s = await scratch();
    const r = await runFixture("missing_input", s);
    assertEquals([r.reason, r.errorKind], ["error", "input"]);
    assertStringIncludes(r.error!, "nope.nii");
  }
  {
    await using s = await scratch();
    const r = await runFixture("bad_input", s);
    assertEquals([r.reason, r.errorKind], ["error", "input"], r.error);
    assertMatch(r.error!, /data\.bin/);
  }
});

Deno.test("invalid and unknown parameters are rejected before the recipe runs", async () => {
  {
    await using s = await scratch();
    const r = await runFixture("echo", s, { params: { count: "many" } });
    assertEquals([r.reason, r.errorKind], ["error", "params"]);
    assertMatch(r.error!, /^invalid parameters: count:/);
    assertEquals(await listTree(s.outDir), ["manifest.json"]);
  }
  {
    await using s = await scratch();
    const r = await runFixture("echo", s, { params: { cuont: 3 } });
    assertEquals(r.errorKind, "params");
    assertMatch(r.error!, /unknown parameter cuont; expected one of: count, label, scale/);
  }
});

Deno.test("bad options fail before anything starts (no manifest)", async () => {
  await using s = await scratch();
  let r = await runSandboxed({ recipe: `${s.root}/nope.ts`, inputs: [], outDir: s.outDir });
  assertEquals([r.ok, r.reason, r.errorKind, r.exitCode], [false, "error", "input", null]);
  assertMatch(r.error!, /recipe ".*nope\.ts" does not exist/);
  r = await runSandboxed({
    recipe: fixture("echo"),
    inputs: [`${s.root}/missing`],
    outDir: s.outDir,
  });
  assertMatch(r.error!, /input ".*missing" does not exist/);
  r = await runSandboxed({ recipe: fixture("echo"), inputs: [s.inDir], outDir: s.root });
  assertMatch(r.error!, /contains ".*in"; the run could overwrite it/);
  r = await runSandboxed({ recipe: fixture("echo"), inputs: [s.inDir], outDir: `${s.inDir}/o` });
  assertMatch(r.error!, /lies inside the input/);
  r = await runSandboxed({ recipe: fixture("echo"), inputs: [s.inDir], outDir: `${s.root}/other` });
  assertMatch(r.error!, /is not empty/);
  r = await runSandboxed({ recipe: fixture("echo"), inputs: [s.inDir], outDir: ROOT + "/core" });
  assertMatch(r.error!, /petrel itself|not empty/);
  assertEquals(await Deno.readTextFile(s.secret), "another user's data");
});

Deno.test("a good recipe runs: outputs, coerced params, logs and progress", async () => {
  await using s = await scratch();
  const logs: string[] = [];
  const progress: [number, number][] = [];
  const r = await runFixture("echo", s, {
    params: { count: "5", scale: "[3, 4]" },
    seed: 42,
    onLog: (l) => logs.push(l),
    onProgress: (d, t) => progress.push([d, t]),
  });
  assertEquals(r.ok, true, r.error);
  assertEquals(r.exitCode, 0);
  assertEquals(await listTree(s.outDir), [
    "copy.bin",
    "info.json",
    "manifest.json",
    "sub/values.f32",
  ]);
  assertEquals(logs, ["wrote 5 values"]);
  assertEquals(progress, [[1, 5], [2, 5], [3, 5], [4, 5], [5, 5]]);
  assertEquals(JSON.parse(await Deno.readTextFile(`${s.outDir}/info.json`)), {
    label: "echo",
    seed: 42,
  });
  const values = new Float32Array((await Deno.readFile(`${s.outDir}/sub/values.f32`)).buffer);
  assertEquals(values.length, 5);
  assert(values.every((v) => v >= 0 && v < 3));
  const m = await readManifest(r.manifestPath!);
  assertEquals(m.params, { count: 5, label: "echo", scale: [3, 4] });
});

Deno.test({
  name: "onnxruntime-web (wasm) runs a model from the models folder inside the sandbox",
  fn: async () => {
    await using s = await scratch();
    await Deno.mkdir(`${s.root}/models`);
    await Deno.writeFile(`${s.root}/models/single_relu.onnx`, singleReluOnnx());
    const r = await runFixture("onnx_relu", s, { models: [`${s.root}/models`], memoryMb: 1024 });
    assertEquals(r.ok, true, r.error);
    const j = JSON.parse(await Deno.readTextFile(`${s.outDir}/relu.json`));
    assertEquals(j.output, j.input.map((v: number) => Math.max(0, v)));
    const m = await readManifest(r.manifestPath!);
    assertEquals(m.versions.onnxruntimeWeb, j.ort);
    assertEquals(m.models.map((f) => f.path.split("/").pop()), ["single_relu.onnx"]);
  },
});

Deno.test("a recipe outside the checkout imports petrel as @petrel/petrel and zod as zod", async () => {
  await using s = await scratch();
  const recipe = `${s.root}/my_recipe.ts`;
  await Deno.writeTextFile(
    recipe,
    `import { z } from "zod";
import { centredGrid, defineRecipe, voxelCount } from "@petrel/petrel";
export default defineRecipe({
  params: z.object({ n: z.number().int().default(4) }),
  async run(ctx) {
    const grid = centredGrid([ctx.params.n, ctx.params.n, 1], [2, 2, 2]);
    await ctx.writeJson("grid.json", { voxels: voxelCount(grid), adapter: (await ctx.gpu()).adapter.description });
  },
});
`,
  );
  const r = await runSandboxed({ recipe, inputs: [], outDir: s.outDir, params: { n: 5 } });
  assertEquals(r.ok, true, r.error);
  const j = JSON.parse(await Deno.readTextFile(`${s.outDir}/grid.json`));
  assertEquals(j.voxels, 25);
  assertEquals(j.adapter, (await readManifest(r.manifestPath!)).adapter!.description);
});

Deno.test("one oversized write is cut by the per-file limit (ulimit -f) and reported as quota", async () => {
  await using s = await scratch();
  const quota = 4 << 20;
  const r = await runFixture("big_write", s, { maxOutputBytes: quota });
  assertEquals(r.reason, "output-quota", r.error);
  const size = await Deno.stat(`${s.outDir}/big.bin`).then((st) => st.size, () => 0);
  assert(size <= quota, `big.bin has ${size} bytes, quota ${quota}`);
});

Deno.test("concurrent runs are independent (6 at once; distinct seeds give distinct outputs)", async () => {
  await using s = await scratch();
  const runs = await Promise.all(
    [0, 1, 2, 3, 4, 5].map((k) =>
      runFixture("echo", s, { outDir: `${s.root}/out${k}`, seed: k, params: { count: 32 } })
    ),
  );
  const hashes = new Set<string>();
  for (const [k, r] of runs.entries()) {
    assertEquals(r.ok, true, `run ${k}: ${r.error}`);
    const m = await readManifest(r.manifestPath!);
    assertEquals(m.seed, k);
    hashes.add(m.outputs.find((o) => o.path === "sub/values.f32")!.sha256);
  }
  assertEquals(hashes.size, 6);
});
