/**
 * The NiiVue viewer of the web page in headless Chromium (Debian's `chromium`, WebGL2 on
 * SwiftShader; driven by `playwright-core` in `_viewer_driver.ts`): two finished jobs' results side
 * by side over an MR, non-empty pixels in both panes (PET colours and grey MR), linked cursors,
 * windowing, a screenshot, and no request to anything but this server. Skipped when
 * `/usr/bin/chromium`, net permission on 127.0.0.1 or run permission is missing.
 */
import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { serve } from "../../core/server/mod.ts";
import { chromiumAvailable, FIXTURES, runDriver, testConfig, TOKENS } from "./_helpers.ts";

const DRIVER = new URL("./_viewer_driver.ts", import.meta.url).pathname;

Deno.test({
  name:
    "server viewer: NiiVue draws two results over the MR with linked cursors (headless Chromium)",
  ignore: !chromiumAvailable(),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "petrel_viewer_test_" });
    const base = testConfig(dir);
    const server = await serve({
      config: {
        ...base,
        recipes: { ...base.recipes, volumes: `${FIXTURES}volumes_recipe.ts` },
      } as never,
      hostname: "127.0.0.1",
      port: 0,
      verbose: false,
      onListen: () => {},
    });
    try {
      const shot = `${dir}/viewer.png`;
      const seen = await runDriver(DRIVER, [server.url, TOKENS.alice, shot]);
      // PETREL_VIEWER_SHOT=<file.png> keeps the screenshot (to look at it).
      const keep = Deno.env.get("PETREL_VIEWER_SHOT");
      if (keep) await Deno.copyFile(shot, keep).catch(() => {});
      console.log("viewer driver timings (ms):", JSON.stringify(seen.marks));
      assertEquals(seen.failure, undefined, `${seen.failure}\n${seen.problems.join("\n")}`);
      assertEquals(seen.problems, []);
      // Every request went to this server (the viewer library too): nothing leaves it.
      const origin = new URL(server.url).origin;
      const outside = seen.requests.filter((u: string) => new URL(u).origin !== origin);
      assertEquals(outside, []);
      assert(seen.requests.some((u: string) => u.endsWith("/vendor/niivue.js")));
      // Left: job 1's pet.nii, right: job 2's; the MR underlay grey, the PET in inferno on top.
      assertMatch(seen.titles[0], /: pet\.nii \(kBq\/mL\)$/);
      assertMatch(seen.titles[1], /: pet\.nii \(kBq\/mL\)$/);
      assert(seen.titles[0] !== seen.titles[1]);
      assertMatch(seen.mr, /: mr\.nii$/);
      assertEquals(seen.colormap, ["gray:1", "inferno:0.7"]);
      assertEquals(seen.units, "(kBq/mL)");
      assertEquals(seen.metrics, [
        ["method", "test volumes"],
        ["log-likelihood", "-1.234500e+3"],
        ["PSNR vs truth.nii", "31.23 dB"],
        ["SSIM vs truth.nii", "0.9000"],
        ["NRMSE vs truth.nii", "0.0500"],
        ["units", "kBq/mL"],
      ]);
      // One window for both sides, up to at least the brighter result's hot spot region.
      assert(Number(seen.window[1]) > Number(seen.window[0]), JSON.stringify(seen.window));
      for (const pane of [seen.paneA, seen.paneB]) {
        assert(pane.w > 100 && pane.h > 50, JSON.stringify(pane));
        // Non-empty: a good part of the canvas is drawn, with PET colours and grey MR.
        assert(pane.lit > 0.05 * pane.w * pane.h, JSON.stringify(pane));
        assert(pane.coloured > 200, JSON.stringify(pane));
        assert(pane.grey > 200, JSON.stringify(pane));
      }
      // Linked cursors: the right pane's crosshair followed the click in the left pane.
      assert(JSON.stringify(seen.cursor.a) !== JSON.stringify(seen.cursor.before), "cursor moved");
      for (let i = 0; i < 3; i++) assert(Math.abs(seen.cursor.a[i] - seen.cursor.b[i]) < 1e-6);
      assert(seen.location.length > 0);
      assertEquals(seen.windowApplied, [[0.5, 4], [0.5, 4]]);
      const png = await Deno.readFile(shot);
      assertEquals([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
      if (Deno.env.get("PETREL_VIEWER_SHOT")) {
        await Deno.copyFile(shot, Deno.env.get("PETREL_VIEWER_SHOT")!);
      }
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
