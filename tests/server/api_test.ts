/**
 * The HTTP API through the handler (no socket): authentication, submission (JSON and multipart),
 * status, log, events, files, cancel, isolation between users, malformed requests.
 */
import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { b64, fullLog, setup, TOKENS } from "./_helpers.ts";

const A = TOKENS.alice;
const B = TOKENS.bob;

Deno.test("server api: authentication (missing, wrong, sha256, scrypt tokens)", async () => {
  const env = await setup();
  try {
    assertEquals((await env.json(undefined, "GET", "/api/health")).status, 200);
    const none = await env.call(undefined, "GET", "/api/jobs");
    assertEquals(none.status, 401);
    assertEquals(none.headers.get("www-authenticate"), 'Bearer realm="petrel"');
    assertMatch(String((await none.json()).error), /authentication required/);
    assertEquals((await env.json("pt_not_a_real_token_000", "GET", "/api/me")).status, 401);
    assertEquals((await env.json(`${A}x`, "GET", "/api/me")).status, 401);
    assertEquals(
      (await env.call(undefined, "GET", "/api/me", undefined, { authorization: `Basic ${A}` }))
        .status,
      401,
    );
    const me = await env.json(A, "GET", "/api/me");
    assertEquals([me.status, me.body.user], [200, "alice"]);
    const bob = await env.json(B, "GET", "/api/me"); // scrypt-hashed token
    assertEquals([bob.status, bob.body.user], [200, "bob"]);
    assertEquals((await env.json(A, "GET", "/api/recipes")).body.recipes, ["sum", "hostile"]);
    assertEquals((await env.json(A, "GET", "/api/datasets")).body.datasets, ["phantom"]);
    // A recipe's parameters, from its own zod schema (described in the sandbox).
    const info = await env.json(A, "GET", "/api/recipes/sum");
    assertEquals(info.status, 200, JSON.stringify(info.body));
    const props = (info.body.params as { properties: Record<string, { default?: unknown }> })
      .properties;
    assertEquals(Object.keys(props).sort(), ["scale", "sleepMs", "steps"]);
    assertEquals([props.scale.default, props.steps.default], [1, 3]);
    assertEquals((await env.json(A, "GET", "/api/recipes/nope")).status, 404);
    assertEquals((await env.json(undefined, "GET", "/api/recipes/sum")).status, 401);
  } finally {
    await env.close();
  }
});

Deno.test("server api: JSON submission runs, logs, reports progress and serves results", async () => {
  const env = await setup();
  try {
    const input = new Uint8Array([10, 20, 30, 255, 0, 7]);
    const sub = await env.json(A, "POST", "/api/jobs", {
      recipe: "sum",
      params: { scale: 2, steps: 4 },
      seed: 42,
      inputs: [{ name: "a.bin", dataBase64: b64(input) }],
      datasets: ["phantom"],
    });
    assertEquals(sub.status, 201, JSON.stringify(sub.body));
    const id = sub.body.id as string;
    assertEquals(sub.body.state, "queued");
    assertEquals(sub.body.inputs, ["a.bin"]); // names only, no server paths
    assertEquals(sub.body.datasets, ["phantom"]);
    const job = await env.waitDone(A, id);
    assertEquals(job.state, "succeeded", JSON.stringify(job));
    assertEquals(job.progress, { done: 4, total: 4 });
    assertEquals(job.exitCode, 0);
    const log = await fullLog(env, A, id);
    for (let i = 1; i <= 4; i++) assert(log.includes(`step ${i} of 4`), log);
    const files = await env.json(A, "GET", `/api/jobs/${id}/files`);
    assertEquals(
      (files.body.files as { path: string }[]).map((f) => f.path),
      ["images/slices.png", "manifest.json", "result.json", "volume.nii"],
    );
    const res = await env.call(A, "GET", `/api/jobs/${id}/files/result.json`);
    assertEquals(res.status, 200);
    assertEquals(res.headers.get("x-content-type-options"), "nosniff");
    const result = await res.json();
    // Independent reference: byte sums computed here.
    assertEquals(result.sums, { "a.bin": 322, "counts.bin": 256 });
    assertEquals([result.scale, result.seed], [2, 42]);
    const img = await env.call(A, "GET", `/api/jobs/${id}/files/images/slices.png`);
    assertEquals(img.headers.get("content-type"), "image/png");
    const bytes = new Uint8Array(await img.arrayBuffer());
    assertEquals([...bytes.subarray(0, 4)], [137, 80, 78, 71]);
    const listed = await env.json(A, "GET", "/api/jobs");
    assertEquals((listed.body.jobs as { id: string }[]).map((j) => j.id), [id]);
  } finally {
    await env.close();
  }
});

