/**
 * Which execution provider the score prior runs on: onnxruntime-web's `wasm` (default on a
 * fallback adapter such as Mesa llvmpipe) or `webgpu` (default on a real GPU), or onnxruntime-node's
 * CPU provider `native` (opt-in only), and the adapter probe that decides between the first two.
 *
 * @module
 */

import { PriorModelError } from "./metadata.ts";

/**
 * Where the prior runs: onnxruntime-web's `wasm` or `webgpu` execution providers, or `native`,
 * onnxruntime-node's CPU provider (opt-in, never chosen automatically; see
 * `LoadPriorOptions.provider` in `load.ts`).
 */
export type PriorProvider = "wasm" | "webgpu" | "native";

/**
 * Every {@linkcode PriorProvider}, for validating user input.
 *
 * @example
 * ```ts
 * import { PRIOR_PROVIDERS, type PriorProvider } from "@petrel/petrel";
 * const arg = "webgpu"; // e.g. from --provider
 * if (!PRIOR_PROVIDERS.includes(arg as PriorProvider)) throw new Error(`unknown provider ${arg}`);
 * ```
 */
export const PRIOR_PROVIDERS: readonly PriorProvider[] = ["wasm", "webgpu", "native"];

/**
 * Chooses the provider from an adapter: WebGPU on a real GPU, wasm on a fallback/no adapter.
 *
 * @example
 * ```ts
 * import { chooseProvider, defaultContext } from "@petrel/petrel";
 * chooseProvider({ isFallback: true }); // "wasm" (Mesa llvmpipe)
 * chooseProvider(null); // "wasm" (no adapter)
 * chooseProvider((await defaultContext()).adapter); // "webgpu" on a real GPU
 * ```
 */
export function chooseProvider(adapter: { isFallback: boolean } | null | undefined): PriorProvider {
  return adapter && !adapter.isFallback ? "webgpu" : "wasm";
}

/**
 * Asks WebGPU for an adapter (no device is created) and reports whether it is a fallback one.
 *
 * @example
 * ```ts
 * import { probeAdapter } from "@petrel/petrel";
 * const adapter = await probeAdapter(); // null without WebGPU
 * console.log(adapter?.description, adapter?.isFallback); // e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" true
 * ```
 */
export async function probeAdapter(): Promise<{ isFallback: boolean; description: string } | null> {
  if (typeof navigator === "undefined" || !navigator.gpu) return null;
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) return null;
  const info = adapter.info;
  return {
    // deno-lint-ignore no-explicit-any
    isFallback: Boolean((info as any).isFallbackAdapter ?? (adapter as any).isFallbackAdapter),
    description: info.description || info.device || "unknown adapter",
  };
}

/**
 * Resolves a requested provider: `"auto"` or none picks from the adapter (probed when `adapter`
 * is undefined), a known name is taken as is, anything else is refused with the valid names.
 *
 * @example
 * ```ts
 * import { resolveProvider } from "@petrel/petrel";
 * const provider = await resolveProvider("auto", { isFallback: true }); // "wasm"
 * ```
 */
export async function resolveProvider(
  requested: PriorProvider | "auto" | undefined,
  adapter?: { isFallback: boolean } | null,
): Promise<PriorProvider> {
  if (!requested || requested === "auto") {
    return chooseProvider(adapter !== undefined ? adapter : await probeAdapter());
  }
  if (PRIOR_PROVIDERS.includes(requested)) return requested;
  throw new PriorModelError(
    `unknown prior provider "${requested}": use "auto", ${
      PRIOR_PROVIDERS.map((p) => `"${p}"`).join(", ")
    }`,
  );
}
