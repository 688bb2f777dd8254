/**
 * The paths of a run, resolved before anything is granted: every path is resolved to its real
 * path first and validated after (no comma or control character, which Deno's permission lists
 * and bubblewrap's arguments cannot carry); input and model folders may hold no symbolic link
 * that leads outside them; the output folder must be empty and apart from everything else.
 *
 * @module
 */

/**
 * A bad option or input found before the run starts (nothing was started or written).
 *
 * @example
 * ```ts
 * import { InputProblem, runSandboxed } from "@petrel/petrel";
 * // runSandboxed returns its InputProblems as a result (nothing was started or written) ...
 * const r = await runSandboxed({ recipe: "examples/osem.ts", inputs: ["sim/none"], outDir: "out/osem" });
 * if (r.errorKind === "input") console.error(r.error); // 'input "sim/none" does not exist'
 * // ... and a caller's own error mapping can tell them apart from other failures
 * const exitCode = (e: unknown) => (e instanceof InputProblem ? 3 : 1);
 * ```
 */
export class InputProblem extends Error {
  override name = "InputProblem";
}

/** The resolved paths of a run: exactly what is granted to the child. */
export interface Prepared {
  recipe: string;
  inputs: string[];
  models: string[];
  outDir: string;
}

/** Characters that a resolved path may not contain (list separator, control characters). */
// deno-lint-ignore no-control-regex
const UNSAFE = /[,\u0000-\u001f\u007f]/;

function checkChars(resolved: string, given: string, what: string): string {
  const bad = UNSAFE.exec(resolved);
  if (bad) {
    const ch = bad[0] === ","
      ? "a comma"
      : `the control character U+${bad[0].charCodeAt(0).toString(16).padStart(4, "0")}`;
    throw new InputProblem(
      `${what} "${given}"${
        resolved !== given ? ` resolves to "${resolved}", which` : ""
      } contains ${ch}, which Deno's permission lists cannot express; rename or move it`,
    );
  }
  return resolved;
}

async function realPathOf(p: string, what: string): Promise<string> {
  let resolved: string;
  try {
    resolved = await Deno.realPath(p);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new InputProblem(`${what} "${p}" does not exist`);
    throw new InputProblem(`${what} "${p}" cannot be accessed: ${(e as Error).message}`);
  }
  return checkChars(resolved, p, what);
}

/** True when `child` is `parent` or lies inside it. */
export function within(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith("/") ? parent : parent + "/");
}

/**
 * Refuses a folder holding a symbolic link whose target lies outside the folder: the child is
 * granted the folder, and a link would lead its reads anywhere (`ln -s / in/root`).
 */
async function checkLinks(root: string, what: string): Promise<void> {
  if (!(await Deno.stat(root)).isDirectory) return;
  const stack = [root];
  while (stack.length) {
    const dir = stack.pop()!;
    for await (const e of Deno.readDir(dir)) {
      const p = `${dir}/${e.name}`;
      if (e.isSymlink) {
        let target: string;
        try {
          target = await Deno.realPath(p);
        } catch {
          throw new InputProblem(
            `${what} "${root}" holds a broken symbolic link "${p.slice(root.length + 1)}"`,
          );
        }
        if (!within(target, root)) {
          throw new InputProblem(
            `${what} "${root}" holds a symbolic link "${
              p.slice(root.length + 1)
            }" that leads outside it (to "${target}"); copy the file in, or pass the target ` +
              `as its own input`,
          );
        }
        checkChars(target, p, what);
      } else if (e.isDirectory) stack.push(p);
    }
  }
}

/**
 * Resolves and validates a run's paths. In "describe" mode there is no output folder. Throws
 * {@linkcode InputProblem} naming the path and the problem.
 */
export async function prepare(
  o: { recipe: string; inputs?: string[]; models?: string[]; outDir: string },
  mode: "run" | "describe",
  petrelRoot: string,
): Promise<Prepared> {
  const recipe = await realPathOf(o.recipe, "recipe");
  if (!(await Deno.stat(recipe)).isFile) {
    throw new InputProblem(`recipe "${o.recipe}" is not a file`);
  }
  if (!/\.(ts|js|mts|mjs)$/.test(recipe)) {
    throw new InputProblem(`recipe "${o.recipe}" must be a .ts or .js module`);
  }
  const inputs = await Promise.all((o.inputs ?? []).map((p) => realPathOf(p, "input")));
  const models = await Promise.all((o.models ?? []).map((p) => realPathOf(p, "model")));
  for (const p of inputs) await checkLinks(p, "input");
  for (const p of models) await checkLinks(p, "model");
  if (mode === "describe") return { recipe, inputs, models, outDir: "" };
  if (!o.outDir) throw new InputProblem("an output folder is required");
  try {
    await Deno.mkdir(o.outDir, { recursive: true });
  } catch (e) {
    throw new InputProblem(
      `output folder "${o.outDir}" cannot be created: ${(e as Error).message}`,
    );
  }
  const outDir = await realPathOf(o.outDir, "output folder");
  if (!(await Deno.stat(outDir)).isDirectory) {
    throw new InputProblem(`output "${o.outDir}" is not a folder`);
  }
  const guarded = [petrelRoot, recipe, ...inputs, ...models];
  for (const g of guarded) {
    if (within(g, outDir)) {
      throw new InputProblem(
        `output folder "${o.outDir}" contains ${
          g === petrelRoot ? "petrel itself" : `"${g}"`
        }; the run could overwrite it. Choose a separate folder`,
      );
    }
  }
  for (const p of [...inputs, ...models]) {
    if (within(outDir, p)) {
      throw new InputProblem(
        `output folder "${o.outDir}" lies inside the input "${p}"; choose a separate folder`,
      );
    }
  }
  for await (const _ of Deno.readDir(outDir)) {
    throw new InputProblem(
      `output folder "${o.outDir}" is not empty; choose a new folder or empty it`,
    );
  }
  return { recipe, inputs, models, outDir };
}
