import { defaultContext, type GpuContext } from "../../core/gpu/context.ts";
import { type ForwardModel, ringForwardModel } from "../../core/model/forward_model.ts";
import { PoissonLikelihood, poissonLogLikelihood } from "../../core/model/likelihood.ts";
import { simulateCounts } from "../../core/model/simulate.ts";
import { mapEm, mlem, osem } from "../../core/recon/algorithms.ts";
import { logLikelihoodCallback, metricsCallback } from "../../core/recon/callbacks.ts";
import { nrmse } from "../../core/metrics/image.ts";
import { quadraticPrior, relativeDifferencePrior } from "../../core/recon/priors.ts";
import {
  addDisc,
  assert,
  assertClose,
  assertIdentical,
  smallGrid,
  smallScanner,
  testPhantom,
} from "../model/fixtures.ts";

const grid = smallGrid();

async function noisyProblem(
  ctx: GpuContext,
  subsets: number,
): Promise<{ model: ForwardModel; lik: PoissonLikelihood; truth: Float32Array }> {
  const model = ringForwardModel(ctx, smallScanner(), { grid, subsets });
  const t = testPhantom(grid);
  const tx = ctx.array([32, 32, 1], t);
  const sim = await simulateCounts(model, tx, { trueCounts: 2e5, randomsFraction: 0.1, seed: 5 });
  tx.destroy();
  model.setAdditive(sim.additive);
  return {
    model,
    lik: new PoissonLikelihood(model, sim.counts),
    truth: t.map((v) => v * sim.scale),
  };
}

Deno.test("MLEM increases the log-likelihood monotonically (float64 reference and device value)", async () => {
  const ctx = await defaultContext();
  const { model, lik } = await noisyProblem(ctx, 1);
  const ll = logLikelihoodCallback();
  const host: number[] = [];
  const y = await Promise.all(lik.data.map((d) => d.read()));
  const counts = model.merge(y);
  const x = await mlem(lik, {
    iterations: 12,
    callbacks: [ll, {
      needsImage: true,
      async onIteration(s) {
        const xi = ctx.array([32, 32, 1], s.image!);
        host.push(poissonLogLikelihood(counts, await model.expected(xi)));
        xi.destroy();
      },
    }],
  });
  assert(ll.values.length === 12);
  for (let i = 1; i < host.length; i++) {
    assert(host[i] > host[i - 1], `L fell at iteration ${i + 1}: ${host[i - 1]} → ${host[i]}`);
  }
  for (let i = 0; i < host.length; i++) {
    assertClose(ll.values[i][1], host[i], 1e-6 * Math.abs(host[i]), `device L at ${i + 1}`);
  }
  x.destroy();
  lik.destroy();
  model.destroy();
});

Deno.test("OSEM with one subset is bit-identical to MLEM; MLEM over 4 data subsets agrees with it", async () => {
  const ctx = await defaultContext();
  const one = await noisyProblem(ctx, 1);
  const a = await (await mlem(one.lik, { iterations: 5 })).read();
  const b = await (await osem(one.lik, { iterations: 5 })).read();
  assertIdentical(a, b, "OSEM(1 subset) vs MLEM");
  const four = await noisyProblem(ctx, 4);
  const c = await (await mlem(four.lik, { iterations: 5 })).read();
  assert(nrmse(a, c) < 1e-4, `MLEM on split data differs by ${nrmse(a, c)}`);
  // OSEM with 4 subsets is a different algorithm but reaches a similar image
  const d = await (await osem(four.lik, { iterations: 2 })).read();
  assert(nrmse(a, d) < 0.3, `OSEM(4) far from MLEM: ${nrmse(a, d)}`);
  for (const p of [one, four]) {
    p.lik.destroy();
    p.model.destroy();
  }
});

Deno.test("noise-free data: the error to the truth falls with the iterations (MLEM and OSEM)", async () => {
  const ctx = await defaultContext();
  for (const subsets of [1, 4]) {
    const model = ringForwardModel(ctx, smallScanner(), { grid, subsets });
    const t = testPhantom(grid);
    const tx = ctx.array([32, 32, 1], t);
    const y = await model.expected(tx);
    const lik = new PoissonLikelihood(model, y);
    const m = metricsCallback(t, { every: 1 });
    const x = await (subsets === 1 ? mlem : osem)(lik, { iterations: 40, callbacks: [m] });
    const errs = m.rows.map((r) => r.nrmse);
    for (let i = 1; i < errs.length; i++) {
      assert(errs[i] < errs[i - 1], `NRMSE rose: ${errs.join(", ")}`);
    }
    assert(errs[errs.length - 1] < 0.5 * errs[0], `NRMSE fell too little: ${errs.join(", ")}`);
    for (const a of [x, tx]) a.destroy();
    lik.destroy();
    model.destroy();
  }
});

