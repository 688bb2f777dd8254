/**
 * Entry point of the sandboxed child process (`deno run … core/runtime/harness.ts`). Reads a
 * {@linkcode HarnessSpec} from stdin, creates the WebGPU context and reports its adapter,
 * imports the recipe, validates its parameters, runs it and reports the outcome as protocol
 * lines on its private channel (see channel.ts). Not meant to be imported.
 *
 * @module
 */

import { z } from "zod";
import { cleanStack } from "./stack.ts";
import { defaultContext } from "../gpu/context.ts";
import { recipeContext } from "./context.ts";
import {
  encodeMessage,
  type HarnessErrorKind,
  type HarnessMessage,
  type HarnessSpec,
  permissionInfo,
  permissionMessage,
} from "./protocol.ts";
import {
  loadedRecipe,
  parseParams,
  RecipeInputError,
  RecipeOutputQuotaError,
  RecipeParamsError,
} from "./recipe.ts";

// Captured before the recipe is imported, so that a recipe replacing them cannot stop the harness
// from reporting or exiting, nor rewrite its messages.
const exit: (code?: number) => never = Deno.exit.bind(Deno);
const encoder = new TextEncoder();
const encode = encoder.encode.bind(encoder);
const stringify = JSON.stringify;

/** The channel's write end, opened before the recipe is imported (see channel.ts). */
let channelWrite: ((bytes: Uint8Array) => number) | null = null;

function send(msg: HarnessMessage): void {
  if (!channelWrite) return;
  let bytes = encode(encodeMessage(msg, stringify) + "\n");
  while (bytes.length) bytes = bytes.subarray(channelWrite(bytes));
}

/** Opens the channel, then drops the permission to open it again: only this handle can write. */
function openChannel(path: string): void {
  const f = Deno.openSync(path, { write: true, append: true });
  channelWrite = f.writeSync.bind(f);
  Deno.permissions.revokeSync({ name: "write", path });
  if (Deno.permissions.querySync({ name: "write", path }).state === "granted") {
    throw new Error(`the harness could not revoke its write access to its channel ${path}`);
  }
}

function classify(err: unknown): { kind: HarnessErrorKind; message: string; resource?: string } {
  const perm = permissionInfo(err);
  if (perm) {
    return { kind: "permission", message: permissionMessage(perm), resource: perm.resource };
  }
  if (err instanceof RecipeParamsError) return { kind: "params", message: err.message };
  if (err instanceof RecipeOutputQuotaError) return { kind: "output-quota", message: err.message };
  // Missing or malformed inputs/models (core/io's FormatError, the prior's PriorModelError).
  const inputNames = ["FormatError", "PriorModelError", "OnnxFormatError"];
  if (
    err instanceof RecipeInputError || err instanceof Deno.errors.NotFound ||
    (err instanceof Error && inputNames.includes(err.name))
  ) {
    return { kind: "input", message: (err as Error).message };
  }
  if (err instanceof Error) return { kind: "recipe", message: `${err.name}: ${err.message}` };
  return { kind: "recipe", message: `recipe threw a non-Error value: ${String(err)}` };
}

let failed = false;
/** The recipe's path, once known (its folder and petrel's are hidden in logged stacks). */
let recipePath = "";
const PETREL_ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
function fail(err: unknown): never {
  if (!failed) {
    failed = true;
    const c = classify(err);
    if (err instanceof Error && err.stack && c.kind === "recipe") {
      console.error(cleanStack(err.stack, { petrelRoot: PETREL_ROOT, recipe: recipePath }));
    }
    send({ t: "error", ...c });
  }
  exit(1);
}

globalThis.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  fail(e.reason);
});
globalThis.addEventListener("error", (e) => {
  e.preventDefault();
  fail(e.error);
});

async function main(): Promise<void> {
  const spec = JSON.parse(await new Response(Deno.stdin.readable).text()) as HarnessSpec;
  recipePath = spec.recipe;
  openChannel(spec.channel);
  if (spec.mode === "run") {
    // Before the recipe is imported, so that the adapter report cannot be forged by it.
    const t0 = performance.now();
    try {
      const ctx = await defaultContext();
      send({ t: "adapter", adapter: ctx.adapter, ms: performance.now() - t0 });
    } catch (e) {
      send({
        t: "adapter",
        adapter: null,
        error: (e as Error).message,
        ms: performance.now() - t0,
      });
    }
  }
  const t1 = performance.now();
  const mod = await import(new URL(`file://${spec.recipe}`).href);
  const recipe = loadedRecipe(mod, spec.recipe);
  send({ t: "imported", ms: performance.now() - t1 });
  if (spec.mode === "describe") {
    send({
      t: "describe",
      description: recipe.description ?? null,
      schema: z.toJSONSchema(recipe.params, { io: "input", unrepresentable: "any" }),
    });
    exit(0);
  }
  const params = parseParams(recipe.params, spec.params);
  send({ t: "params", params });
  const ctx = await recipeContext(spec, params, {
    log: (message) => console.log(message),
    progress: (done, total) => send({ t: "progress", done, total }),
    nondeterministic: (paths) => send({ t: "nondeterministic", paths }),
  });
  const t2 = performance.now();
  await recipe.run(ctx);
  send({ t: "done", ms: performance.now() - t2 });
  exit(0);
}

main().catch(fail);
