import { ok as assert, throws as assertThrows } from "node:assert/strict";
import { DdpmSchedule, REFERENCE_SCHEDULE } from "../../core/diffusion/schedule.ts";

function close(a: number, b: number, rel: number): void {
  assert(Math.abs(a - b) <= rel * Math.abs(b), `${a} vs ${b} (rel ${rel})`);
}

Deno.test("linear schedule matches torch.linspace/cumprod values and the product formula", () => {
  const s = new DdpmSchedule(REFERENCE_SCHEDULE);
  assert(s.T === 1000);
  // values printed by torch 1.13: linspace(1e-4, 0.02, 1000, float64), cumprod(1 - betas)
  close(s.beta(0), 1e-4, 1e-15);
  close(s.beta(1), 0.00011991991991991993, 1e-13);
  close(s.beta(500), 0.01005995995995996, 1e-13);
  close(s.beta(999), 0.02, 1e-13);
  close(s.alphaBar(0), 0.9999, 1e-15);
  close(s.alphaBar(1), 0.9997800920720721, 1e-13);
  close(s.alphaBar(199), 0.6590385082317941, 1e-12);
  close(s.alphaBar(999), 4.035829765375676e-05, 1e-10);
  // analytic: ᾱ_t = ∏ (1 − β_s), β_s = b0 + s (b1 − b0)/(T − 1), summed in log space
  for (const t of [0, 17, 199, 640]) {
    let logProd = 0;
    for (let k = 0; k <= t; k++) logProd += Math.log1p(-(1e-4 + (k * (0.02 - 1e-4)) / 999));
    close(s.alphaBar(t), Math.exp(logProd), 1e-12);
    close(s.alpha(t), 1 - s.beta(t), 1e-15);
  }
  assert(s.alphaBar(-1) === 1);
});

Deno.test("reverse steps walk from start−1 down to 0 and end at −1", () => {
  const s = new DdpmSchedule();
  const full = s.reverseSteps(200, 200);
  assert(full.length === 200);
  assert(full[0][0] === 199 && full[0][1] === 198);
  assert(full[199][0] === 0 && full[199][1] === -1);
  const sub = s.reverseSteps(200, 20);
  assert(sub.length === 20 && sub[0][0] === 199 && sub[19][0] === 0 && sub[19][1] === -1);
  for (let i = 0; i + 1 < sub.length; i++) {
    assert(sub[i][1] === sub[i + 1][0] && sub[i][0] > sub[i][1], JSON.stringify(sub));
  }
  const one = s.reverseSteps(50, 1);
  assert(one.length === 1 && one[0][0] === 49 && one[0][1] === -1);
});

Deno.test("schedule rejects bad specs and timesteps with messages", () => {
  assertThrows(
    () => new DdpmSchedule({ kind: "linear", T: 10, beta_start: 0.02, beta_end: 1e-4 }),
    /beta_end must be ≥ beta_start/,
  );
  // deno-lint-ignore no-explicit-any
  assertThrows(() => new DdpmSchedule({ kind: "cosine" } as any), /expected \{kind: "linear"/);
  const s = new DdpmSchedule();
  assertThrows(() => s.alphaBar(1000), /integer in \[-1, 999\]/);
  assertThrows(() => s.beta(-1), /integer in \[0, 999\]/);
  assertThrows(() => s.alphaBar(2.5), RangeError);
  assertThrows(() => s.reverseSteps(200, 201), /steps must be an integer in \[1, start = 200\]/);
});
