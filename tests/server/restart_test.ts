/**
 * Durability: the server runs as a real subprocess (`petrel serve`, with `--allow-all` as
 * the docs say), is killed with SIGKILL while a job runs, and restarted; nothing is lost. Needs
 * network permission on 127.0.0.1 (skipped without it).
 */
import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { sandboxContainment } from "../../core/runtime/contain.ts";
import { hashToken } from "../../core/server/mod.ts";
import { FIXTURES, type ServeProcess, spawnServe, TERMINAL, TOKENS } from "./_helpers.ts";

const NET = Deno.permissions.querySync({ name: "net", host: "127.0.0.1" }).state === "granted";
const RUN = Deno.permissions.querySync({ name: "run" }).state === "granted";

type Proc = ServeProcess;

function startServer(config: string): Promise<Proc> {
  // --allow-all as documented: /proc/<pid> needs it (memory watch, orphan clean-up)
  return spawnServe(["--allow-all"], config, 30_000);
}

/** Process ids whose command line has the argument `arg` (test-side check, via /proc). */
async function processesWith(arg: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const args = (await Deno.readTextFile(`/proc/${e.name}/cmdline`)).split("\0");
      if (args.includes(arg)) pids.push(Number(e.name));
    } catch {
      // exited
    }
  }
  return pids;
}

