/**
 * The job runner over a store whose log writes can fail after they landed (a `COMMIT` whose answer
 * was cut by a database restart): every log line is kept exactly once. No sandbox: the runner's
 * `runSandboxed` is a stand-in that logs lines over several flushes.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  JobEvents,
  JobRunner,
  type JobStore,
  type SandboxOptions,
  type SandboxResult,
  SqliteJobStore,
} from "../../core/server/mod.ts";

/** `store` with appendLog answering an error after the write landed, on the calls numbered in `cut`. */
function cutAfterCommit(store: JobStore, cut: Set<number>): JobStore {
  let calls = 0;
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "appendLog") {
        return async (...args: Parameters<JobStore["appendLog"]>) => {
          await target.appendLog(...args);
          if (cut.has(++calls)) throw new Error("Connection terminated unexpectedly");
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

Deno.test("runner: log batches whose commit answer was lost are not written twice", async () => {
  const dir = await Deno.makeTempDir();
  const db = new SqliteJobStore(`${dir}/jobs.db`);
  const store = cutAfterCommit(db, new Set([1, 2, 4]));
  const events = new JobEvents();
  const sandbox = async (o: SandboxOptions): Promise<SandboxResult> => {
    for (let i = 0; i < 6; i++) {
      o.onLog?.(`line ${i}`);
      await new Promise((r) => setTimeout(r, 120)); // about one flush (100 ms) per line
    }
    return { ok: true, exitCode: 0, durationMs: 700 };
  };
  const runner = new JobRunner(store, {
    workerId: "w",
    gpus: 1,
    jobsPerGpu: 1,
    models: [],
    maxLogLines: 100,
    runSandboxed: sandbox,
    events,
  });
  try {
    const job = (await db.insert({
      id: crypto.randomUUID(),
      user: "alice",
      recipe: "r",
      recipePath: "/r.ts",
      params: {},
      inputs: [],
      datasets: [],
      jobDir: `${dir}/jobs/alice/1`,
      limits: { timeoutMs: 10_000, memoryMb: 256, maxOutputBytes: 1024 },
    }))!;
    await runner.kick();
    for (let i = 0; i < 100 && (await db.get(job.id))!.state !== "succeeded"; i++) {
      await events.wait(job.id, 200);
    }
    const lines = (await db.readLog(job.id, 0, 100)).map((l) => l.line);
    assertEquals((await db.get(job.id))!.state, "succeeded");
    assertEquals(lines.slice(1, 7), [0, 1, 2, 3, 4, 5].map((i) => `line ${i}`));
    assertEquals(lines.length, 8, lines.join("\n"));
    assertEquals(lines[0].startsWith("[petrel] attempt 1"), true);
    assertEquals(lines[7].startsWith("[petrel] succeeded"), true);
  } finally {
    await runner.stop();
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});
