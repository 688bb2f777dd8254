/**
 * The layering of `docs/ARCHITECTURE.md`, enforced: every relative import (static, re-export,
 * dynamic with a literal) of every `core/**\/*.ts` must land in its own area or in one the table
 * below allows, and `core/` may reach outside itself only for `shaders/` and `deno.json`.
 */
import { ok as assert } from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), ".."));

/** The leaves: anyone may import them, they import nothing in core. */
const LEAVES = ["random", "stats"];

/**
 * What each area may import (besides itself and the leaves). Keep in step with
 * docs/ARCHITECTURE.md.
 */
export const ALLOWED: Record<string, readonly string[]> = {
  random: [],
  stats: [],
  gpu: [],
  geometry: [],
  metrics: [],
  io: ["geometry"],
  projector: ["gpu", "geometry"],
  model: ["gpu", "geometry", "projector", "io"],
  diffusion: ["gpu", "geometry", "io"],
  // sim never sees the reconstruction operator (gpu, projector, model): its data are independent
  sim: ["geometry", "io", "metrics"],
  recon: ["gpu", "geometry", "projector", "model", "diffusion", "metrics", "io"],
  runtime: ["gpu", "geometry", "projector", "model", "recon", "diffusion", "sim", "io", "metrics"],
  server: ["runtime", "io", "metrics", "geometry"],
};

/** Outside `core/`, what core may import. */
const OUTSIDE_OK = [/^shaders\//, /^deno\.json$/];

function areaOf(path: string): string | null {
  const parts = path.split("/");
  if (parts[0] !== "core") return null;
  return parts.length > 2 ? parts[1] : parts[1].replace(/\.ts$/, "");
}

/** Relative import specifiers of a TypeScript source (comments stripped first). */
export function importsOf(src: string): string[] {
  const code = src.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
  const out: string[] = [];
  const re =
    /(?:^|[;\s])(?:import|export)\s[^;]*?\sfrom\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']|^\s*import\s+["']([^"']+)["']/gm;
  for (const m of code.matchAll(re)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec.startsWith(".")) out.push(spec);
  }
  return out;
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) yield* walk(p);
    else if (e.isFile && p.endsWith(".ts")) yield p;
  }
}

/** Every import that breaks the table, as `file: import → area (area may import …)` lines. */
export async function layeringViolations(root = ROOT): Promise<string[]> {
  const bad: string[] = [];
  for await (const file of walk(join(root, "core"))) {
    const rel = relative(root, file);
    const from = areaOf(rel)!;
    const allowed = ALLOWED[from];
    if (!allowed) {
      bad.push(`${rel}: area "${from}" is not in the layering table (tests/layering_test.ts)`);
      continue;
    }
    for (const spec of importsOf(await Deno.readTextFile(file))) {
      const target = relative(root, normalize(join(dirname(file), spec)));
      const to = areaOf(target);
      if (to === null) {
        if (!OUTSIDE_OK.some((re) => re.test(target))) {
          bad.push(`${rel}: imports ${target}, outside core/ (core may import shaders/ only)`);
        }
        continue;
      }
      if (to === from || LEAVES.includes(to) || allowed.includes(to)) continue;
      bad.push(
        `${rel}: imports ${target} (${from} → ${to}; ${from} may import ${
          [...allowed, ...LEAVES].join(", ") || "nothing"
        })`,
      );
    }
  }
  return [...new Set(bad)].sort();
}

Deno.test("layering: no core module imports a layer above it (docs/ARCHITECTURE.md)", async () => {
  const bad = await layeringViolations();
  assert(bad.length === 0, `${bad.length} layering violation(s):\n  ${bad.join("\n  ")}`);
});

Deno.test("layering: the import scanner sees static, re-export, type-only and dynamic imports", async () => {
  const src = [
    `import { a } from "../gpu/context.ts";`,
    `import type { B } from "./b.ts";`,
    `export * from "../model/mod.ts";`,
    `export { c } from "../recon/c.ts";`,
    `const m = await import("../server/main.ts");`,
    `import "../sim/side_effect.ts";`,
    `// import { no } from "../server/commented.ts";`,
    `/* import { no } from "../server/block.ts"; */`,
    `import { z } from "zod";`,
    `import {\n  x,\n  y,\n} from "../io/multi.ts";`,
  ].join("\n");
  const got = importsOf(src);
  const want = [
    "../gpu/context.ts",
    "./b.ts",
    "../model/mod.ts",
    "../recon/c.ts",
    "../server/main.ts",
    "../sim/side_effect.ts",
    "../io/multi.ts",
  ];
  assert(JSON.stringify(got.sort()) === JSON.stringify(want.sort()), `got ${JSON.stringify(got)}`);
  // and a violation is reported with the file and the rule
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "core", "gpu"), { recursive: true });
    await Deno.mkdir(join(dir, "core", "recon"), { recursive: true });
    await Deno.writeTextFile(join(dir, "core", "recon", "r.ts"), "export const r = 1;\n");
    await Deno.writeTextFile(
      join(dir, "core", "gpu", "g.ts"),
      `import { r } from "../recon/r.ts";\nexport const g = r;\n`,
    );
    const bad = await layeringViolations(dir);
    assert(
      bad.length === 1 && /core\/gpu\/g\.ts: imports core\/recon\/r\.ts \(gpu → recon/.test(bad[0]),
      bad.join("\n"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
