/**
 * The web page in headless Chromium (Debian's `chromium`, driven by `playwright-core` in the
 * subprocess `_web_driver.ts`): log in with a token, submit a job with an uploaded input, watch
 * its log and progress, see the PNG result and NIfTI slices; another user's login shows none of it. Skipped when
 * `/usr/bin/chromium`, network permission on 127.0.0.1 or run permission is missing.
 */
import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { serve } from "../../core/server/mod.ts";
import { chromiumAvailable, runDriver, testConfig, TOKENS } from "./_helpers.ts";

const DRIVER = new URL("./_web_driver.ts", import.meta.url).pathname;

Deno.test({
  name: "server web page: log in, submit, watch progress, view PNG results (headless Chromium)",
  ignore: !chromiumAvailable(),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "petrel_web_test_" });
    await Deno.mkdir(`${dir}/datasets/phantom`, { recursive: true });
    await Deno.writeFile(`${dir}/datasets/phantom/counts.bin`, new Uint8Array([1, 2, 3, 250]));
    const server = await serve({
      config: testConfig(dir) as never,
      hostname: "127.0.0.1",
      port: 0,
      verbose: false,
      onListen: () => {},
    });
    try {
      const seen = await runDriver(DRIVER, [server.url, TOKENS.alice, TOKENS.bob]);
      assertEquals(seen.failure, undefined, JSON.stringify(seen));
      assertMatch(seen.wrongTokenError, /token was not accepted/);
      assertEquals(seen.appHiddenAfterWrongToken, true);
      assertEquals(seen.who, "logged in as alice");
      assertEquals(seen.recipes, ["", "sum", "hostile"]);
      assertMatch(seen.recipeInfo, /scale \(number\) = 1[^]*steps \(integer\) = 3/);
      assertEquals(JSON.parse(seen.paramsPrefilled), { scale: 1, steps: 3, sleepMs: 0 });
      assertMatch(seen.log, /step 1 of 3[^]*step 3 of 3/);
      assertEquals(seen.progress, 1);
      // The PNG montage is shown through a blob URL (no token in any URL), at its 8×8 size.
      assertEquals([seen.image.w, seen.image.h, seen.image.alt], [8, 8, "images/slices.png"]);
      assert(seen.image.src.startsWith("blob:"));
      assert(seen.files.some((f: string) => f.startsWith("result.json")), seen.files.join());
      assertEquals([seen.aliceRows, seen.bobRows], [1, 0]);
      // NIfTI viewer: the volume holds i + 10 j + 100 k (8 × 6 × 3); grey = round(255 (v - 0) /
      // 257); screen row r shows j = 5 - r. Reference computed here, pixel by pixel.
      const expected = (k: number): number[] => {
        const g: number[] = [];
        for (let r = 0; r < 6; r++) {
          for (let i = 0; i < 8; i++) {
            g.push(Math.round((255 * (i + 10 * (5 - r) + 100 * k)) / 257));
          }
        }
        return g;
      };
      assertEquals([seen.sliceMiddle.w, seen.sliceMiddle.h], [8, 6]);
      assertEquals([seen.sliceMiddle.index, seen.sliceFirst.index], ["2 / 3", "1 / 3"]);
      assertEquals(seen.sliceMiddle.grey, expected(1));
      assertEquals(seen.sliceFirst.grey, expected(0));
      assertMatch(seen.viewerInfo, /8 × 6 × 3 voxels, values 0\.000 … 257\.0/);
      assertEquals(seen.problems, []);
      // The job ran with what the page sent (checked on the server side).
      const job = await server.store.get(seen.jobId);
      assertEquals([job!.user, job!.seed, job!.datasets], ["alice", 5, ["phantom"]]);
      const result = JSON.parse(await Deno.readTextFile(`${job!.jobDir}/out-1/result.json`));
      assertEquals(result.sums, { "web.bin": 27, "counts.bin": 256 });
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
