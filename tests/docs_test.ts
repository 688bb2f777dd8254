/**
 * Every function, class and variable that `mod.ts` exports has an `@example` in its JSDoc
 * (Deno std's style; issue #12 item 5). Read from `deno doc --json mod.ts`, so re-exports count
 * where they are declared. Interfaces and type aliases are not required to have one.
 *
 * Examples import from the package name, `import { x } from "@petrel/petrel";` (deno.json
 * "name" + "exports" resolve it), and type-check with `deno check --doc <file>`; they are not
 * executed (many need a GPU, a model or files).
 */
import { ok as assert } from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), ".."));

/**
 * Files whose exports may still lack an `@example` (work in progress). Remove a file as soon as
 * its examples are in; an entry that is no longer needed fails the test, so this only shrinks.
 */
const TODO: ReadonlySet<string> = new Set([]);

/** The declaration kinds that must carry an `@example`. */
const REQUIRED = new Set(["function", "class", "variable"]);

interface DocDeclaration {
  kind: string;
  location: { filename: string };
  jsDoc?: { tags?: { kind: string }[] };
}
interface DocSymbol {
  name: string;
  declarations: DocDeclaration[];
}

/** `deno doc --json mod.ts`: the exported symbols of the public entry point. */
async function publicSymbols(): Promise<DocSymbol[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", "mod.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert(out.success, `deno doc --json mod.ts failed:\n${err}`);
  const doc = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    nodes: Record<string, { symbols: DocSymbol[] }>;
  };
  const mod = Object.values(doc.nodes);
  assert(mod.length === 1, `expected one module node, got ${mod.length}`);
  return mod[0].symbols;
}

/** Missing `@example`s, as repository-relative file → exported names. */
export async function missingExamples(): Promise<Map<string, string[]>> {
  const missing = new Map<string, string[]>();
  for (const s of await publicSymbols()) {
    const decls = s.declarations.filter((d) => REQUIRED.has(d.kind));
    if (decls.length === 0) continue;
    // overloads and merged declarations: one @example on any of them documents the symbol
    if (decls.some((d) => d.jsDoc?.tags?.some((t) => t.kind === "example"))) continue;
    const file = relative(ROOT, fileURLToPath(decls[0].location.filename)).split("\\").join("/");
    missing.set(file, [...(missing.get(file) ?? []), s.name]);
  }
  return missing;
}

Deno.test("every exported function, class and variable of mod.ts has an @example", async () => {
  const missing = await missingExamples();
  const unexpected = [...missing].filter(([file]) => !TODO.has(file));
  assert(
    unexpected.length === 0,
    'exports without an @example (add one, ```ts fenced, importing from "@petrel/petrel"):\n' +
      unexpected.map(([file, names]) => `  ${file}: ${names.join(", ")}`).join("\n"),
  );
  const done = [...TODO].filter((file) => !missing.has(file));
  assert(
    done.length === 0,
    `these files have all their @examples now; remove them from TODO in tests/docs_test.ts:\n  ${
      done.join("\n  ")
    }`,
  );
});
