/**
 * petrel from outside the checkout: a script in a temporary folder imports `@petrel/petrel` (and,
 * in a second script, the checkout's `mod.ts` by path) and runs something small, with
 * `--config <petrel>/deno.json` as the README says (without it: `Import "zod" not a dependency`).
 */
import { assertEquals } from "../runtime/_assert.ts";
import { ROOT } from "../runtime/_helpers.ts";

Deno.test("a script outside the checkout imports petrel with --config <petrel>/deno.json", async () => {
  const dir = await Deno.makeTempDir({ prefix: "petrel_outside_" });
  try {
    await Deno.writeTextFile(
      `${dir}/by_name.ts`,
      `import { centredGrid, psnr, renderOrthoMontage } from "@petrel/petrel";
const g = centredGrid([8, 8, 2], [2, 2, 2]);
const data = Float32Array.from({ length: 128 }, (_, i) => i);
const fig = renderOrthoMontage([{ data, shape: g.shape, voxelMm: g.voxelSizeMm }]);
console.log(JSON.stringify({ psnr: psnr([0, 1, 2, 3], [0, 1, 2, 4], { dataRange: 3 }),
  panels: fig.layout.panels.length }));
`,
    );
    await Deno.writeTextFile(
      `${dir}/by_path.ts`,
      `import { centredGrid } from ${JSON.stringify(`${ROOT}/mod.ts`)};
console.log(JSON.stringify({ shape: centredGrid([4, 5, 6], [1, 1, 1]).shape }));
`,
    );
    const run = async (file: string) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--quiet", "--allow-read", `--config=${ROOT}/deno.json`, file],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
      return JSON.parse(new TextDecoder().decode(out.stdout));
    };
    // PSNR of MSE 1/4 at data range 3: 10 log10(9 / 0.25).
    assertEquals(await run("by_name.ts"), { psnr: 10 * Math.log10(36), panels: 3 });
    assertEquals(await run("by_path.ts"), { shape: [4, 5, 6] });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
