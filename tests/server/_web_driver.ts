/**
 * Browser driver of `web_test.ts`, run as a subprocess (playwright-core needs `--allow-all` in
 * Deno: it probes `/proc/sys`). Usage: `deno run -A _web_driver.ts <url> <aliceToken> <bobToken>`.
 * Drives the page in headless Chromium and prints `RESULT <json>` with what it observed.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { chromium } from "playwright-core";

const [url, alice, bob] = Deno.args;
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});
const seen: Record<string, unknown> = {};
try {
  // bypassCSP: the page's CSP forbids string evaluation, which playwright's waits use.
  const page = await browser.newPage({ bypassCSP: true });
  const problems: string[] = [];
  page.on("console", (m) => {
    // The 401 of the wrong-token attempt is expected; any other error is a page problem.
    if (m.type() === "error" && !/401/.test(m.text())) problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(url);

  // Wrong token, then the right one.
  await page.fill("#token", "pt_wrong_token_123456");
  await page.click("#login");
  await page.waitForFunction(`document.getElementById("login-error").textContent !== ""`);
  seen.wrongTokenError = await page.textContent("#login-error");
  seen.appHiddenAfterWrongToken = await page.evaluate(`document.getElementById("app-view").hidden`);
  await page.fill("#token", alice);
  await page.click("#login");
  await page.waitForSelector("#app-view:not([hidden])");
  seen.who = await page.textContent("#who");
  seen.recipes = await page.evaluate(
    `[...document.querySelectorAll("#recipe option")].map((o) => o.value)`,
  );

  // The recipe's parameters are described and their defaults filled in.
  await page.waitForFunction(
    `document.getElementById("recipe-info").textContent.includes("steps")`,
  );
  seen.recipeInfo = await page.textContent("#recipe-info");
  seen.paramsPrefilled = await page.inputValue("#params");

  // Submit the allow-listed recipe with an uploaded file and a dataset; watch it finish.
  await page.selectOption("#recipe", "sum");
  await page.fill("#params", JSON.stringify({ steps: 3, scale: 2, sleepMs: 150 }));
  await page.fill("#seed", "5");
  await page.setInputFiles("#inputs", {
    name: "web.bin",
    mimeType: "application/octet-stream",
    buffer: Buffer.from([9, 9, 9]),
  });
  await page.check("#datasets input[value=phantom]");
  await page.click("#submit");
  await page.waitForSelector("#job-view:not([hidden])");
  await page.waitForFunction(
    `document.getElementById("job-state").textContent === "succeeded"`,
    undefined,
    { timeout: 30_000 },
  );
  seen.jobId = await page.textContent("#job-id");
  seen.log = await page.textContent("#job-log");
  seen.progress = await page.evaluate(`document.getElementById("job-progress").value`);
  await page.waitForSelector("#job-images img");
  await page.waitForFunction(`document.querySelector("#job-images img").naturalWidth > 0`);
  seen.image = await page.evaluate(`(() => {
    const i = document.querySelector("#job-images img");
    return { w: i.naturalWidth, h: i.naturalHeight, src: i.src, alt: i.alt };
  })()`);
  seen.files = await page.evaluate(
    `[...document.querySelectorAll("#job-files a")].map((a) => a.textContent)`,
  );
  seen.aliceRows = await page.evaluate(`document.querySelectorAll("#jobs tbody tr").length`);

  // The NIfTI viewer: middle slice first, then the slider moves to the first one.
  await page.click("#job-files button.view.slices");
  await page.waitForSelector("#viewer:not([hidden])");
  const pixels = `(() => {
    const c = document.getElementById("viewer-canvas");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    const grey = [];
    for (let i = 0; i < d.length; i += 4) grey.push(d[i]);
    return { w: c.width, h: c.height, grey, index: document.getElementById("viewer-index").textContent };
  })()`;
  seen.sliceMiddle = await page.evaluate(pixels);
  await page.fill("#viewer-slice", "0");
  await page.dispatchEvent("#viewer-slice", "input");
  seen.sliceFirst = await page.evaluate(pixels);
  seen.viewerInfo = await page.textContent("#viewer-info");

  // Bob sees none of Alice's jobs.
  await page.click("#logout");
  await page.fill("#token", bob);
  await page.click("#login");
  await page.waitForFunction(`document.getElementById("who").textContent === "logged in as bob"`);
  await page.waitForTimeout(300);
  seen.bobRows = await page.evaluate(`document.querySelectorAll("#jobs tbody tr").length`);
  seen.problems = problems;
  console.log(`RESULT ${JSON.stringify(seen)}`);
} catch (e) {
  const pages = browser.contexts().flatMap((c) => c.pages());
  const errors = pages.length
    ? await pages[0].evaluate(
      `[...document.querySelectorAll(".error")].map((e) => e.textContent).join(" | ")`,
    ).catch(() => "")
    : "";
  console.log(`RESULT ${JSON.stringify({ ...seen, failure: `${e}; page errors: ${errors}` })}`);
} finally {
  await browser.close();
}