Deno.test("uniform cylinder in a uniform attenuating cylinder is reconstructed uniform after attenuation correction", async () => {
  const ctx = await defaultContext();
  const scanner = smallScanner();
  const act = addDisc(new Float32Array(32 * 32), grid, { cx: 0, cy: 0, r: 26, v: 1 });
  // water-like μ = 0.096 /cm = 0.0096 /mm over a 52 mm cylinder: attenuation factor ≈ 0.6
  const mu = addDisc(new Float32Array(32 * 32), grid, { cx: 0, cy: 0, r: 26, v: 0.0096 });
  const model = ringForwardModel(ctx, scanner, { grid, subsets: 2, muMap: mu });
  const ax = ctx.array([32, 32, 1], act);
  const y = await model.expected(ax);
  const stats = (img: Float32Array) => {
    const centre: number[] = [];
    const rim: number[] = [];
    for (let j = 0; j < 32; j++) {
      for (let i = 0; i < 32; i++) {
        const r = Math.hypot(-31 + 2 * i, -31 + 2 * j);
        if (r < 8) centre.push(img[i + 32 * j]);
        else if (r > 14 && r < 20) rim.push(img[i + 32 * j]);
      }
    }
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    return mean(centre) / mean(rim);
  };
  const ac = await (await mlem(new PoissonLikelihood(model, y), { iterations: 60 })).read();
  const ratioAc = stats(ac);
  assertClose(ratioAc, 1, 0.03, "centre/rim with attenuation correction");
  // The same data reconstructed without the attenuation model show the usual central dip.
  const noAcModel = ringForwardModel(ctx, scanner, { grid, subsets: 2 });
  const noAc = await (await mlem(new PoissonLikelihood(noAcModel, y), { iterations: 60 })).read();
  assert(stats(noAc) < 0.9, `no AC should depress the centre, ratio ${stats(noAc)}`);
  ax.destroy();
  model.destroy();
  noAcModel.destroy();
});

Deno.test("a constant additive term is modelled, not absorbed into the image", async () => {
  const ctx = await defaultContext();
  const model = ringForwardModel(ctx, smallScanner(), { grid });
  const t = addDisc(new Float32Array(32 * 32), grid, { cx: 0, cy: 0, r: 16, v: 1 });
  const tx = ctx.array([32, 32, 1], t);
  const trues = await model.expected(tx);
  let mean = 0;
  for (const v of trues) mean += v / trues.length;
  const add = new Float32Array(trues.length).fill(0.5 * mean);
  const y = trues.map((v, i) => v + add[i]);
  const outside = (img: Float32Array) => {
    let s = 0;
    let n = 0;
    for (let j = 0; j < 32; j++) {
      for (let i = 0; i < 32; i++) {
        const r = Math.hypot(-31 + 2 * i, -31 + 2 * j);
        if (r > 22 && r < 30) {
          s += img[i + 32 * j];
          n++;
        }
      }
    }
    return s / n;
  };
  const ignored = await (await mlem(new PoissonLikelihood(model, y), { iterations: 50 })).read();
  model.setAdditive(add);
  const modelled = await (await mlem(new PoissonLikelihood(model, y), { iterations: 50 })).read();
  assert(
    outside(ignored) > 0.03 && outside(ignored) > 10 * outside(modelled),
    `without the additive model the background fills (${outside(ignored)} vs ${outside(modelled)})`,
  );
  assert(
    outside(modelled) < 0.02,
    `modelled additive still leaks ${outside(modelled)} into the background`,
  );
  let s1 = 0;
  let s0 = 0;
  for (let i = 0; i < t.length; i++) {
    s1 += modelled[i];
    s0 += t[i];
  }
  assertClose(s1 / s0, 1, 0.02, "total activity with the additive term modelled");
  tx.destroy();
  model.destroy();
});