/** Waits (up to 3 s: stderr and stdout come through separate pipes) for a line of the server. */
async function expectOutput(p: Proc, re: RegExp): Promise<void> {
  for (let i = 0; i < 30 && !re.test(p.output.join("")); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assertMatch(p.output.join(""), re);
}

async function kill9(p: Proc): Promise<void> {
  p.child.kill("SIGKILL");
  const st = await p.child.status;
  assertEquals(st.signal, "SIGKILL");
}

async function api(p: Proc, method: string, path: string, body?: unknown) {
  const res = await fetch(`${p.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKENS.alice}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

async function waitFor(
  p: Proc,
  id: string,
  ok: (j: Record<string, unknown>) => boolean,
  what: string,
): Promise<Record<string, unknown>> {
  const t0 = Date.now();
  while (Date.now() - t0 < 60_000) {
    const j = (await api(p, "GET", `/api/jobs/${id}/log?wait=500&after=1000000`)).body.job;
    if (ok(j)) return j;
  }
  throw new Error(`timed out waiting for job ${id} to be ${what}`);
}

const running = (attempt: number) => (j: Record<string, unknown>) =>
  j.state === "running" && j.attempts === attempt &&
  (j.progress as { done: number }).done > 0;

Deno.test({
  name: "server: SIGKILL mid-job loses nothing; restart re-queues (or fails, by policy)",
  ignore: !NET || !RUN,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "petrel_restart_test_" });
    const cfgPath = `${dir}/server.json`;
    const config = (onRestart: string) =>
      JSON.stringify({
        dataDir: "data",
        port: 0,
        jobsPerGpu: 1,
        onRestart,
        maxAttempts: 3,
        recipes: { sum: `${FIXTURES}sum_recipe.ts`, hostile: `${FIXTURES}hostile_recipe.ts` },
        limits: {
          timeoutMs: 30_000,
          memoryMb: 256,
          maxOutputBytes: 64 << 20,
          maxUploadBytes: 1 << 20,
          maxActiveJobs: 10,
        },
        users: [{ name: "alice", tokenHash: hashToken(TOKENS.alice) }],
      });
    const procs: Proc[] = [];
    try {
      await Deno.writeTextFile(cfgPath, config("requeue"));
      const s1 = await startServer(cfgPath);
      procs.push(s1);
      const slow = { recipe: "sum", params: { steps: 15, sleepMs: 100 } };
      const j1 = (await api(s1, "POST", "/api/jobs", slow)).body.id as string;
      // j2 loops silently (a printing orphan dies of a broken pipe; a silent one runs on).
      const j2 = (await api(s1, "POST", "/api/jobs", {
        recipe: "hostile",
        params: { attack: "loop" },
      })).body.id as string;
      await waitFor(s1, j1, running(1), "running");
      await kill9(s1);

      // Restart (requeue): j1 runs again as attempt 2 and succeeds; j2 was never lost.
      const s2 = await startServer(cfgPath);
      procs.push(s2);
      await expectOutput(s2, /recovered 1 interrupted job\(s\) into the queue/);
      const d1 = await waitFor(s2, j1, (j) => TERMINAL.has(j.state as string), "finished");
      assertEquals([d1.state, d1.attempts], ["succeeded", 2]);
      const log = (await api(s2, "GET", `/api/jobs/${j1}/log`)).body.lines as { line: string }[];
      const text = log.map((l) => l.line).join("\n");
      assertMatch(text, /attempt 1 [^]*attempt 2 [^]*step 15 of 15/);
      const files = (await api(s2, "GET", `/api/jobs/${j1}/files`)).body.files as {
        path: string;
      }[];
      assert(files.some((f) => f.path === "result.json"));
      // j2 runs next (long: its orphan would outlive the server); j3 waits behind it.
      const j3 = (await api(s2, "POST", "/api/jobs", { recipe: "sum" })).body.id as string;
      await waitFor(s2, j2, (j) => j.state === "running", "running");
      const j2Out = `--allow-write=${dir}/data/jobs/alice/${j2}/out-1`;
      for (let i = 0; i < 100 && (await processesWith(j2Out)).length === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      // Past its start-up messages (a write to the dead server's pipe would end it), it only loops.
      await new Promise((r) => setTimeout(r, 1500));
      await kill9(s2);
      await new Promise((r) => setTimeout(r, 300));
      // Under bubblewrap (`--die-with-parent`) the sandbox dies with its server; without it, the
      // orphan runs on until the restarted server kills it.
      const bwrap = (await sandboxContainment()).namespaces === "bwrap";
      if (bwrap) {
        for (let i = 0; i < 100 && (await processesWith(j2Out)).length > 0; i++) {
          await new Promise((r) => setTimeout(r, 100));
        }
        assertEquals(await processesWith(j2Out), [], "the sandbox died with its server");
      } else {
        assertEquals((await processesWith(j2Out)).length, 1, "the orphaned sandbox process runs");
      }

      // Restart with policy "fail": j2 fails as interrupted; j3 (queued) still runs.
      await Deno.writeTextFile(cfgPath, config("fail"));
      const s3 = await startServer(cfgPath);
      procs.push(s3);
      if (!bwrap) {
        await expectOutput(s3, /killed 1 sandbox process\(es\) left by the previous server/);
      }
      await new Promise((r) => setTimeout(r, 200));
      assertEquals(await processesWith(j2Out), [], "the orphan was killed at restart");
      const d2 = (await api(s3, "GET", `/api/jobs/${j2}`)).body;
      assertEquals([d2.state, d2.reason], ["failed", "interrupted"]);
      assertMatch(String(d2.error), /server stopped while the job was running/);
      const d3 = await waitFor(s3, j3, (j) => TERMINAL.has(j.state as string), "finished");
      assertEquals(d3.state, "succeeded");
      assertEquals(
        ((await api(s3, "GET", "/api/jobs")).body.jobs as { id: string }[]).map((j) => j.id),
        [j3, j2, j1],
      );
      // Graceful stop (SIGTERM) exits cleanly.
      s3.child.kill("SIGTERM");
      assertEquals((await s3.child.status).code, 0);
    } finally {
      for (const p of procs) {
        try {
          p.child.kill("SIGKILL");
        } catch {
          // already gone
        }
        await p.child.status;
      }
      // The first server's orphan (a short recipe) ends by itself; give it time.
      await new Promise((r) => setTimeout(r, 1000));
      await Deno.remove(dir, { recursive: true });
    }
  },
});
