/**
 * The sandbox the server runs jobs through: `runSandboxed` of `core/runtime/sandbox.ts` (a child
 * `deno run` per job with least permissions, wall-clock limit, memory cap, output quota).
 *
 * @module
 */
import { sandboxContainment } from "../runtime/sandbox.ts";

export { describeRecipe, runSandboxed, sandboxContainment } from "../runtime/sandbox.ts";
export type { RecipeDescription, SandboxOptions, SandboxResult } from "../runtime/sandbox.ts";

/**
 * Refuses to run jobs (`petrel serve`, `petrel worker`) on a host that lacks a sandbox layer,
 * unless the operator allowed it (option, or `PETREL_ALLOW_WEAK_SANDBOX=1`). The missing layers
 * are printed once either way.
 *
 * @example
 * ```ts
 * await requireStrongSandbox(undefined); // throws on a host without bubblewrap or cgroups
 * ```
 */
export async function requireStrongSandbox(allow: boolean | undefined): Promise<void> {
  const c = await sandboxContainment();
  if (!c.missing.length) return;
  let env = false;
  try {
    env = Deno.env.get("PETREL_ALLOW_WEAK_SANDBOX") === "1";
  } catch {
    // no env permission: only the option counts
  }
  if (allow ?? env) return;
  throw new Error(
    `petrel: this host lacks ${c.missing.length} sandbox layer(s) (listed above; see ` +
      `docs/security.md); install them, or set PETREL_ALLOW_WEAK_SANDBOX=1 to serve jobs anyway`,
  );
}
