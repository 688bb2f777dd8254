/**
 * `petrel serve` and `petrel hash-token` as commands of the one CLI; the server started from a
 * CLI with the installed (narrower) permissions restarts itself with --allow-all and answers.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../runtime/_assert.ts";
import { cli } from "./_cli.ts";
import { EXIT } from "../../cli/exit_codes.ts";
import { hashToken, verifyToken } from "../../core/server/auth.ts";
import { ROOT } from "../runtime/_helpers.ts";

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
    const child = new Deno.Command(Deno.execPath(), {
      // The permissions `deno task install` gives the command.
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-run",
        "--allow-env",
        `${ROOT}/petrel.ts`,
        "serve",
        "--config",
        config,
        "--port",
        "0",
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output: string[] = [];
    let resolveUrl!: (u: string) => void;
    const url = new Promise<string>((r) => resolveUrl = r);
    const drain = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
        output.push(chunk);
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output.join(""));
        if (m) resolveUrl(m[1]);
      }
    };
    const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
    try {
      const timer = new Promise<never>((_, rej) =>
        setTimeout(() => rej(new Error(`no listening line: ${output.join("")}`)), 60_000)
      );
      const base = await Promise.race([url, timer]);
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
