/**
 * Browser driver of `viewer_test.ts`, run as a subprocess (`deno run -A`, as playwright-core
 * needs). Usage: `_viewer_driver.ts <url> <token> <screenshot.png>`. Logs in, opens two finished
 * jobs' results in the NiiVue viewer side by side over the MR, reads the WebGL pixels of both
 * panes, moves the left cursor and reads the right one, and records every request the page made.
 * Prints `RESULT <json>`.
 *
 * @module
 */
import { chromium } from "playwright-core";

const [url, token, shot] = Deno.args;
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    // WebGL2 on the CPU (SwiftShader), as there is no GPU.
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});
const seen: Record<string, unknown> = {};
const t0 = performance.now();
const marks: Record<string, number> = {};
const mark = (what: string) => (marks[what] = Math.round(performance.now() - t0));
const requests: string[] = [];
const problems: string[] = [];
try {
  const page = await browser.newPage({ bypassCSP: false, viewport: { width: 1200, height: 1400 } });
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("request", (r) => requests.push(r.url()));
  // The page keeps its strict CSP (no bypass): NiiVue must work under it. Playwright's
  // waitForFunction evaluates strings in the page, which that CSP forbids, so poll through
  // page.evaluate (the DevTools protocol is exempt).
  const waitFor = async (expr: string, timeoutMs = 30_000) => {
    const end = Date.now() + timeoutMs;
    while (!(await page.evaluate(expr))) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${expr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await page.goto(url);
  await page.fill("#token", token);
  await page.click("#login");
  await page.waitForSelector("#app-view:not([hidden])");

  // Two jobs of the volumes recipe, hot spot 8 and 16 (submitted through the API).
  const ids: string[] = [];
  for (const hot of [8, 16]) {
    const r = await fetch(`${url}/api/jobs`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ recipe: "volumes", params: { hot } }),
    });
    ids.push((await r.json()).id);
  }
  for (const id of ids) {
    for (let t = 0; t < 600; t++) {
      const j = await (await fetch(`${url}/api/jobs/${id}`, {
        headers: { authorization: `Bearer ${token}` },
      })).json();
      if (j.state === "succeeded") break;
      if (j.state === "failed" || j.state === "cancelled") throw new Error(JSON.stringify(j));
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  mark("jobs done");
  await page.click("#refresh");
  await page.waitForSelector(`#jobs tr[data-id="${ids[0]}"] button.show`);

  // Job 1: "View" its pet.nii (left); its mr.nii becomes the underlay.
  await page.click(`#jobs tr[data-id="${ids[0]}"] button.show`);
  await page.waitForSelector("#job-files li button.nv-a");
  const petButton = (pane: string) =>
    page.locator("#job-files li", { hasText: "pet.nii" }).locator(`button.nv-${pane}`);
  await petButton("a").click();
  await page.waitForSelector("#nv:not([hidden])");
  await waitFor(`window.petrelViewers.a && window.petrelViewers.a.volumes.length === 2`, 60_000);
  mark("left shown");
  // The job's metrics.json is shown as a table.
  seen.metrics = await page.evaluate(
    `[...document.querySelectorAll("#job-metrics tr")].map((r) => [...r.cells].map((c) => c.textContent))`,
  );
  // Job 2: "Compare" its pet.nii (right).
  await page.click(`#jobs tr[data-id="${ids[1]}"] button.show`);
  await waitFor(
    `[...document.querySelectorAll("#job-files li")].some((l) => l.textContent.includes("pet.nii"))`,
  );
  await petButton("b").click();
  await waitFor(`window.petrelViewers.b && window.petrelViewers.b.volumes.length === 2`, 60_000);
  mark("right shown");
  seen.titles = [await page.textContent("#nv-a-title"), await page.textContent("#nv-b-title")];
  seen.mr = await page.evaluate(`document.getElementById("nv-mr").selectedOptions[0].textContent`);
  seen.units = await page.textContent("#nv-units");
  seen.window = [await page.inputValue("#nv-min"), await page.inputValue("#nv-max")];
  seen.colormap = await page.evaluate(
    `window.petrelViewers.a.volumes.map((v) => v.colormap + ":" + v.opacity)`,
  );

  // Pixels of each pane: drawn and read back in one task, so the WebGL buffer is still there.
  const readPane = (pane: string) =>
    page.evaluate(`(() => {
    const nv = window.petrelViewers.${pane};
    nv.drawScene();
    const gl = nv.gl;
    const w = gl.drawingBufferWidth, h = gl.drawingBufferHeight;
    const px = new Uint8Array(w * h * 4);
    gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
    let lit = 0, coloured = 0, grey = 0;
    for (let i = 0; i < px.length; i += 4) {
      const [r, g, b] = [px[i], px[i + 1], px[i + 2]];
      if (r + g + b > 30) lit++;
      if (Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
      else if (r > 40 && Math.abs(r - g) < 8 && Math.abs(g - b) < 8) grey++;
    }
    return { w, h, lit, coloured, grey };
  })()`);
  seen.paneA = await readPane("a");
  seen.paneB = await readPane("b");
  mark("pixels read");

  // The cursors are linked: clicking the left pane moves the right pane's crosshair with it.
  const before = await page.evaluate(`[...window.petrelViewers.b.scene.crosshairPos]`);
  const box = (await page.locator("#nv-a").boundingBox())!;
  await page.mouse.click(box.x + box.width * 0.12, box.y + box.height * 0.35);
  await page.waitForTimeout(300);
  seen.cursor = {
    before,
    a: await page.evaluate(`[...window.petrelViewers.a.scene.crosshairPos]`),
    b: await page.evaluate(`[...window.petrelViewers.b.scene.crosshairPos]`),
  };
  seen.location = await page.textContent("#nv-a-loc");

  // Windowing: a typed window reaches both results.
  await page.fill("#nv-min", "0.5");
  await page.fill("#nv-max", "4");
  await page.dispatchEvent("#nv-max", "change");
  seen.windowApplied = await page.evaluate(
    `["a", "b"].map((p) => { const v = window.petrelViewers[p].volumes[1]; return [v.cal_min, v.cal_max]; })`,
  );
  await page.locator("#nv").screenshot({ path: shot });
} catch (e) {
  seen.failure = String((e as Error).stack ?? e);
} finally {
  seen.requests = requests;
  mark("end");
  seen.marks = marks;
  seen.problems = problems;
  await browser.close();
}
console.log(`RESULT ${JSON.stringify(seen)}`);
