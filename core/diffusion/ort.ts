/**
 * Loading onnxruntime (onnxruntime-web for `wasm`/`webgpu`, onnxruntime-node for `native`) and
 * creating its inference sessions, with errors that say what to grant or install.
 *
 * ORT-web's wasm binary: taken from the module graph with a `bytes` import when Deno runs with
 * `--unstable-raw-imports` (or `"unstable": ["raw-imports"]` in deno.json), so that no read
 * permission beyond the model directory is needed. Without that flag ORT reads
 * `onnxruntime-web/dist/ort-wasm-simd-threaded*.wasm` itself, which needs read access to
 * `node_modules/` (or pass `wasmBinary`). `native` needs `--allow-ffi`.
 *
 * Internal to `core/diffusion` (not re-exported by its `mod.ts`).
 *
 * @module
 */

import type * as OrtNs from "onnxruntime-web";
import type { PriorProvider } from "./provider.ts";

/** The onnxruntime module (web or node; both expose onnxruntime-common's API). */
export type Ort = typeof OrtNs;
/** An ORT tensor. */
export type OrtTensor = OrtNs.Tensor;
/** An ORT inference session. */
export type OrtSession = OrtNs.InferenceSession;

const ortCache = new Map<PriorProvider, Promise<{ ort: Ort; threads: number }>>();
let nativeOrt: Promise<Ort> | undefined;

async function rawWasm(provider: PriorProvider): Promise<Uint8Array | undefined> {
  // Needs --unstable-raw-imports; without it the import throws and ORT reads the file itself.
  try {
    const mod = provider === "webgpu"
      ? await import("onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm", {
        with: { type: "bytes" },
      })
      : await import("onnxruntime-web/ort-wasm-simd-threaded.wasm", { with: { type: "bytes" } });
    return mod.default as Uint8Array;
  } catch {
    return undefined;
  }
}

/**
 * The onnxruntime module for a provider, imported once per process and provider (ORT-web's
 * thread count is fixed by the first load; native threads are per session).
 */
export function loadOrt(
  provider: PriorProvider,
  numThreads: number,
  wasmBinary?: Uint8Array,
): Promise<{ ort: Ort; threads: number }> {
  if (provider === "native") {
    // onnxruntime-node shares onnxruntime-common's API with onnxruntime-web (InferenceSession,
    // Tensor, env); its threads are set per session (intraOpNumThreads), not per process.
    nativeOrt ??= importNative().then((ort) => {
      ort.env.logLevel = "error";
      return ort;
    });
    const pending = nativeOrt;
    return pending.then((ort) => ({ ort, threads: numThreads }), (e) => {
      nativeOrt = undefined;
      throw e;
    });
  }
  let p = ortCache.get(provider);
  if (!p) {
    p = (async () => {
      const ort: Ort = provider === "webgpu"
        ? await import("onnxruntime-web/webgpu")
        : await import("onnxruntime-web");
      const threads = provider === "webgpu" ? 1 : numThreads;
      ort.env.wasm.numThreads = threads;
      ort.env.logLevel = "error";
      const bin = wasmBinary ?? await rawWasm(provider);
      if (bin) ort.env.wasm.wasmBinary = bin;
      return { ort, threads };
    })();
    ortCache.set(provider, p);
  }
  return p;
}

async function importNative(): Promise<Ort> {
  try {
    return await import("onnxruntime-node") as unknown as Ort;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(
      `the native prior provider needs onnxruntime-node, which could not be loaded: ${
        /ffi|NotCapable|PermissionDenied|Requires/.test(msg)
          ? 'run Deno with --allow-ffi and read access to node_modules/ (or use provider "wasm")'
          : 'install it with `deno install` (or use provider "wasm")'
      } (${msg})`,
      { cause: e },
    );
  }
}

function explainOrtError(e: unknown, what: string, provider: PriorProvider): Error {
  const msg = e instanceof Error ? e.message : String(e);
  if (provider === "native") {
    return new Error(`onnxruntime-node (native) failed on ${what}: ${msg}`, { cause: e });
  }
  if (/NotCapable|Requires read access/.test(msg)) {
    return new Error(
      `onnxruntime-web (${provider}) could not read its WebAssembly binary while loading ${what}: run Deno with --unstable-raw-imports (the binary then comes from the module graph), or grant --allow-read to node_modules/, or pass the bytes as options.wasmBinary (${msg})`,
      { cause: e },
    );
  }
  return new Error(`onnxruntime-web (${provider}) failed on ${what}: ${msg}`, { cause: e });
}

/**
 * Creates an inference session on `provider`; errors name `what` and what to grant.
 * `interOpThreads` > 1 (native only) runs independent graph nodes concurrently
 * (`executionMode: "parallel"`, the pool not spinning while idle); every node still runs on
 * `threads` intra-op threads, so the values are the same as sequential execution's.
 */
export async function createSession(
  ort: Ort,
  provider: PriorProvider,
  model: Uint8Array,
  what: string,
  threads = 1,
  interOpThreads = 1,
): Promise<OrtSession> {
  try {
    return await ort.InferenceSession.create(model, {
      executionProviders: [provider === "native" ? "cpu" : provider],
      graphOptimizationLevel: "all",
      logSeverityLevel: 3, // errors only (ORT warns about shape ops it keeps on the CPU)
      // native only (ORT-web takes its threads from env.wasm): a fixed intra-op thread count
      // keeps the results reproducible run to run (a second intra-op thread changes them);
      // inter-op parallelism does not (tests/diffusion/prior_test.ts)
      ...(provider === "native"
        ? interOpThreads > 1
          ? {
            intraOpNumThreads: threads,
            interOpNumThreads: interOpThreads,
            executionMode: "parallel" as const,
            extra: { session: { inter_op: { allow_spinning: "0" } } },
          }
          : {
            intraOpNumThreads: threads,
            interOpNumThreads: 1,
            executionMode: "sequential" as const,
          }
        : {}),
    });
  } catch (e) {
    throw explainOrtError(e, what, provider);
  }
}

/** Runs a denoiser session and returns its `eps` output on the host. */
export async function runEps(
  session: OrtSession,
  feeds: Record<string, OrtTensor>,
): Promise<Float32Array> {
  const out = await session.run(feeds);
  const eps = await out.eps.getData() as Float32Array;
  out.eps.dispose();
  return eps;
}
