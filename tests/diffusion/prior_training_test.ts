/**
 * Runs the Python tests of the prior's training path (`scripts/prior/test_train.py`): the
 * augmentations (flips, rotation against an analytic ramp, tracer remap keeping label structure,
 * MR-invisible lesions changing the PET only, seeded batches) and the packed data set need NumPy;
 * the exact-resume test
 * (train N steps, stop, resume to 2N = an uninterrupted 2N-step run, bit for bit) needs torch.
 * Each skips cleanly when `/usr/bin/python3` lacks what it needs (CI has no torch).
 */
import { ok } from "node:assert/strict";

const ROOT = new URL("../..", import.meta.url).pathname;

async function pythonHas(modules: string): Promise<boolean> {
  try {
    const out = await new Deno.Command("/usr/bin/python3", {
      args: ["-c", `import ${modules}`],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

async function unittest(...selectors: string[]): Promise<void> {
  const out = await new Deno.Command("/usr/bin/python3", {
    args: [
      "-m",
      "unittest",
      "-v",
      "scripts/prior/test_train.py",
      ...selectors.flatMap((s) => ["-k", s]),
    ],
    cwd: ROOT,
    env: { OMP_NUM_THREADS: "1", PYTHONDONTWRITEBYTECODE: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  ok(out.success, `python unittest ${selectors} failed:\n${text}`);
  ok(/\nOK/.test(text) && !/skipped/.test(text), `unexpected unittest output:\n${text}`);
}

const numpy = await pythonHas("numpy");
const torch = numpy && await pythonHas("torch");

Deno.test({
  name:
    "prior training: augmentations (flip, rotation, tracer remap, MR-invisible lesions, seeds), packed data",
  ignore: !numpy,
  fn: () => unittest("AugmentTests", "DataTests"),
});

Deno.test({
  name: "prior training: resume from a checkpoint equals an uninterrupted run (bit-identical)",
  ignore: !torch,
  fn: () => unittest("ResumeTests"),
});
