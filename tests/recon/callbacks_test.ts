import { defaultContext } from "../../core/gpu/context.ts";
import { ringForwardModel } from "../../core/model/forward_model.ts";
import { PoissonLikelihood } from "../../core/model/likelihood.ts";
import { osem } from "../../core/recon/algorithms.ts";
import {
  callbackDue,
  logLikelihoodCallback,
  metricsCallback,
  progressCallback,
} from "../../core/recon/callbacks.ts";
import {
  assert,
  assertIdentical,
  smallGrid,
  smallScanner,
  testPhantom,
} from "../model/fixtures.ts";

Deno.test("callbackDue: every k-th iteration and always the last", () => {
  const due = [1, 2, 3, 4, 5].filter((it) => callbackDue({ every: 2, onIteration() {} }, it, 5));
  assertIdentical(due, [2, 4, 5]);
  const all = [1, 2, 3].filter((it) => callbackDue({ onIteration() {} }, it, 3));
  assertIdentical(all, [1, 2, 3]);
});

Deno.test("callbacks see only what they ask for, on their iterations; observing changes nothing", async () => {
  const ctx = await defaultContext();
  const grid = smallGrid();
  const model = ringForwardModel(ctx, smallScanner(), { grid, subsets: 2 });
  const t = testPhantom(grid);
  const tx = ctx.array([32, 32, 1], t);
  const lik = new PoissonLikelihood(model, await model.expected(tx));
  const lines: string[] = [];
  const seen: { it: number; image: boolean; ll: boolean }[] = [];
  const ll = logLikelihoodCallback({ every: 3 });
  const m = metricsCallback(t, { every: 2 });
  const x = await osem(lik, {
    iterations: 6,
    callbacks: [
      progressCallback({ write: (l) => lines.push(l), every: 2, label: "test" }),
      ll,
      m,
      {
        every: 5,
        onIteration(s) {
          seen.push({ it: s.iteration, image: !!s.image, ll: s.logLikelihood !== undefined });
        },
      },
    ],
  });
  assert(
    lines.map((l) => l.split(" ")[2]).join(",") === "2/6,4/6,6/6",
    `progress lines: ${lines.join(" | ")}`,
  );
  assert(lines.every((l) => l.startsWith("test OSEM")), lines.join("\n"));
  assertIdentical(ll.values.map((v) => v[0]), [3, 6]);
  assert(ll.values[1][1] > ll.values[0][1], "L increases");
  assertIdentical(m.rows.map((r) => r.iteration), [2, 4, 6]);
  // the plain observer on iteration 5 shares the state of due callbacks only: nothing else due
  assertIdentical(seen.map((s) => s.it), [5, 6]);
  assert(!seen[0].image && !seen[0].ll, "iteration 5 read nothing back");
  const plain = await osem(lik, { iterations: 6 });
  assertIdentical(await x.read(), await plain.read(), "callbacks do not change the result");
  for (const a of [x, plain, tx]) a.destroy();
  lik.destroy();
  model.destroy();
});
