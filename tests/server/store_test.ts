/**
 * The job stores alone (no processes), the same suite against SQLite and, when
 * `PETREL_TEST_PG_URL` is set, PostgreSQL: claim order and fairness, atomic state changes, log cap,
 * recovery after a crash under both restart policies, fencing of a lost run's late result,
 * statistics.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { JobStore, NewJob } from "../../core/server/mod.ts";
import pg from "pg";
import { type Backend, backends, PG_URL } from "./_stores.ts";

function job(user: string, n: number): NewJob {
  return {
    id: crypto.randomUUID(),
    user,
    recipe: `r${n}`,
    recipePath: "/r.ts",
    params: { n },
    inputs: [],
    datasets: [],
    jobDir: `/jobs/${user}/${n}`,
    limits: { timeoutMs: 1000, memoryMb: 256, maxOutputBytes: 1024 },
  };
}

async function withStore(
  make: () => Promise<Backend>,
  f: (s: JobStore, b: Backend, reopen: () => Promise<JobStore>) => Promise<void>,
): Promise<void> {
  const b = await make();
  const opened: JobStore[] = [];
  const open = async (): Promise<JobStore> => {
    const s = await b.open();
    opened.push(s);
    return s;
  };
  try {
    await f(await open(), b, open);
  } finally {
    for (const s of opened) await s.close();
    await b.cleanup();
  }
}

for (const { name, make } of backends()) {
  Deno.test(`store (${name}): claims oldest first, users with fewer jobs first, each job once`, async () => {
    await withStore(make, async (s) => {
      const a1 = (await s.insert(job("alice", 1)))!;
      const a2 = (await s.insert(job("alice", 2)))!;
      const a3 = (await s.insert(job("alice", 3), { maxActive: 3 }))!;
      assertEquals(await s.insert(job("alice", 9), { maxActive: 3 }), undefined); // quota, atomic
      const b1 = (await s.insert(job("bob", 1), { maxActive: 3 }))!;
      assertEquals(a1.state, "queued");
      assertEquals(await s.countActive("alice"), 3);
      const order = [];
      for (let i = 0; i < 5; i++) order.push((await s.claimNext("w", 0))?.id);
      // alice1 (oldest); then bob1 (bob has none); then alice2, alice3; then nothing.
      assertEquals(order, [a1.id, b1.id, a2.id, a3.id, undefined]);
      const running = await s.get(a1.id);
      assertEquals([running!.state, running!.attempts, running!.workerId], ["running", 1, "w"]);
      assertEquals(await s.cancelQueued(a1.id), false); // running, not queued
      assertEquals(await s.finish(a1.id, { state: "succeeded", exitCode: 0 }), true);
      assertEquals(await s.finish(a1.id, { state: "failed", exitCode: 1 }), false); // once only
      assertEquals((await s.get(a1.id))!.state, "succeeded");
      const a4 = (await s.insert(job("alice", 4)))!;
      assertEquals(await s.cancelQueued(a4.id), true);
      assertEquals(await s.claimNext("w", 0), undefined);
      assertEquals((await s.list("alice")).map((j) => j.id), [a4.id, a3.id, a2.id, a1.id]);
      assertEquals((await s.list("bob")).map((j) => j.id), [b1.id]);
      assertEquals(await s.remove(a4.id), true);
      assertEquals(await s.remove(a2.id), false); // running
      assertEquals(await s.get(a4.id), undefined);
    });
  });

  Deno.test(`store (${name}): log lines are capped with one note, read incrementally`, async () => {
    await withStore(make, async (s) => {
      const j = (await s.insert(job("alice", 1)))!;
      await s.appendLog(j.id, ["a", "b", "c"], 5);
      await s.appendLog(j.id, ["d", "e", "f", "g"], 5);
      await s.appendLog(j.id, ["h"], 5);
      const all = await s.readLog(j.id, 0, 100);
      assertEquals(all.map((l) => l.line), [
        "a",
        "b",
        "c",
        "d",
        "e",
        "[petrel] log truncated after 5 lines",
      ]);
      assertEquals((await s.readLog(j.id, 4, 100)).map((l) => l.seq), [5, 6]);
    });
  });

  Deno.test(`store (${name}): a keyed log batch sent again lands once; another run appends`, async () => {
    await withStore(make, async (s) => {
      const j = (await s.insert(job("alice", 1)))!;
      await s.appendLog(j.id, ["a", "b"], 10, { run: "r1", from: 0 });
      // the writer did not learn that [a, b] landed: it sends them again with the lines since
      await s.appendLog(j.id, ["a", "b", "c"], 10, { run: "r1", from: 0 });
      await s.appendLog(j.id, ["c"], 10, { run: "r1", from: 2 }); // again, alone
      await s.appendLog(j.id, ["d"], 10, { run: "r1", from: 3 });
      await s.appendLog(j.id, ["x"], 10, { run: "r2", from: 0 }); // a new attempt's writer
      await s.appendLog(j.id, ["y"], 10); // no key: always appended
      await s.appendLog(j.id, ["z", "w"], 10, { run: "r1", from: 4 }); // r1 again after r2
      const all = await s.readLog(j.id, 0, 100);
      assertEquals(all.map((l) => l.line), ["a", "b", "c", "d", "x", "y", "z", "w"]);
      assertEquals(all.map((l) => l.seq), [1, 2, 3, 4, 5, 6, 7, 8]);
      assertEquals((await s.get(j.id))!.logLines, 8);
      // the cap still holds for keyed batches, with its one note
      const k = (await s.insert(job("alice", 2)))!;
      await s.appendLog(k.id, ["1", "2"], 3, { run: "r", from: 0 });
      await s.appendLog(k.id, ["1", "2", "3", "4", "5"], 3, { run: "r", from: 0 });
      assertEquals((await s.readLog(k.id, 0, 100)).map((l) => l.line), [
        "1",
        "2",
        "3",
        "[petrel] log truncated after 3 lines",
      ]);
    });
  });

  Deno.test(`store (${name}): a database made before log batch keys gains their columns`, async () => {
    await withStore(make, async (s, b, reopen) => {
      const j = (await s.insert(job("alice", 1)))!;
      await s.appendLog(j.id, ["old"], 10);
      await s.close();
      await b.exec(
        "ALTER TABLE {jobs} DROP COLUMN log_run; ALTER TABLE {jobs} DROP COLUMN log_next",
      );
      const t = await reopen();
      await t.appendLog(j.id, ["a"], 10, { run: "r", from: 0 });
      await t.appendLog(j.id, ["a", "b"], 10, { run: "r", from: 0 });
      assertEquals((await t.readLog(j.id, 0, 10)).map((l) => l.line), ["old", "a", "b"]);
    });
  });

  Deno.test(`store (${name}): recovery re-queues or fails jobs left running, across reopening`, async () => {
    await withStore(make, async (first, b, reopen) => {
      let s = first;
      const ids = [];
      for (let i = 0; i < 4; i++) ids.push((await s.insert(job("alice", i)))!.id);
      await s.claimNext("old", 0);
      await s.claimNext("old", 0);
      await s.requestCancel(ids[1]);
      await s.claimNext("current", 0); // owned by the live worker: left alone
      await s.close(); // "crash"
      s = await reopen();
      b.expireWorkers();
      const r = await s.recoverInterrupted("current", { policy: "requeue", maxAttempts: 2 });
      assertEquals(r, { requeued: [ids[0]], failed: [ids[1]] });
      assertEquals((await s.get(ids[0]))!.state, "queued");
      assertEquals((await s.get(ids[1]))!.state, "cancelled");
      assertEquals((await s.get(ids[2]))!.state, "running");
      assertEquals((await s.get(ids[3]))!.state, "queued");
      // Second crash of the same job: attempts exhausted (2) → failed.
      assertEquals((await s.claimNext("old2", 0))!.id, ids[0]);
      b.expireWorkers();
      const r2 = await s.recoverInterrupted("current", { policy: "requeue", maxAttempts: 2 });
      assertEquals(r2, { requeued: [], failed: [ids[0]] });
      const failed = (await s.get(ids[0]))!;
      assertEquals([failed.state, failed.reason, failed.attempts], ["failed", "interrupted", 2]);
      assert(failed.error!.includes("all 2 attempts"));
      // Policy "fail".
      await s.claimNext("old3", 0);
      b.expireWorkers();
      const r3 = await s.recoverInterrupted("current", { policy: "fail", maxAttempts: 5 });
      assertEquals(r3, { requeued: [], failed: [ids[3]] });
      assert((await s.get(ids[3]))!.error!.includes("restart policy: fail"));
    });
  });

  Deno.test(`store (${name}): a lost run's late result is refused; the new run's counts once`, async () => {
    await withStore(make, async (s, b) => {
      const id = (await s.insert(job("alice", 1)))!.id;
      const run1 = (await s.claimNext("w1", 0))!;
      assertEquals(run1.attempts, 1);
      const claim1 = { workerId: "w1", attempt: 1 };
      assertEquals(await s.heartbeat("w1", [{ id, ...claim1 }]), { lost: [], cancel: [] });
      b.expireWorkers(); // w1 went silent
      const r = await s.recoverInterrupted("w2", { policy: "requeue", maxAttempts: 3 });
      assertEquals(r.requeued, [id]);
      const run2 = (await s.claimNext("w2", 1))!;
      assertEquals([run2.id, run2.attempts, run2.workerId], [id, 2, "w2"]);
      const claim2 = { workerId: "w2", attempt: 2 };
      // w1 comes back: its heartbeat says the run is lost, its result is refused.
      assertEquals((await s.heartbeat("w1", [{ id, ...claim1 }])).lost, [id]);
      assertEquals(await s.finish(id, { state: "failed", exitCode: 1 }, claim1), false);
      await s.requestCancel(id);
      assertEquals(await s.heartbeat("w2", [{ id, ...claim2 }]), { lost: [], cancel: [id] });
      assertEquals(await s.finish(id, { state: "succeeded", exitCode: 0 }, claim2), true);
      assertEquals(await s.finish(id, { state: "succeeded", exitCode: 0 }, claim2), false);
      const done = (await s.get(id))!;
      assertEquals([done.state, done.attempts, done.workerId], ["succeeded", 2, "w2"]);
    });
  });

  Deno.test(`store (${name}): a retired worker's runs are taken back without the lease`, async () => {
    await withStore(make, async (s) => {
      const id = (await s.insert(job("alice", 1)))!.id;
      await s.claimNext("w1", 0);
      await s.heartbeat("w1", [{ id, workerId: "w1", attempt: 1 }]); // alive, within its lease
      assertEquals(await s.recoverInterrupted("w2", { policy: "requeue", maxAttempts: 3 }), {
        requeued: name === "sqlite" ? [id] : [], // SQLite: another worker id is a dead server
        failed: [],
      });
      if (name !== "sqlite") {
        await s.retire("w1"); // graceful stop
        const r = await s.recoverInterrupted("w2", { policy: "requeue", maxAttempts: 3 });
        assertEquals(r, { requeued: [id], failed: [] });
      }
      const again = (await s.claimNext("w2", 0))!;
      assertEquals([again.id, again.attempts], [id, 2]);
    });
  });

  Deno.test(`store (${name}): statistics count states, reasons and run durations`, async () => {
    await withStore(make, async (s) => {
      const ids = [];
      for (let i = 0; i < 4; i++) ids.push((await s.insert(job("alice", i)))!.id);
      for (let i = 0; i < 3; i++) await s.claimNext("w", 0);
      await s.finish(ids[0], { state: "succeeded", exitCode: 0 });
      await s.finish(ids[1], { state: "failed", exitCode: 1, reason: "timeout" });
      const st = await s.stats();
      assertEquals(st.states, { queued: 1, running: 1, succeeded: 1, failed: 1, cancelled: 0 });
      assertEquals(st.reasons, { timeout: 1 });
      assertEquals(st.durations.count, 1);
      const d = st.durations.sum;
      assert(d >= 0 && d < 60, `duration ${d}`);
      // Cumulative buckets: every bound at or above the duration counts it.
      for (const bk of st.durations.buckets) assertEquals(bk.count, d <= bk.le ? 1 : 0);
    });
  });
}

Deno.test({
  // A reset while the transaction's query runs: that call fails, the store goes on. (The crash fixed
  // in #tx, a reset between two queries of a checked-out client, has no deterministic trigger from
  // outside; the failover test met it under load.)
  name:
    "store (postgres): a connection killed inside a transaction fails that call; the store goes on",
  ignore: !PG_URL,
  fn: async () => {
    const make = backends().find((b) => b.name === "postgres")!.make;
    await withStore(make, async (s) => {
      const j = (await s.insert(job("alice", 1)))!;
      const locker = new pg.Client({ connectionString: PG_URL });
      locker.on("error", () => {});
      await locker.connect();
      try {
        // the store's schema is the one that holds this job
        const schemas = (await locker.query(
          `SELECT table_schema AS s FROM information_schema.tables WHERE table_name = 'jobs'`,
        )).rows.map((r: { s: string }) => r.s);
        let schema = "";
        for (const sc of schemas) {
          const r = await locker.query(`SELECT 1 FROM ${sc}.jobs WHERE id = $1`, [j.id]);
          if (r.rows.length) schema = sc;
        }
        assert(schema, "the store's schema");
        // hold the job's row, so that appendLog waits inside its transaction (a checked-out client)
        await locker.query("BEGIN");
        await locker.query(`SELECT 1 FROM ${schema}.jobs WHERE id = $1 FOR UPDATE`, [j.id]);
        const pending = s.appendLog(j.id, ["lost"], 10).then(() => "resolved", (e) => e as Error);
        let pid: number | undefined;
        for (let i = 0; i < 100 && pid === undefined; i++) {
          const r = await locker.query(
            `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()`,
          );
          pid = r.rows[0]?.pid;
          if (pid === undefined) await new Promise((r) => setTimeout(r, 50));
        }
        assert(pid !== undefined, "appendLog waits on the row lock");
        await locker.query("SELECT pg_terminate_backend($1)", [pid]);
        const outcome = await pending;
        assert(outcome instanceof Error, `appendLog on a killed connection: ${outcome}`);
        await locker.query("ROLLBACK");
        // the store goes on with a fresh connection, and the failed batch left nothing behind
        await s.appendLog(j.id, ["kept"], 10);
        assertEquals((await s.readLog(j.id, 0, 10)).map((l) => l.line), ["kept"]);
      } finally {
        await locker.end().catch(() => {});
      }
    });
  },
});
