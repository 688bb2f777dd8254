/**
 * `deno task install` writes a command that runs with the absolute path of the installing Deno:
 * installed into a temporary root, it answers `--help` with no `deno` on PATH.
 */
import { assert, assertEquals, assertStringIncludes } from "../runtime/_assert.ts";
import { shimScript, shQuote } from "../../cli/install.ts";
import { ROOT } from "../runtime/_helpers.ts";

Deno.test("install: sh quoting survives quotes and spaces", async () => {
  const tricky = "/tmp/it's a dir/deno";
  const out = await new Deno.Command("/bin/sh", {
    args: ["-c", `printf %s ${shQuote(tricky)}`],
    stdout: "piped",
  }).output();
  assertEquals(new TextDecoder().decode(out.stdout), tricky);
  const script = shimScript("/opt/deno bin/deno", "/src/petrel");
  assert(script.startsWith("#!/bin/sh\n"));
  assertStringIncludes(script, `exec '/opt/deno bin/deno' 'run'`);
  assertStringIncludes(script, `'--config=/src/petrel/deno.json' '/src/petrel/petrel.ts' "$@"`);
});

Deno.test({
  name: "deno task install --root: the command runs petrel --help without deno on PATH",
  ignore: !Deno.statSync("/bin/sh").isFile,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "petrel_install_" });
    try {
      const inst = await new Deno.Command(Deno.execPath(), {
        args: ["task", "--quiet", "install", "--root", root],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const said = new TextDecoder().decode(inst.stdout) + new TextDecoder().decode(inst.stderr);
      assertEquals(inst.code, 0, said);
      assertStringIncludes(said, `installed ${root}/bin/petrel (runs ${Deno.execPath()})`);
      const script = await Deno.readTextFile(`${root}/bin/petrel`);
      assertStringIncludes(script, `exec ${shQuote(Deno.execPath())} 'run'`);
      assertEquals((await Deno.stat(`${root}/bin/petrel`)).mode! & 0o777, 0o755);
      // A bare environment: PATH without any deno, only HOME (Deno's cache) kept.
      const env = { PATH: "/usr/bin:/bin", HOME: Deno.env.get("HOME") ?? "/tmp" };
      for (const args of [["--help"], ["serve", "--help"]]) {
        const run = await new Deno.Command(`${root}/bin/petrel`, {
          args,
          clearEnv: true,
          env,
          stdout: "piped",
          stderr: "piped",
        }).output();
        const text = new TextDecoder().decode(run.stdout);
        assertEquals(run.code, 0, new TextDecoder().decode(run.stderr));
        assertStringIncludes(text, `Usage: petrel${args.length > 1 ? " serve" : ""}`);
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