Deno.test("MAP-EM with β = 0 is bit-identical to MLEM (quadratic and RDP, with and without subsets)", async () => {
  const ctx = await defaultContext();
  const one = await noisyProblem(ctx, 1);
  const ref = await (await mlem(one.lik, { iterations: 4 })).read();
  for (
    const prior of [
      quadraticPrior(ctx, grid, { beta: 0 }),
      relativeDifferencePrior(ctx, grid, { beta: 0 }),
    ]
  ) {
    const x = await (await mapEm(one.lik, prior, { iterations: 4 })).read();
    assertIdentical(x, ref, `MAP-EM(${prior.kind}, β=0)`);
  }
  const four = await noisyProblem(ctx, 4);
  const os = await (await osem(four.lik, { iterations: 3 })).read();
  const rdp = relativeDifferencePrior(ctx, grid, { beta: 0 });
  assertIdentical(
    await (await mapEm(four.lik, rdp, { iterations: 3 })).read(),
    os,
    "OS-MAP-EM(β=0)",
  );
  for (const p of [one, four]) {
    p.lik.destroy();
    p.model.destroy();
  }
});

Deno.test("MAP-EM (quadratic, De Pierro) increases the penalised objective and smooths the noise", async () => {
  const ctx = await defaultContext();
  const { model, lik, truth } = await noisyProblem(ctx, 1);
  // β comparable to the EM curvature s/x: a clearly visible amount of smoothing
  const sens = await model.totalSensitivity().read();
  const meanS = sens.reduce((a, b) => a + b, 0) / sens.length;
  const meanX = truth.reduce((a, b) => a + b, 0) / truth.length;
  const prior = quadraticPrior(ctx, grid, { beta: 0.1 * meanS / meanX });
  const obj: number[] = [];
  const cb = {
    needsImage: true,
    async onIteration(s: { image?: Float32Array }) {
      const xi = ctx.array([32, 32, 1], s.image!);
      const L = await lik.logLikelihood(xi);
      const { value } = await prior.evaluate(xi);
      obj.push(L - prior.beta * value);
      xi.destroy();
    },
  };
  const x = await (await mapEm(lik, prior, { iterations: 10, callbacks: [cb] })).read();
  for (let i = 1; i < obj.length; i++) {
    assert(obj[i] >= obj[i - 1] - 1e-6 * Math.abs(obj[i]), `objective fell at ${i + 1}: ${obj}`);
  }
  const ml = await (await mlem(lik, { iterations: 10 })).read();
  // background roughness inside the uniform part of the disc (voxel-to-voxel differences)
  const rough = (img: Float32Array) => {
    let s = 0;
    for (let j = 20; j < 26; j++) {
      for (let i = 8; i < 14; i++) s += (img[i + 32 * j] - img[i + 1 + 32 * j]) ** 2;
    }
    return s;
  };
  assert(rough(x) < 0.5 * rough(ml), `MAP not smoother: ${rough(x)} vs ${rough(ml)}`);
  lik.destroy();
  model.destroy();
});

Deno.test("OSEM and MAP-RDP are bit-identical from run to run (deterministic back projection and sums)", async () => {
  const ctx = await defaultContext();
  const { model, lik } = await noisyProblem(ctx, 4);
  const a = await (await osem(lik, { iterations: 3 })).read();
  const b = await (await osem(lik, { iterations: 3 })).read();
  assertIdentical(a, b, "OSEM run 1 vs run 2");
  const rdp = relativeDifferencePrior(ctx, grid, { beta: 10, epsilon: 1e-3 });
  const c = await (await mapEm(lik, rdp, { iterations: 3 })).read();
  const d = await (await mapEm(lik, rdp, { iterations: 3 })).read();
  assertIdentical(c, d, "MAP-RDP run 1 vs run 2");
  const l1 = await lik.logLikelihood(ctx.array([32, 32, 1], a));
  const l2 = await lik.logLikelihood(ctx.array([32, 32, 1], b));
  assert(Object.is(l1, l2), "log-likelihood bit-identical");
  rdp.destroy();
  lik.destroy();
  model.destroy();
});

Deno.test("OSEM with one submit per subset is bit-identical to one submit per iteration", async () => {
  const ctx = await defaultContext();
  const { model, lik } = await noisyProblem(ctx, 4);
  const a = await (await osem(lik, { iterations: 2 })).read();
  const b = await (await osem(lik, { iterations: 2, submit: "subset" })).read();
  assertIdentical(a, b, "submit per subset vs per iteration");
  lik.destroy();
  model.destroy();
});
