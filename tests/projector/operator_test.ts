import { ok as assert, throws as assertThrows } from "node:assert/strict";
import { defaultContext } from "../../core/gpu/context.ts";
import { GaussianFilter } from "../../core/projector/gaussian.ts";
import { JosephProjector } from "../../core/projector/joseph.ts";
import {
  adjointnessTest,
  applyToHost,
  compose,
  diagonal,
  scaled,
  transposed,
} from "../../core/projector/operator.ts";
import { maxAbsDiff, randomArray, smallGrid, smallScanner } from "../_helpers.ts";

Deno.test("A = diag(m) ∘ P ∘ G is adjoint and equals the step-by-step product", async () => {
  const ctx = await defaultContext();
  const s = smallScanner();
  const grid = smallGrid(1);
  const P = new JosephProjector(ctx, s.lors(), grid);
  const G = new GaussianFilter(ctx, grid, [4, 4, 0]);
  const mHost = randomArray(s.bins, 21);
  const m = ctx.array(P.outShape, mHost);
  const A = compose(ctx, diagonal(m), P, G);
  const r = await adjointnessTest(ctx, A, 8);
  assert(r.relativeError < 1e-5, `adjointness ${r.relativeError}`);
  const x = randomArray(24 * 24, 2);
  const gx = await applyToHost(ctx, G, x);
  const pgx = await applyToHost(ctx, P, gx);
  const expected = pgx.map((v, i) => v * mHost[i]);
  const got = await applyToHost(ctx, A, x);
  assert(maxAbsDiff(got, expected) < 1e-4, `diff ${maxAbsDiff(got, expected)}`);
  const twice = await applyToHost(ctx, scaled(A, 2), x);
  assert(maxAbsDiff(twice, expected.map((v) => 2 * v)) < 2e-4);
  const rt = await adjointnessTest(ctx, transposed(A), 4);
  assert(rt.relativeError < 1e-5);
  assertThrows(() => compose(ctx, G, P), /compose: operator 0 takes/);
});
