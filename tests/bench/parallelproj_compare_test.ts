/**
 * bench/parallelproj_compare.ts without parallelproj: argument parsing, the exit-2 paths that
 * tell how to build the library, and the agreement figures. The comparison itself needs a
 * parallelproj build and is run by hand (docs/performance.md).
 */
import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import {
  BUILD_HINT,
  main,
  parseCompareArgs,
  relativeDifference,
  UsageError,
} from "../../bench/parallelproj_compare.ts";
import { assertClose } from "../_helpers.ts";

/** Runs `main(args)`, capturing what it prints to stderr. */
async function runMain(args: string[]): Promise<{ code: number; stderr: string }> {
  const lines: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    return { code: await main(args), stderr: lines.join("\n") };
  } finally {
    console.error = orig;
  }
}

Deno.test("parallelproj_compare: defaults and flags", () => {
  const d = parseCompareArgs([]);
  equal(d.lib, undefined);
  deepEqual(d.cases, ["2d", "stack3", "3d"]);
  deepEqual(d.projectors, ["joseph", "ring"]);
  equal(d.threads, 2);
  equal(d.stream, 10);
  equal(d.json, false);
  const o = parseCompareArgs([
    "--parallelproj-lib",
    "/x/libparallelproj.so",
    "--cases",
    "stack3,2d",
    "--projectors",
    "joseph",
    "--repeats",
    "3",
    "--threads",
    "1",
    "--stream",
    "4",
    "--json",
  ]);
  deepEqual(o, {
    lib: "/x/libparallelproj.so",
    cases: ["stack3", "2d"],
    projectors: ["joseph"],
    repeats: 3,
    threads: 1,
    stream: 4,
    json: true,
  });
});

Deno.test("parallelproj_compare: bad arguments are usage errors naming the problem", () => {
  throws(
    () => parseCompareArgs(["--cases", "4d"]),
    (e) => e instanceof UsageError && /4d/.test(e.message),
  );
  throws(() => parseCompareArgs(["--projectors", "siddon"]), /siddon/);
  throws(() => parseCompareArgs(["--repeats", "0"]), /--repeats must be a positive integer/);
  throws(() => parseCompareArgs(["--stream", "1.5"]), /--stream must be a positive integer/);
  throws(() => parseCompareArgs(["--parallelproj-lib"]), /--parallelproj-lib needs a value/);
  throws(() => parseCompareArgs(["--fast"]), /unknown argument --fast/);
});

Deno.test("parallelproj_compare: without --parallelproj-lib it says how to build it and exits 2", async () => {
  const r = await runMain(["--cases", "2d"]);
  equal(r.code, 2);
  equal(r.stderr, BUILD_HINT);
  match(r.stderr, /cmake -S .* -DUSE_CUDA=OFF/);
  match(r.stderr, /--parallelproj-lib/);
});

Deno.test("parallelproj_compare: a missing library or a bad flag exits 2 before any work", async () => {
  const missing = "/nonexistent/libparallelproj.so";
  const r = await runMain(["--parallelproj-lib", missing]);
  equal(r.code, 2);
  ok(r.stderr.includes(missing), r.stderr);
  ok(r.stderr.includes("cmake --build"), "the build hint follows");
  const bad = await runMain(["--cases", "2d,9d"]);
  equal(bad.code, 2);
  match(bad.stderr, /unknown case\(s\) 9d/);
});

Deno.test("parallelproj_compare: relative differences against hand-computed values", () => {
  const ref = Float32Array.of(1, -4, 2, 0);
  const a = Float32Array.of(1.5, -4, 1, 0.5);
  const d = relativeDifference(a, ref);
  assertClose(d.maxRel, 1 / 4, 1e-7, "max |Δ| / max |ref|");
  assertClose(d.meanRel, 2 / 7, 1e-7, "Σ|Δ| / Σ|ref|");
  deepEqual(relativeDifference(ref, ref), { maxRel: 0, meanRel: 0 });
  throws(() => relativeDifference(a, ref.subarray(1)), /lengths differ/);
});
