/**
 * `/metrics`: the Prometheus text of known statistics (checked line by line), and the endpoint on
 * a live server after jobs of known outcomes (one succeeded, one cancelled while running).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { DURATION_BUCKETS, prometheusText, type StoreStats } from "../../core/server/mod.ts";
import { setup, TOKENS } from "./_helpers.ts";

Deno.test("metrics: Prometheus text of known statistics", () => {
  const st: StoreStats = {
    states: { queued: 3, running: 2, succeeded: 10, failed: 1, cancelled: 0 },
    reasons: { timeout: 1 },
    durations: {
      count: 2,
      sum: 7.5,
      buckets: DURATION_BUCKETS.map((le) => ({ le, count: le >= 5 ? 2 : 1 })),
    },
    workers: 3,
  };
  const lines = prometheusText(st, { localRunning: 0 }).trimEnd().split("\n");
  for (
    const l of [
      "# TYPE petrel_jobs_queued gauge",
      "petrel_jobs_queued 3",
      "petrel_jobs_running 2",
      'petrel_jobs{state="succeeded"} 10',
      'petrel_job_failures{reason="timeout"} 1',
      "# TYPE petrel_job_duration_seconds histogram",
      'petrel_job_duration_seconds_bucket{le="1"} 1',
      'petrel_job_duration_seconds_bucket{le="5"} 2',
      'petrel_job_duration_seconds_bucket{le="+Inf"} 2',
      "petrel_job_duration_seconds_sum 7.5",
      "petrel_job_duration_seconds_count 2",
      "petrel_workers 3",
      "petrel_local_running 0",
    ]
  ) assert(lines.includes(l), `missing '${l}' in\n${lines.join("\n")}`);
  // Every sample line is `name{labels} value` with a numeric value.
  for (const l of lines.filter((x) => !x.startsWith("#"))) {
    assert(/^[a-z_]+(\{[a-z]+="[^"]*"\})? [0-9.e+-]+$/.test(l), l);
  }
});

Deno.test("metrics: the endpoint counts a live server's jobs", async () => {
  const env = await setup();
  try {
    const A = TOKENS.alice;
    const ok = await env.json(A, "POST", "/api/jobs", { recipe: "sum", params: { steps: 1 } });
    const slow = await env.json(A, "POST", "/api/jobs", {
      recipe: "hostile",
      params: { attack: "loop" },
    });
    assertEquals([ok.status, slow.status], [201, 201]);
    await env.waitDone(A, ok.body.id as string);
    await env.json(A, "POST", `/api/jobs/${slow.body.id}/cancel`);
    await env.waitDone(A, slow.body.id as string);
    const res = await env.call(undefined, "GET", "/metrics"); // no token: aggregates only
    assertEquals(res.status, 200);
    assert(res.headers.get("content-type")!.startsWith("text/plain; version=0.0.4"));
    const text = await res.text();
    const value = (k: string): number =>
      Number(text.split("\n").find((l) => l.startsWith(`${k} `))?.split(" ")[1]);
    assertEquals(value("petrel_jobs_queued"), 0);
    assertEquals(value("petrel_jobs_running"), 0);
    assertEquals(value('petrel_jobs{state="succeeded"}'), 1);
    assertEquals(value('petrel_jobs{state="cancelled"}'), 1);
    assertEquals(value('petrel_job_failures{reason="cancelled"}'), 1);
    assertEquals(value("petrel_job_duration_seconds_count"), 1);
    assert(!text.includes("alice"), "no user names");
  } finally {
    await env.close();
  }
});