Deno.test("server api: multipart submission with an uploaded recipe; SSE event stream", async () => {
  const env = await setup();
  try {
    const form = new FormData();
    const src = await Deno.readFile(new URL("./fixtures/sum_recipe.ts", import.meta.url));
    form.append("recipeFile", new File([src], "my_recipe.ts"));
    form.append("params", JSON.stringify({ steps: 2 }));
    form.append("seed", "7");
    form.append("inputs", new File([new Uint8Array([1, 2, 3])], "x.raw"));
    form.append("inputs", new File([new Uint8Array([200])], "y.raw"));
    const sub = await env.json(A, "POST", "/api/jobs", form);
    assertEquals(sub.status, 201, JSON.stringify(sub.body));
    const id = sub.body.id as string;
    assertEquals(sub.body.recipe, "upload:my_recipe.ts");
    const res = await env.call(A, "GET", `/api/jobs/${id}/events`);
    assertEquals(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
    const text = await res.text(); // the stream ends after the terminal state
    assertMatch(text, /event: log\ndata: \{"seq":\d+,"line":"step 2 of 2"\}/);
    assertMatch(text, /event: progress\ndata: \{"done":2,"total":2\}/);
    assertMatch(text, /event: end\ndata: \{"state":"succeeded"\}/);
    const result = await (await env.call(A, "GET", `/api/jobs/${id}/files/result.json`)).json();
    assertEquals(result.sums, { "x.raw": 6, "y.raw": 200 });
    assertEquals(result.seed, 7);
  } finally {
    await env.close();
  }
});

Deno.test("server api: malformed requests get clear 4xx errors and create nothing", async () => {
  const env = await setup();
  try {
    const bad = async (
      body: unknown,
      status: number,
      pattern: RegExp,
      headers: Record<string, string> = {},
    ) => {
      const res = await env.call(A, "POST", "/api/jobs", body, headers);
      const b = await res.json();
      assertEquals(res.status, status, `${JSON.stringify(body).slice(0, 80)} → ${b.error}`);
      assertMatch(String(b.error), pattern);
    };
    await bad("{not json", 400, /not valid JSON/, { "content-type": "application/json" });
    await bad({ recipe: "sum", bogus: 1 }, 400, /invalid submission/);
    await bad({ recipe: "nope" }, 400, /unknown recipe 'nope'/);
    await bad({}, 400, /exactly one of 'recipe'/);
    await bad({ recipe: "sum", recipeSource: "x" }, 400, /exactly one/);
    await bad({ recipe: "sum", params: [1] }, 400, /params/);
    await bad({ recipe: "sum", seed: -1 }, 400, /seed/);
    await bad({ recipe: "sum", datasets: ["../etc"] }, 400, /unknown dataset/);
    await bad({ recipe: "sum", inputs: [{ name: "../x", dataBase64: "" }] }, 400, /not allowed/);
    await bad({ recipe: "sum", inputs: [{ name: "a/b", dataBase64: "" }] }, 400, /not allowed/);
    await bad({ recipe: "sum", inputs: [{ name: "a", dataBase64: "@@@" }] }, 400, /base64/);
    await bad(
      { recipe: "sum", inputs: [{ name: "a", dataBase64: "" }, { name: "a", dataBase64: "" }] },
      400,
      /twice/,
    );
    await bad({ recipeSource: "x", recipeFileName: "../../evil.ts" }, 400, /not allowed/);
    await bad("recipe=sum", 415, /unsupported content type/, {
      "content-type": "application/x-www-form-urlencoded",
    });
    await bad("--xx\r\ngarbage", 400, /multipart/, {
      "content-type": "multipart/form-data; boundary=zz",
    });
    const form = new FormData();
    form.append("recipe", "sum");
    form.append("evil", "1");
    await bad(form, 400, /unknown form field 'evil'/);
    // Too large (default upload limit of the test config is 1 MiB).
    const big = b64(new Uint8Array(1100 << 10));
    await bad(
      { recipe: "sum", inputs: [{ name: "big", dataBase64: big }] },
      413,
      /exceeds|at most/,
    );
    const bigForm = new FormData();
    bigForm.append("recipe", "sum");
    bigForm.append("inputs", new File([new Uint8Array(2 << 20)], "big.bin"));
    await bad(bigForm, 413, /exceeds/);
    // Other routes.
    assertEquals((await env.json(A, "PUT", "/api/jobs")).status, 405);
    assertEquals((await env.json(A, "GET", "/api/nothing")).status, 404);
    assertEquals((await env.json(A, "GET", "/api/jobs/not-a-uuid")).status, 404);
    assertEquals((await env.json(A, "GET", `/api/jobs/${crypto.randomUUID()}`)).status, 404);
    assertEquals((await env.call(A, "GET", "/../../etc/passwd")).status, 404);
    // Nothing was created.
    assertEquals((await env.json(A, "GET", "/api/jobs")).body.jobs, []);
    const dirs = await Array.fromAsync(Deno.readDir(`${env.dir}/data/jobs`));
    assert(dirs.length <= 1, `job folders: ${dirs.map((d) => d.name)}`);
  } finally {
    await env.close();
  }
});

Deno.test("server api: a user never sees, reads or cancels another user's jobs", async () => {
  const env = await setup();
  try {
    const sub = await env.json(A, "POST", "/api/jobs", {
      recipe: "sum",
      params: { steps: 2 },
      inputs: [{ name: "secret.bin", dataBase64: b64(new Uint8Array([42])) }],
    });
    const id = sub.body.id as string;
    await env.waitDone(A, id);
    for (
      const [m, p] of [
        ["GET", `/api/jobs/${id}`],
        ["GET", `/api/jobs/${id}/log`],
        ["GET", `/api/jobs/${id}/events`],
        ["GET", `/api/jobs/${id}/files`],
        ["GET", `/api/jobs/${id}/files/result.json`],
        ["POST", `/api/jobs/${id}/cancel`],
        ["DELETE", `/api/jobs/${id}`],
        ["POST", `/api/jobs/${id}/purge`],
      ]
    ) {
      const res = await env.call(B, m, p);
      assertEquals(res.status, 404, `${m} ${p}`);
      assertEquals(await res.json(), { error: `no job '${id}'` }); // same as a missing job
    }
    assertEquals((await env.json(B, "GET", "/api/jobs")).body.jobs, []);
    assertEquals((await env.json(A, "GET", `/api/jobs/${id}`)).body.state, "succeeded");
    // Path traversal out of the output folder (encoded and not).
    for (
      const p of [
        "../in/secret.bin",
        "..%2fin%2fsecret.bin",
        "%2e%2e/in/secret.bin",
        "images/../../in/secret.bin",
        "%00",
      ]
    ) {
      const res = await env.call(A, "GET", `/api/jobs/${id}/files/${p}`);
      assert(res.status === 400 || res.status === 404, `${p}: ${res.status}`);
      await res.body?.cancel();
    }
    // A symlink in the output folder pointing outside is not served.
    await Deno.symlink(`${env.dir}/data/petrel.db`, `${env.dir}/data/jobs/alice/${id}/out-1/db`);
    const res = await env.call(A, "GET", `/api/jobs/${id}/files/db`);
    assertEquals(res.status, 404);
    await res.body?.cancel();
    // The owner purges the ended job: its record, log and folder are gone.
    const jobDir = `${env.dir}/data/jobs/alice/${id}`;
    await Deno.stat(jobDir);
    assertEquals(await env.json(A, "POST", `/api/jobs/${id}/purge`), {
      status: 200,
      body: { purged: id },
    });
    assertEquals((await env.json(A, "GET", `/api/jobs/${id}`)).status, 404);
    assertEquals(await env.server.store.readLog(id, 0, 10), []);
    await Deno.stat(jobDir).then(() => assert(false, "job folder kept"), () => {});
  } finally {
    await env.close();
  }
});

Deno.test("server api: cancel a queued and a running job; active-job quota", async () => {
  const env = await setup({ jobsPerGpu: 1 });
  try {
    const slow = { recipe: "sum", params: { steps: 100, sleepMs: 100 } };
    const a = (await env.json(A, "POST", "/api/jobs", slow)).body.id as string;
    const b = (await env.json(A, "POST", "/api/jobs", slow)).body.id as string;
    // Wait until the first runs (progress reported), the second is still queued.
    for (let i = 0; i < 600; i++) {
      const j = await env.json(A, "GET", `/api/jobs/${a}`);
      if ((j.body.progress as { done: number }).done > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assertEquals((await env.json(A, "GET", `/api/jobs/${b}`)).body.state, "queued");
    const cb = await env.json(A, "POST", `/api/jobs/${b}/cancel`);
    assertEquals([cb.body.state, cb.body.reason], ["cancelled", "cancelled"]);
    const ca = await env.json(A, "DELETE", `/api/jobs/${a}`);
    assertEquals([ca.body.state, ca.body.reason], ["cancelled", "cancelled"]);
    assert((ca.body.progress as { done: number }).done < 100);
    // Cancelling again is harmless.
    assertEquals((await env.json(A, "POST", `/api/jobs/${a}/cancel`)).body.state, "cancelled");
    // A job that has not ended cannot be purged.
    const c = (await env.json(A, "POST", "/api/jobs", slow)).body.id as string;
    const p = await env.json(A, "POST", `/api/jobs/${c}/purge`);
    assertEquals(p.status, 409);
    assertMatch(String(p.body.error), /has not ended/);
    await env.json(A, "POST", `/api/jobs/${c}/cancel`);
  } finally {
    await env.close();
  }
  const env2 = await setup({
    limits: {
      timeoutMs: 20_000,
      memoryMb: 256,
      maxOutputBytes: 1 << 20,
      maxUploadBytes: 1 << 20,
      maxActiveJobs: 2,
    },
    jobsPerGpu: 1,
  });
  try {
    const slow = { recipe: "sum", params: { steps: 50, sleepMs: 100 } };
    // Six at once: the quota check is atomic, so exactly two are accepted.
    const subs = await Promise.all(
      Array.from({ length: 6 }, () => env2.json(A, "POST", "/api/jobs", slow)),
    );
    assertEquals(subs.map((r) => r.status).sort(), [201, 201, 429, 429, 429, 429]);
    const refused = subs.find((r) => r.status === 429)!;
    assertMatch(String(refused.body.error), /already has 2 queued or running jobs/);
    assertEquals(((await env2.json(A, "GET", "/api/jobs")).body.jobs as unknown[]).length, 2);
    const userDirs = await Array.fromAsync(Deno.readDir(`${env2.dir}/data/jobs/alice`));
    assertEquals(userDirs.length, 2); // refused submissions left no folder
    // Another user's quota is separate.
    const bob = await env2.json(B, "POST", "/api/jobs", { recipe: "sum", params: { steps: 1 } });
    assertEquals(bob.status, 201);
  } finally {
    await env2.close();
  }
});

Deno.test("server api: web page with CSP; browser-style multipart (mixed-case boundary)", async () => {
  const env = await setup();
  try {
    const page = await env.call(undefined, "GET", "/");
    assertEquals(page.status, 200);
    assertMatch(page.headers.get("content-security-policy")!, /script-src 'self'/);
    assertMatch(await page.text(), /<script src="\/app.js"/);
    const js = await env.call(undefined, "GET", "/app.js");
    assertEquals(js.headers.get("content-type"), "text/javascript; charset=utf-8");
    assertMatch(await js.text(), /Authorization|authorization/);
    // Browsers use boundaries such as ----WebKitFormBoundaryAbC…: case must be kept.
    const boundary = "----WebKitFormBoundaryXyZAbC123";
    const body = [
      `--${boundary}`,
      'Content-Disposition: form-data; name="recipe"',
      "",
      "sum",
      `--${boundary}`,
      'Content-Disposition: form-data; name="inputs"; filename="k.bin"',
      "Content-Type: application/octet-stream",
      "",
      "AB",
      `--${boundary}--`,
      "",
    ].join("\r\n");
    const res = await env.call(A, "POST", "/api/jobs", body, {
      "content-type": `multipart/form-data; boundary=${boundary}`,
    });
    const sub = await res.json();
    assertEquals(res.status, 201, sub.error);
    const job = await env.waitDone(A, sub.id);
    assertEquals(job.state, "succeeded");
    const result = await (await env.call(A, "GET", `/api/jobs/${sub.id}/files/result.json`)).json();
    assertEquals(result.sums, { "k.bin": 65 + 66 });
  } finally {
    await env.close();
  }
});
