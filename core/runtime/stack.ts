/**
 * Stack traces for logs people read: the error line and the recipe's own frames, without the
 * paths of the machine petrel is installed on (a server's checkout, its job folders). Frames in
 * the recipe file show its base name, frames in files beside it a path relative to its folder,
 * frames inside petrel `petrel/<path in the checkout>`; the harness's own frames and Deno's
 * internals (`ext:`, `node:`) are dropped.
 *
 * @module
 */

/** Where the paths to hide are. */
export interface StackPaths {
  /** petrel's checkout (absolute, no trailing slash). */
  petrelRoot: string;
  /** The recipe file (absolute). */
  recipe: string;
}

const FRAME = /^\s+at /;

/** Rewrites one `file://` location (`file:///a/b.ts:3:7`), or returns null to drop the frame. */
function location(url: string, p: StackPaths): string | null {
  let path = url.replace(/^file:\/\//, "");
  try {
    path = decodeURIComponent(path);
  } catch {
    // keep it as it is
  }
  const recipeDir = p.recipe.slice(0, p.recipe.lastIndexOf("/") + 1);
  const root = `${p.petrelRoot}/`;
  if (path.startsWith(`${p.recipe}:`)) return path.slice(recipeDir.length);
  if (path.startsWith(`${root}core/runtime/harness.ts:`)) return null;
  if (path.startsWith(root)) return `petrel/${path.slice(root.length)}`;
  if (path.startsWith(recipeDir)) return path.slice(recipeDir.length);
  // Anything else (node_modules outside the checkout, the Deno cache): the file name only.
  return `…/${path.slice(path.lastIndexOf("/") + 1)}`;
}

/**
 * Cleans `stack` (an `Error.stack`) for a log: keeps the message lines, rewrites every frame's
 * location (see the module notes) and drops harness and runtime-internal frames.
 *
 * @example
 * ```ts
 * cleanStack(
 *   "Error: bad\n    at run (file:///srv/jobs/42/recipe/mine.ts:3:9)\n" +
 *     "    at main (file:///opt/petrel/core/runtime/harness.ts:204:3)",
 *   { petrelRoot: "/opt/petrel", recipe: "/srv/jobs/42/recipe/mine.ts" },
 * ); // "Error: bad\n    at run (mine.ts:3:9)"
 * ```
 */
export function cleanStack(stack: string, paths: StackPaths): string {
  const out: string[] = [];
  for (const line of stack.split("\n")) {
    if (!FRAME.test(line)) {
      out.push(line);
      continue;
    }
    if (/\((ext|node):|\bat (ext|node):/.test(line)) continue;
    let drop = false;
    const rewritten = line.replace(/file:\/\/[^\s()]+/g, (m) => {
      const r = location(m, paths);
      if (r === null) drop = true;
      return r ?? m;
    });
    if (!drop) out.push(rewritten);
  }
  return out.join("\n");
}
