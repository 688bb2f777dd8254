import { assert, assertEquals } from "./_assert.ts";
import { cleanStack } from "../../core/runtime/stack.ts";
import { runSandboxed } from "../../core/runtime/sandbox.ts";
import { ROOT } from "./_helpers.ts";

const PATHS = { petrelRoot: "/opt/pet rel", recipe: "/srv/jobs/alice/42/recipe/mine.ts" };

Deno.test("cleanStack: recipe frames by name, petrel's relative, harness and internals dropped", () => {
  const stack = [
    "RangeError: size 0×1 must be positive",
    "  (a second message line)",
    "    at encodePng (file:///opt/pet%20rel/core/io/png.ts:63:11)",
    "    at helper (file:///srv/jobs/alice/42/recipe/lib/util.ts:2:3)",
    "    at Object.run (file:///srv/jobs/alice/42/recipe/mine.ts:9:5)",
    "    at file:///srv/jobs/alice/42/recipe/mine.ts:12:1",
    "    at async main (file:///opt/pet%20rel/core/runtime/harness.ts:204:3)",
    "    at eventLoopTick (ext:core/01_core.js:175:7)",
    "    at Module._compile (node:internal/modules/cjs/loader:1:1)",
    "    at x (file:///root/.cache/deno/npm/registry.npmjs.org/zod/4.6.7/index.js:1:2)",
  ].join("\n");
  assertEquals(
    cleanStack(stack, PATHS),
    [
      "RangeError: size 0×1 must be positive",
      "  (a second message line)",
      "    at encodePng (petrel/core/io/png.ts:63:11)",
      "    at helper (lib/util.ts:2:3)",
      "    at Object.run (mine.ts:9:5)",
      "    at mine.ts:12:1",
      "    at x (…/index.js:1:2)",
    ].join("\n"),
  );
});

Deno.test("a failing recipe's log shows the message and its frames, not petrel's path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "petrel_stack_" });
  try {
    await Deno.writeTextFile(
      `${dir}/broken.ts`,
      `import { z } from "zod";
import { encodePng } from ${JSON.stringify(`${ROOT}/core/io/png.ts`)};
export const params = z.object({});
function draw() {
  return encodePng({ width: 0, height: 1, channels: 1, pixels: new Uint8Array(0) });
}
export default async function run() {
  await Promise.resolve();
  draw();
}
`,
    );
    const logs: string[] = [];
    const r = await runSandboxed({
      recipe: `${dir}/broken.ts`,
      inputs: [],
      outDir: `${dir}/out`,
      onLog: (l) => logs.push(l),
    });
    assertEquals([r.ok, r.reason, r.errorKind], [false, "error", "recipe"]);
    const text = logs.join("\n");
    assert(text.includes("RangeError: encodePng: size 0×1 must be positive integers"), text);
    assert(/at draw \(broken\.ts:5:\d+\)/.test(text), text);
    assert(/at (Object\.)?run \(broken\.ts:9:\d+\)/.test(text), text);
    assert(/petrel\/core\/io\/png\.ts:\d+/.test(text), text);
    assert(!text.includes(ROOT) && !text.includes(dir), text);
    assert(!text.includes("harness.ts"), text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
