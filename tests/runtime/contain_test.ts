/**
 * The OS layers on their own: a child started by `containedCommand` with ALL of Deno's
 * permissions (as if layer 2 were bypassed) still sees only its granted paths, read-only and
 * nosuid, a private /tmp, no network but loopback, uid 65534, and the kernel's limits.
 */
import { assertEquals, assertMatch } from "./_assert.ts";
import { containedCommand, releaseRun, sandboxContainment } from "../../core/runtime/contain.ts";
import { scratch } from "./_helpers.ts";

const layers = await sandboxContainment();

const PROBE = `
const r = {};
const tryIt = async (k, f) => { try { r[k] = await f(); } catch (e) { r[k] = e.name; } };
await tryIt("shadow", () => Deno.readTextFile("/etc/shadow").then(() => "read"));
await tryIt("rootList", () => Array.from(Deno.readDirSync("/"), (e) => e.name).sort());
await tryIt("tmp", () => Array.from(Deno.readDirSync("/tmp"), (e) => e.name));
const msg = async (k, f) => { try { await f(); r[k] = "ok"; } catch (e) { r[k] = e.message; } };
await msg("writeInput", () => Deno.writeTextFile(Deno.args[0] + "/x", "x"));
await msg("writeRoot", () => Deno.mkdir("/stash"));
await tryIt("etc", () => Array.from(Deno.readDirSync("/etc"), (e) => e.name));
await tryIt("writeOut", () => Deno.writeTextFile(Deno.args[1] + "/ok", "x").then(() => "wrote"));
await tryIt("uid", () => Deno.uid());
await tryIt("nets", () => Deno.networkInterfaces().map((n) => n.name).sort());
const mounts = Deno.readTextFileSync("/proc/self/mountinfo").split("\\n");
const opts = (p) => (mounts.find((l) => l.split(" ")[4] === p) ?? "").split(" ")[5];
r.inputMount = opts(Deno.args[0]);
r.outMount = opts(Deno.args[1]);
console.log(JSON.stringify(r));
`;

Deno.test({
  name: "bubblewrap holds a child that has all of Deno's permissions",
  ignore: layers.namespaces === null,
  fn: async () => {
    await using s = await scratch();
    await Deno.mkdir(s.outDir);
    const script = `${s.root}/probe.js`;
    await Deno.writeTextFile(script, PROBE);
    const deno = Deno.execPath();
    const c = await containedCommand(
      crypto.randomUUID(),
      deno,
      ["run", "-A", "--quiet", script, s.inDir, s.outDir],
      { read: [script, s.inDir], write: [s.outDir], cwd: s.outDir, deno, denoDir: null },
      { memoryMb: 512, maxProcesses: 256, maxFileBytes: 1 << 20 },
    );
    const out = await new Deno.Command(c.cmd, {
      args: c.args,
      stdout: "piped",
      stderr: "piped",
      env: { HOME: "/nonexistent", NO_COLOR: "1" },
      clearEnv: true,
    }).output();
    const usage = await releaseRun(c.cgroups);
    const err = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, err);
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    assertEquals(r.shadow, "NotFound");
    assertEquals(r.rootList.includes("home"), false);
    const bound = ["ld.so.cache", "localtime", "vulkan", "glvnd", "OpenCL"];
    assertEquals(r.etc.filter((e: string) => !bound.includes(e)), []);
    assertEquals(r.tmp.sort(), s.root.startsWith("/tmp/") ? [s.root.slice(5)] : []);
    assertMatch(r.writeInput, /Read-only file system/);
    assertMatch(r.writeRoot, /Read-only file system/);
    assertEquals(r.writeOut, "wrote");
    assertEquals(r.uid, 65534);
    assertEquals(r.nets.filter((n: string) => n !== "lo"), []);
    assertEquals([r.inputMount.includes("ro"), r.inputMount.includes("nosuid")], [true, true]);
    assertEquals([r.outMount.startsWith("rw"), r.outMount.includes("nosuid")], [true, true]);
    if (layers.memory?.startsWith("cgroup")) {
      assertEquals(typeof usage.peakMemoryMb, "number");
    }
  },
});
