/**
 * Runs the Python tests of the prior's training path (`scripts/prior/test_train.py`): the
 * augmentations (flips, rotation against an analytic ramp, tracer remap keeping label structure,
 * MR-invisible lesions changing the PET only, seeded batches) and the packed data set need NumPy;
 * the exact-resume test
 * (train N steps, stop, resume to 2N = an uninterrupted 2N-step run, bit for bit) needs torch;
 * `--init-from-prior` (model and EMA start at the tiny fixture prior: their ε equals the ONNX
 * denoiser's on onnxruntime-web, 1 thread) needs torch and onnx.
 * Each skips cleanly when `/usr/bin/python3` lacks what it needs (CI has no torch).
 */
import { ok } from "node:assert/strict";
import { loadPrior } from "../../core/diffusion/load.ts";
import { readTensorBundle } from "../../core/diffusion/tensor_bundle.ts";

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

async function unittest(
  selectors: string[],
  env: Record<string, string> = {},
): Promise<void> {
  const out = await new Deno.Command("/usr/bin/python3", {
    args: [
      "-m",
      "unittest",
      "-v",
      "scripts/prior/test_train.py",
      ...selectors.flatMap((s) => ["-k", s]),
    ],
    cwd: ROOT,
    env: { OMP_NUM_THREADS: "1", PYTHONDONTWRITEBYTECODE: "1", ...env },
  }).output();
  const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  ok(out.success, `python unittest ${selectors} failed:\n${text}`);
  ok(/\nOK/.test(text) && !/skipped/.test(text), `unexpected unittest output:\n${text}`);
}

const numpy = await pythonHas("numpy");
const torch = numpy && await pythonHas("torch");
const onnx = torch && await pythonHas("onnx");

Deno.test({
  name:
    "prior training: augmentations (flip, rotation, tracer remap, MR-invisible lesions, seeds), packed data",
  ignore: !numpy,
  fn: () => unittest(["AugmentTests", "DataTests"]),
});

Deno.test({
  name: "prior training: resume from a checkpoint equals an uninterrupted run (bit-identical)",
  ignore: !torch,
  fn: () => unittest(["ResumeTests"]),
});

Deno.test({
  name:
    "prior training: --init-from-prior starts model and EMA at the ONNX denoiser (onnxruntime), refuses another architecture",
  ignore: !onnx,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "petrel_init_prior_" });
    try {
      // the Python test checks the checkpoint, resume and refusals, and writes the initialised
      // model's and EMA's ε on the fixture inputs; here they meet the exported graph itself
      await unittest(["InitFromPriorTests"], { PETREL_INIT_EPS_OUT: `${tmp}/eps.json` });
      const got = await readTensorBundle(`${tmp}/eps.json`);
      const dir = `${ROOT}tests/fixtures/prior`;
      const fix = await readTensorBundle(`${dir}/fixture.json`);
      const input = (name: string) => {
        const v = fix.get(name);
        ok(v, `fixture has no ${name}`);
        return v.data;
      };
      const prior = await loadPrior(dir, { provider: "wasm" });
      const params = prior.createParams(); // lora_init: up = 0, the base model
      const onnxEps = {
        case0: await prior.eps(input("case0.x_t"), input("case0.t")[0], input("case0.mr"), params),
        // B = 2, 16 rows x 12 columns: petrel shape [nx, ny, 3 B]
        dyn: await prior.eps(input("dyn.x_t"), input("dyn.t"), input("dyn.mr"), params, {
          shape: [12, 16, 6],
        }),
      };
      for (const key of ["model", "ema"]) {
        for (const c of ["case0", "dyn"] as const) {
          const torchEps = got.get(`${key}.${c}.eps`)?.data;
          ok(torchEps && torchEps.length === onnxEps[c].length, `${key}.${c}.eps missing`);
          let err = 0, scale = 0;
          for (let i = 0; i < torchEps.length; i++) {
            err = Math.max(err, Math.abs(torchEps[i] - onnxEps[c][i]));
            scale = Math.max(scale, Math.abs(onnxEps[c][i]));
          }
          ok(scale > 0.1, `${key}.${c}: |eps| max ${scale}`);
          ok(err < 1e-5 * Math.max(1, scale), `${key}.${c}: |torch - onnx| max ${err}`);
        }
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
