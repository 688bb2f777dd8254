import { equal, ok, throws } from "node:assert/strict";
import { countLevels, countScale } from "../../core/sim/counts.ts";

Deno.test("count levels: standard fractions, prompts split and distinct seeds", () => {
  const levels = countLevels({ fullCounts: 2e7, seed: 9 });
  equal(levels.map((l) => l.name).join(","), "full,1/4,1/10,1/20");
  equal(levels[2].trueCounts, 2e6);
  for (const l of levels) {
    const prompts = l.trueCounts + l.randomsCounts + l.scatterCounts;
    ok(Math.abs(l.randomsCounts / prompts - 0.2) < 1e-12);
    ok(Math.abs(l.scatterCounts / prompts - 0.3) < 1e-12);
  }
  equal(new Set(levels.map((l) => l.seed)).size, 4);
  const again = countLevels({ fullCounts: 2e7, seed: 9 });
  equal(JSON.stringify(again), JSON.stringify(levels));
  const other = countLevels({ fullCounts: 2e7, seed: 9, realisation: 1 });
  ok(other[0].seed !== levels[0].seed);
  equal(countScale(4e5, levels[3]), 2.5);
});

Deno.test("count levels: bad options give clear errors", () => {
  throws(() => countLevels({ fullCounts: -1 }), /fullCounts/);
  throws(() => countLevels({ fullCounts: 1e6, fractions: [2] }), /fractions/);
  throws(
    () => countLevels({ fullCounts: 1e6, randomsFraction: 0.6, scatterFraction: 0.5 }),
    /trues must remain/,
  );
  throws(() => countScale(0, countLevels({ fullCounts: 1 })[0]), /positive total/);
});
