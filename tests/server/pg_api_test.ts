/**
 * The API on PostgreSQL (skipped without `PETREL_TEST_PG_URL`): a server with no local slots and a
 * worker (another store over the same database, in this process) run a job end to end; the
 * server learns the worker's log lines, progress and end through LISTEN/NOTIFY (its SSE stream and
 * results), a cancellation asked at the server reaches the run on the worker, and a worker stopped
 * gracefully hands its run back at once to a second worker.
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import pg from "pg";
import { startWorker } from "../../core/server/mod.ts";
import { b64, setup, TOKENS } from "./_helpers.ts";
import { PG_URL } from "./_stores.ts";

const A = TOKENS.alice;

Deno.test({
  name:
    "server api (postgres): a worker runs the job, logs stream through NOTIFY, cancel reaches it",
  ignore: !PG_URL,
  fn: async () => {
    // A database of its own: the default schema names, and nothing left by other runs.
    const name = `a_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const u = new URL(PG_URL!);
    u.pathname = `/${name}`;
    const db = u.toString();
    const env = await setup({ gpus: 0, db, leaseSeconds: 10 });
    let worker = await startWorker({
      db,
      dataDir: `${env.dir}/data`,
      slots: 2,
      leaseSeconds: 10,
      verbose: false,
    });
    try {
      const sub = await env.json(A, "POST", "/api/jobs", {
        recipe: "sum",
        params: { scale: 2, steps: 3 },
        seed: 5,
        inputs: [{ name: "a.bin", dataBase64: b64(new Uint8Array([10, 20, 30])) }],
        datasets: ["phantom"],
      });
      assertEquals(sub.status, 201, JSON.stringify(sub.body));
      const id = sub.body.id as string;
      // The server runs nothing itself: everything below came from the worker through the database.
      const text = await (await env.call(A, "GET", `/api/jobs/${id}/events`)).text();
      assertMatch(text, /event: log\ndata: \{"seq":\d+,"line":"step 3 of 3"\}/);
      assertMatch(text, /event: progress\ndata: \{"done":3,"total":3\}/);
      assertMatch(text, /event: end\ndata: \{"state":"succeeded"\}/);
      assertEquals(env.server.runner.runningCount, 0);
      const result = await (await env.call(A, "GET", `/api/jobs/${id}/files/result.json`)).json();
      // Independent reference: byte sums computed here (10+20+30; the phantom's 1+2+3+250).
      assertEquals(result.sums, { "a.bin": 60, "counts.bin": 256 });
      assertEquals([result.scale, result.seed], [2, 5]);

      // A long job, cancelled at the server while the worker runs it.
      const slow = await env.json(A, "POST", "/api/jobs", {
        recipe: "sum",
        params: { steps: 200, sleepMs: 100 },
      });
      const sid = slow.body.id as string;
      let after = 0;
      for (let i = 0; i < 300; i++) {
        const r = await env.json(A, "GET", `/api/jobs/${sid}/log?after=${after}&wait=2000`);
        after = r.body.next as number;
        if ((r.body.lines as { line: string }[]).some((l) => /step \d+ of 200/.test(l.line))) break;
      }
      const c = await env.json(A, "POST", `/api/jobs/${sid}/cancel`);
      assertEquals(c.status === 200 || c.status === 202, true);
      const done = await env.waitDone(A, sid);
      assertEquals([done.state, done.reason], ["cancelled", "cancelled"]);
      // A graceful stop mid-run: the job is queued again at once (no lease wait), and a second
      // worker runs it as attempt 2.
      const moved = await env.json(A, "POST", "/api/jobs", {
        recipe: "sum",
        params: { steps: 40, sleepMs: 100 },
      });
      const mid = moved.body.id as string;
      after = 0;
      for (let i = 0; i < 300; i++) {
        const r = await env.json(A, "GET", `/api/jobs/${mid}/log?after=${after}&wait=2000`);
        after = r.body.next as number;
        if ((r.body.lines as { line: string }[]).some((l) => /step \d+ of 40/.test(l.line))) break;
      }
      await worker.shutdown();
      const handed = (await env.json(A, "GET", `/api/jobs/${mid}`)).body;
      assertEquals([handed.state, handed.attempts], ["queued", 1]);
      worker = await startWorker({
        db,
        dataDir: `${env.dir}/data`,
        leaseSeconds: 10,
        verbose: false,
      });
      const second = await env.waitDone(A, mid, 120_000);
      assertEquals([second.state, second.attempts], ["succeeded", 2]);
      const metrics = await (await env.call(undefined, "GET", "/metrics")).text();
      assertMatch(metrics, /^petrel_jobs\{state="succeeded"\} 2$/m);
      assertMatch(metrics, /^petrel_jobs\{state="cancelled"\} 1$/m);
      assertMatch(metrics, /^petrel_workers [1-9]/m);
    } finally {
      await worker.shutdown();
      await env.close();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  },
});
