/**
 * Failover on PostgreSQL (skipped without `PETREL_TEST_PG_URL`): 1 server with no local slots
 * and 3 workers as real processes, 24 tiny jobs, one worker killed with SIGKILL while it holds
 * running jobs (a replacement starts) and, when `PETREL_TEST_PG_DIR` names the test cluster, a
 * PostgreSQL restart mid-run. Every job must succeed exactly once with its own correct result
 * (checked in the harness against n(n+1)(2n+1)/6), and pg-boss must hold each job completed once.
 * The 200-job, 2-kill run is `bench/server_failover.ts` (see docs/server.md).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { runFailover } from "../../bench/server_failover.ts";
import { PG_URL } from "./_stores.ts";

Deno.test({
  name: "server failover (postgres): kill -9 of a worker and a database restart lose nothing",
  ignore: !PG_URL,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const pgDir = Deno.env.get("PETREL_TEST_PG_DIR");
    const r = await runFailover({
      db: PG_URL,
      jobs: 24,
      workers: 3,
      slots: 2,
      killAt: [0.4],
      sleepMs: 500,
      leaseSeconds: 10,
      restartDbAt: pgDir ? 0.2 : undefined,
      pgDir,
    });
    assertEquals(r.notSucceeded, {});
    assertEquals(r.wrong, {});
    assertEquals(r.succeeded, 24);
    assertEquals(r.kills.length, 1);
    assert(r.kills[0].running >= 1, "the killed worker held running jobs");
    // The killed worker's jobs ran again elsewhere (attempt 2), and counted once.
    assert(r.retried >= r.kills[0].running, `retried ${r.retried}`);
    assertEquals(r.metrics, { queued: 0, running: 0, succeeded: 24 });
    assertEquals(r.dbRestarted, pgDir !== undefined);
  },
});
