/**
 * Bad database configuration gives one clear line and exit 2 (`petrel worker` and `petrel serve`
 * as CLI commands): an unreachable database, a wrong password, a database that does
 * not exist, and petrel tables of a newer schema version. The first runs everywhere; the others
 * need `PETREL_TEST_PG_URL`.
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import pg from "pg";
import { DatabaseConfigError, hashToken, PgJobStore } from "../../core/server/mod.ts";
import { PG_URL } from "./_stores.ts";

const PETREL = new URL("../../petrel.ts", import.meta.url).pathname;

async function run(args: string[]): Promise<{ code: number; lines: string[] }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", PETREL, ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(r.stderr) + new TextDecoder().decode(r.stdout);
  return { code: r.code, lines: text.split("\n").filter((l) => l.trim()) };
}

function free(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("pg config: an unreachable database is one line and exit 2 (worker and serve)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const url = `postgres://petrel:pw@127.0.0.1:${free()}/petrel`;
    const w = await run(["worker", "--db", url, "--data", dir]);
    assertEquals(w.code, 2);
    assertEquals(w.lines.length, 1, w.lines.join("\n"));
    assertMatch(w.lines[0], /^petrel worker: cannot reach the database at 127\.0\.0\.1:\d+/);
    await Deno.writeTextFile(
      `${dir}/server.json`,
      JSON.stringify({
        dataDir: `${dir}/data`,
        gpus: 0,
        users: [{ name: "alice", tokenHash: hashToken("pt_x_0123456789") }],
      }),
    );
    const s = await run(["serve", "--config", `${dir}/server.json`, "--port", "0", "--db", url]);
    assertEquals(s.code, 2);
    assertEquals(s.lines.length, 1, s.lines.join("\n"));
    assertMatch(s.lines[0], /^petrel serve: cannot reach the database/);
    // gpus: 0 without a shared database would run nothing: refused the same way.
    const n = await run(["serve", "--config", `${dir}/server.json`, "--port", "0"]);
    assertEquals([n.code, n.lines.length], [2, 1]);
    assertMatch(n.lines[0], /gpus: 0 runs no jobs here/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "pg config: wrong password, missing database, newer schema: one line, exit 2",
  ignore: !PG_URL,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const u = new URL(PG_URL!);
    try {
      const wrong = new URL(u);
      wrong.password = "not-the-password";
      const w = await run(["worker", "--db", wrong.toString(), "--data", dir]);
      assertEquals([w.code, w.lines.length], [2, 1], w.lines.join("\n"));
      assertMatch(w.lines[0], /refused user '[^']+': wrong password/);
      assertEquals(w.lines[0].includes("not-the-password"), false); // never printed
      const missing = new URL(u);
      missing.pathname = "/no_such_database_here";
      const m = await run(["worker", "--db", missing.toString(), "--data", dir]);
      assertEquals([m.code, m.lines.length], [2, 1]);
      assertMatch(m.lines[0], /database 'no_such_database_here' does not exist/);
      // A database whose petrel tables were written by a newer petrel.
      const name = `n_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
      const admin = new pg.Client({ connectionString: PG_URL });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`);
      try {
        const nu = new URL(u);
        nu.pathname = `/${name}`;
        const c = new pg.Client({ connectionString: nu.toString() });
        await c.connect();
        await c.query("CREATE SCHEMA petrel");
        await c.query("CREATE TABLE petrel.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
        await c.query("INSERT INTO petrel.meta VALUES ('schema_version', '99')");
        await c.end();
        const n = await run(["worker", "--db", nu.toString(), "--data", dir]);
        assertEquals([n.code, n.lines.length], [2, 1], n.lines.join("\n"));
        assertMatch(n.lines[0], /schema 'petrel' is version 99, newer than this petrel's \(1\)/);
        let err: unknown;
        await PgJobStore.open(nu.toString()).catch((e) => err = e);
        assertEquals(err instanceof DatabaseConfigError, true);
      } finally {
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await admin.end();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
