/**
 * Many submissions at once: every job finishes with its own correct result, and never more jobs
 * run at once than the configured slots (GPUs × jobs per GPU).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { b64, setup, TOKENS } from "./_helpers.ts";

Deno.test("server: 24 concurrent submissions with 2 slots all finish correctly", async () => {
  const env = await setup({ gpus: 1, jobsPerGpu: 2 });
  try {
    const n = 24;
    let maxRunning = 0;
    const sampler = setInterval(() => {
      maxRunning = Math.max(maxRunning, env.server.runner.runningCount);
    }, 5);
    const subs = await Promise.all(
      Array.from(
        { length: n },
        (_, i) =>
          env.json(i % 3 === 0 ? TOKENS.bob : TOKENS.alice, "POST", "/api/jobs", {
            recipe: "sum",
            params: { scale: i, steps: 1 },
            seed: 1000 + i,
            inputs: [{ name: `in${i}.bin`, dataBase64: b64(new Uint8Array([i, 2 * i, 3])) }],
          }),
      ),
    );
    for (const s of subs) assertEquals(s.status, 201, JSON.stringify(s.body));
    const intervals: [number, number][] = [];
    for (const [i, s] of subs.entries()) {
      const token = i % 3 === 0 ? TOKENS.bob : TOKENS.alice;
      const id = s.body.id as string;
      const job = await env.waitDone(token, id, 120_000);
      assertEquals(job.state, "succeeded", `job ${i}: ${job.error}`);
      assertEquals(job.attempts, 1);
      const r = await (await env.call(token, "GET", `/api/jobs/${id}/files/result.json`)).json();
      assertEquals(r.sums, { [`in${i}.bin`]: 3 * i + 3 }, `job ${i}`);
      assertEquals([r.scale, r.seed], [i, 1000 + i]);
      intervals.push([r.startedAt, r.endedAt]);
    }
    clearInterval(sampler);
    assert(maxRunning <= 2 && maxRunning >= 1, `max running ${maxRunning}`);
    // Independent check from the recipes' own clocks: at most 2 runs overlap at any instant.
    for (const [s] of intervals) {
      const overlapping = intervals.filter(([a, b]) => a <= s && s < b).length;
      assert(overlapping <= 2, `${overlapping} runs overlapped at ${s}`);
    }
    // Each user lists exactly their own jobs.
    const bobJobs = (await env.json(TOKENS.bob, "GET", "/api/jobs")).body.jobs as unknown[];
    const aliceJobs = (await env.json(TOKENS.alice, "GET", "/api/jobs")).body.jobs as unknown[];
    assertEquals([bobJobs.length, aliceJobs.length], [8, 16]);
  } finally {
    await env.close();
  }
});
