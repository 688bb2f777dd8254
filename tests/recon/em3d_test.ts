import { defaultContext } from "../../core/gpu/context.ts";
import { centredGrid } from "../../core/geometry/grid.ts";
import { RingScanner } from "../../core/geometry/scanner.ts";
import { ringForwardModel } from "../../core/model/forward_model.ts";
import { PoissonLikelihood } from "../../core/model/likelihood.ts";
import { mapEm, osem } from "../../core/recon/algorithms.ts";
import { metricsCallback } from "../../core/recon/callbacks.ts";
import { relativeDifferencePrior } from "../../core/recon/priors.ts";
import { assert, assertIdentical } from "../model/fixtures.ts";

Deno.test("3D (4 rings, oblique planes, attenuation): OSEM error falls; MAP-RDP(26) with β=0 equals OSEM", async () => {
  const ctx = await defaultContext();
  const scanner = new RingScanner({
    radiusMm: 40,
    crystalsPerRing: 48,
    rings: 4,
    ringSpacingMm: 4,
    radialBins: 21,
    maxRingDifference: 2,
  });
  const grid = centredGrid([16, 16, 4], [3, 3, 4]);
  const n = 16 * 16 * 4;
  const truth = new Float32Array(n);
  const mu = new Float32Array(n);
  for (let k = 0; k < 4; k++) {
    for (let j = 0; j < 16; j++) {
      for (let i = 0; i < 16; i++) {
        const x = -22.5 + 3 * i;
        const y = -22.5 + 3 * j;
        const r = Math.hypot(x, y);
        const v = i + 16 * (j + 16 * k);
        if (r < 18) {
          truth[v] = 1 + (Math.hypot(x - 6, y + 3) < 6 ? 1.5 : 0) + 0.3 * k;
          mu[v] = 0.0096;
        }
      }
    }
  }
  const model = ringForwardModel(ctx, scanner, { grid, subsets: 4, muMap: mu });
  const tx = ctx.array(grid.shape, truth);
  const y = await model.expected(tx);
  const lik = new PoissonLikelihood(model, y);
  const m = metricsCallback(truth);
  const x = await osem(lik, { iterations: 10, callbacks: [m] });
  const errs = m.rows.map((r) => r.nrmse);
  assert(errs[errs.length - 1] < 0.5 * errs[0], `NRMSE ${errs.join(", ")}`);
  for (let i = 1; i < errs.length; i++) assert(errs[i] < errs[i - 1], `NRMSE rose: ${errs}`);
  const rdp = relativeDifferencePrior(ctx, grid, { beta: 0 });
  assert(rdp.offsets.length === 26);
  const xm = await mapEm(lik, rdp, { iterations: 3 });
  const xo = await osem(lik, { iterations: 3 });
  assertIdentical(await xm.read(), await xo.read(), "3D MAP-RDP(β=0) vs OSEM");
  for (const a of [x, xm, xo, tx]) a.destroy();
  rdp.destroy();
  lik.destroy();
  model.destroy();
});
