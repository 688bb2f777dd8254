/**
 * TEMPORARY harness of `_sandbox_temp.ts`: runs inside the sandboxed child process.
 *
 * @module
 */
const spec = JSON.parse(Deno.args[0]);

// Exit when the parent goes away (its end of stdin closes).
(async () => {
  const buf = new Uint8Array(64);
  try {
    while ((await Deno.stdin.read(buf)) !== null) { /* ignore */ }
  } catch { /* closed */ }
  Deno.exit(137);
})();

const mod = await import(new URL(`file://${spec.recipe}`).href);
let params = spec.params;
if (mod.params && typeof mod.params.safeParse === "function") {
  const r = mod.params.safeParse(params);
  if (!r.success) {
    console.error(`invalid recipe parameters: ${JSON.stringify(r.error.issues)}`);
    Deno.exit(2);
  }
  params = r.data;
}
const ctx = {
  params,
  inputs: spec.inputs as string[],
  models: spec.models as string[],
  outDir: spec.outDir as string,
  seed: spec.seed as number | undefined,
  log: (line: string): void => console.log(line),
  progress: (done: number, total: number): void =>
    console.log(`@@petrel-progress ${done} ${total}`),
};
try {
  await mod.default(ctx);
} catch (e) {
  console.error(`${(e as Error)?.name ?? "Error"}: ${(e as Error)?.message ?? e}`);
  Deno.exit(1);
}
Deno.exit(0);
