// Run by fallback_test.ts in a process whose environment turns sandbox layers off: two runs
// (the missing layers must be reported once), then a server start without and with the opt-in.
import { runSandboxed } from "../../core/runtime/mod.ts";
import { createServer } from "../../core/server/mod.ts";

const [root] = Deno.args;
const recipe = new URL("../fixtures/recipes/echo.ts", import.meta.url).pathname;
await Deno.mkdir(`${root}/in`, { recursive: true });
await Deno.writeFile(`${root}/in/data.bin`, new Uint8Array([1, 2, 3, 250]));
const results = [];
for (const k of [1, 2]) {
  const r = await runSandboxed({
    recipe,
    inputs: [`${root}/in`],
    outDir: `${root}/out${k}`,
    memoryMb: 512,
    params: { count: 2 },
  });
  results.push({ ok: r.ok, error: r.error, containment: r.containment });
}
const config = {
  dataDir: `${root}/data`,
  recipes: { echo: recipe },
  users: [{ name: "alice", tokenHash: `sha256:${"0".repeat(64)}` }],
};
let refused = "";
try {
  const s = await createServer({ config: config as never, verbose: false });
  await s.close();
} catch (e) {
  refused = (e as Error).message;
}
const s = await createServer({ config: config as never, verbose: false, allowWeakSandbox: true });
await s.close();
console.log(JSON.stringify({ results, refused }));
