import { assertEquals, assertMatch } from "./_assert.ts";

Deno.test("without bubblewrap and cgroups: runs still work, the gap is said once, serve refuses", async () => {
  const root = await Deno.makeTempDir({ prefix: "petrel-fallback-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("./_fallback_child.ts", import.meta.url).pathname, root],
      env: { PETREL_SANDBOX_DISABLE: "bwrap,cgroup", PETREL_ALLOW_WEAK_SANDBOX: "0" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, stderr);
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    for (const x of r.results) {
      assertEquals(x.ok, true, x.error);
      assertEquals([x.containment.namespaces, x.containment.processes], [null, null]);
    }
    assertEquals(stderr.match(/petrel: sandbox: this host lacks/g)?.length, 1, stderr);
    assertMatch(stderr, /bubblewrap is missing/);
    assertMatch(stderr, /pids controller/);
    assertMatch(r.refused, /lacks \d sandbox layer\(s\).*PETREL_ALLOW_WEAK_SANDBOX=1/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
