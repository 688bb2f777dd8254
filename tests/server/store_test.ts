/**
 * The SQLite job store alone (no processes): claim order and fairness, atomic state changes,
 * log cap, recovery after a crash under both restart policies, durability across reopen.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { type NewJob, SqliteJobStore } from "../../core/server/mod.ts";

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

Deno.test("store: claims oldest first, users with fewer running jobs first, each job once", async () => {
  const dir = await Deno.makeTempDir();
  const s = new SqliteJobStore(`${dir}/t.db`);
  try {
    const a1 = (await s.insert(job("alice", 1)))!;
    const a2 = (await s.insert(job("alice", 2)))!;
    const a3 = (await s.insert(job("alice", 3), { maxActive: 3 }))!;
    assertEquals(await s.insert(job("alice", 9), { maxActive: 3 }), undefined); // quota, atomic
    const b1 = (await s.insert(job("bob", 1), { maxActive: 3 }))!;
    assertEquals(a1.state, "queued");
    assertEquals(await s.countActive("alice"), 3);
    const order = [];
    for (let i = 0; i < 5; i++) order.push((await s.claimNext("w", 0))?.id);
    // alice1 (oldest); then bob1 (bob has none running); then alice2, alice3; then nothing.
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
  } finally {
    s.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("store: log lines are capped with one note, read incrementally", async () => {
  const dir = await Deno.makeTempDir();
  const s = new SqliteJobStore(`${dir}/t.db`);
  try {
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
  } finally {
    s.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("store: recovery re-queues or fails jobs left running, and survives reopening", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let s = new SqliteJobStore(`${dir}/t.db`);
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push((await s.insert(job("alice", i)))!.id);
    await s.claimNext("old", 0);
    await s.claimNext("old", 0);
    await s.requestCancel(ids[1]);
    await s.claimNext("current", 0); // owned by the live worker: left alone
    s.close(); // "crash"
    s = new SqliteJobStore(`${dir}/t.db`);
    const r = await s.recoverInterrupted("current", { policy: "requeue", maxAttempts: 2 });
    assertEquals(r, { requeued: [ids[0]], failed: [ids[1]] });
    assertEquals((await s.get(ids[0]))!.state, "queued");
    assertEquals((await s.get(ids[1]))!.state, "cancelled");
    assertEquals((await s.get(ids[2]))!.state, "running");
    assertEquals((await s.get(ids[3]))!.state, "queued");
    // Second crash of the same job: attempts exhausted (2) → failed.
    assertEquals((await s.claimNext("old2", 0))!.id, ids[0]);
    const r2 = await s.recoverInterrupted("current", { policy: "requeue", maxAttempts: 2 });
    assertEquals(r2, { requeued: [], failed: [ids[0]] });
    const failed = (await s.get(ids[0]))!;
    assertEquals([failed.state, failed.reason, failed.attempts], ["failed", "interrupted", 2]);
    assert(failed.error!.includes("all 2 attempts"));
    // Policy "fail".
    await s.claimNext("old3", 0);
    const r3 = await s.recoverInterrupted("current", { policy: "fail", maxAttempts: 5 });
    assertEquals(r3, { requeued: [], failed: [ids[3]] });
    assert((await s.get(ids[3]))!.error!.includes("restart policy: fail"));
    s.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
