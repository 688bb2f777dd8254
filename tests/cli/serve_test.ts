/**
 * `petrel serve` and `petrel hash-token` as commands of the one CLI; the server started from a
 * CLI with the installed (narrower) permissions restarts itself with --allow-all and answers.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../runtime/_assert.ts";
import { cli } from "./_cli.ts";
import { EXIT } from "../../cli/exit_codes.ts";
import { hashToken, verifyToken } from "../../core/server/auth.ts";
import { spawnServe } from "../server/_helpers.ts";

Deno.test("cli serve --help and hash-token", async () => {
  const h = await cli("serve", "--help");
  assertEquals(h.code, EXIT.ok);
  assertStringIncludes(h.out, "Usage: petrel serve");
  assertStringIncludes(h.out, "--config <server.json>");
  assertStringIncludes((await cli("--help")).out, "serve");
  const missing = await cli("serve");
  assertEquals(missing.code, EXIT.usage);
  assertMatch(missing.err, /required option '-c, --config <server.json>'/);
  assertMatch((await cli("serve", "--config", "x.json", "--port", "70000")).err, /--port must be/);
  const t = await cli("hash-token", "pt_chosen_token_123");
  assertEquals(t.code, EXIT.ok);
  const { token, tokenHash } = JSON.parse(t.out);
  assertEquals(token, "pt_chosen_token_123");
  assertEquals(tokenHash, hashToken("pt_chosen_token_123"));
  assert(verifyToken(token, tokenHash));
  const fresh = JSON.parse((await cli("hash-token", "--scrypt")).out);
  assertMatch(fresh.tokenHash, /^scrypt:/);
  assert(verifyToken(fresh.token, fresh.tokenHash));
});

Deno.test({
  name: "cli serve: from the installed permissions it restarts with --allow-all and serves",
  ignore: Deno.permissions.querySync({ name: "net", host: "127.0.0.1" }).state !== "granted",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "petrel_serve_cli_" });
    const config = `${dir}/server.json`;
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        dataDir: "data",
        hostname: "127.0.0.1",
        users: [{ name: "alice", tokenHash: hashToken("pt_alice_serve_test_0001") }],
      }),
    );
    // The permissions `deno task install` gives the command.
    const { child, url: base, output, drained } = await spawnServe(
      ["--allow-read", "--allow-write", "--allow-run", "--allow-env"],
      config,
      60_000,
    );
    try {
      assertEquals(await (await fetch(`${base}/api/health`)).json(), { ok: true });
      const page = await fetch(`${base}/`);
      assertStringIncludes(await page.text(), "<title>petrel serve</title>");
      // No /proc warning: the restarted server has --allow-all.
      assert(!/warning/.test(output.join("")), output.join(""));
      child.kill("SIGTERM");
      const status = await child.status;
      assertEquals(status.code, 0, output.join(""));
      await drained;
      // The restarted server is gone with its parent.
      const gone = await fetch(`${base}/api/health`).then((r) => r.body?.cancel(), () => "refused");
      assertEquals(gone, "refused");
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // exited
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});
