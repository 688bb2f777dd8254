/**
 * The score prior at run time: the exported `denoiser.onnx` (ε_θ) and, when present, `vjp.onnx`
 * (ε and the vector-Jacobian product with respect to the LoRA parameters) loaded with
 * onnxruntime-web, the execution provider chosen from the WebGPU adapter.
 *
 * Execution providers:
 * - `wasm` (default on a fallback adapter such as Mesa llvmpipe): 1 thread by default (see
 *   {@linkcode LoadPriorOptions.numThreads}), all tensors live in
 *   host/wasm memory (ORT copies the feeds into the wasm heap on every run; nothing stays "on a
 *   device" because the device is the CPU).
 * - `webgpu` (default on a real GPU; ORT's `onnxruntime-web/webgpu` entry, which must run with
 *   1 wasm thread in Deno): the LoRA parameters are uploaded once per change into GPU buffers on
 *   ORT's device and fed as `gpu-buffer` tensors; images (one 3-slice stack, ~200 KB) travel to
 *   and from the host per call because the sampler and the EM step consume them there. ORT uses
 *   its own GPUDevice, which is not petrel's `GpuContext` device (setting `ort.env.webgpu.device`
 *   had no effect in 1.30). Because ORT 1.30's WebGPU kernels gave wrong results for this U-Net
 *   on llvmpipe (a 3×3 Conv with 6 input channels), a WebGPU prior is first cross-checked against
 *   wasm on one call and falls back to wasm on a mismatch ({@linkcode ScorePrior.providerNote}).
 *
 * Permissions: reading the model directory (`--allow-read=<dir>`). ORT's WebAssembly binary is
 * taken from the module graph with a `bytes` import when Deno runs with `--unstable-raw-imports`
 * (or `"unstable": ["raw-imports"]` in deno.json): then no other read permission is needed.
 * Without that flag ORT reads `onnxruntime-web/dist/ort-wasm-simd-threaded*.wasm` itself, which
 * needs read access to `node_modules/` (or pass `wasmBinary`). No net, env, run or ffi access.
 *
 * @module
 */

import type * as OrtNs from "onnxruntime-web";
import { DdpmSchedule } from "./schedule.ts";
import { LoraState, type ParamSpec } from "./lora.ts";
import { type OnnxHeader, readOnnxHeader } from "./onnx_proto.ts";
import { decodeTensorBundle } from "./tensor_bundle.ts";
import {
  checkSignature,
  gradOutputName,
  paramInputName,
  parsePriorMetadata,
  type PriorMetadata,
  PriorModelError,
} from "./metadata.ts";

type Ort = typeof OrtNs;
type OrtTensor = OrtNs.Tensor;

/**
 * Where the prior runs: onnxruntime-web's `wasm` or `webgpu` execution providers, or `native`,
 * onnxruntime-node's CPU provider (opt-in, never chosen automatically; see
 * {@linkcode LoadPriorOptions.provider}).
 */
export type PriorProvider = "wasm" | "webgpu" | "native";

/** Every {@linkcode PriorProvider}, for validating user input. */
export const PRIOR_PROVIDERS: readonly PriorProvider[] = ["wasm", "webgpu", "native"];

/** Chooses the provider from an adapter: WebGPU on a real GPU, wasm on a fallback/no adapter. */
export function chooseProvider(adapter: { isFallback: boolean } | null | undefined): PriorProvider {
  return adapter && !adapter.isFallback ? "webgpu" : "wasm";
}

/** Asks WebGPU for an adapter (no device is created) and reports whether it is a fallback one. */
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

/** Options of {@linkcode loadPrior}. */
export interface LoadPriorOptions {
  /**
   * "auto" (default) picks from the adapter (see {@linkcode chooseProvider}). `"native"` runs the
   * same graphs on onnxruntime-node's CPU provider: 2.6× faster than the wasm build on the 2-core
   * CPU machines (denoiser 110 vs 283 ms, VJP 428 vs 1102 ms for one 128² stack, 1 thread,
   * `bench/prior_bench.ts`), agreeing with wasm to ~3e-5. It loads a prebuilt native library,
   * so it needs `--allow-ffi` (and read access to `node_modules/`): meant for trusted
   * experiment and benchmark runs, not for sandboxed recipes, which keep ORT-web.
   */
  provider?: PriorProvider | "auto";
  /** The adapter to decide from (e.g. `GpuContext.adapter`); probed when omitted. */
  adapter?: { isFallback: boolean } | null;
  /**
   * wasm threads (webgpu always uses 1 in Deno); fixed by the first load in a process. Default 1:
   * on the shared 2-core machines a 2-thread ORT-web made the 128² VJP graph take more than 5
   * minutes per call instead of 3.5 s (and the forward 1.05 s instead of 0.67 s) under load;
   * 2 threads only pay off on an otherwise idle machine.
   */
  numThreads?: number;
  /** ORT's WebAssembly binary, if the caller has it (avoids any read of node_modules). */
  wasmBinary?: Uint8Array;
  /** Set to false to skip `vjp.onnx` even when it exists (sampling only). */
  loadVjp?: boolean;
  /**
   * With the WebGPU provider, first compare one denoiser call against wasm and fall back to
   * wasm when they disagree (default true; costs one wasm session creation).
   */
  crossCheck?: boolean;
  /**
   * With the WebGPU provider, keep the LoRA parameters in GPU buffers between calls (re-uploaded
   * only when the state's version changes). Default true; false feeds them from the host.
   */
  paramsOnDevice?: boolean;
}

/** Model bytes handed to {@linkcode loadPrior} instead of a directory. */
export interface PriorBytes {
  denoiser: Uint8Array;
  vjp?: Uint8Array | null;
  /** Initial parameter values by graph input name (`p.…`); missing ones start at zero. */
  initialParams?: ReadonlyMap<string, Float32Array>;
  /** Used in messages (default "model"). */
  label?: string;
}

/** Options of the network calls. */
export interface PriorCallOptions {
  /**
   * Shape of `x_t` in petrel's order, fastest axis first: `[nx, ny, nz]` with `nz` a multiple of
   * the C PET channels (3 slices; batch = nz / C); it equals ONNX `[nz/C, C, ny, nx]` (`mr` has
   * the same layout with the MR channels). Default: one square stack, or the VJP graph's shape.
   */
  shape?: readonly [number, number, number];
}

/** Result of {@linkcode ScorePrior.vjp}. */
export interface PriorVjp {
  eps: Float32Array;
  /** ⟨grad_eps, ∂ε/∂θ⟩ per parameter, keyed by graph input name (as in {@linkcode LoraState}). */
  grads: Map<string, Float32Array>;
}

/** Cumulative call counts and wall times (ms), for benchmarks and progress reports. */
export interface PriorStats {
  epsCalls: number;
  epsMs: number;
  vjpCalls: number;
  vjpMs: number;
}

/** The default file names inside a prior directory. */
export const PRIOR_FILES = {
  denoiser: "denoiser.onnx",
  vjp: "vjp.onnx",
} as const;

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

function loadOrt(
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

async function createSession(
  ort: Ort,
  provider: PriorProvider,
  model: Uint8Array,
  what: string,
  threads = 1,
): Promise<OrtNs.InferenceSession> {
  try {
    return await ort.InferenceSession.create(model, {
      executionProviders: [provider === "native" ? "cpu" : provider],
      graphOptimizationLevel: "all",
      logSeverityLevel: 3, // errors only (ORT warns about shape ops it keeps on the CPU)
      // native only (ORT-web takes its threads from env.wasm): a fixed intra-op thread count
      // and sequential execution keep the results reproducible run to run
      ...(provider === "native"
        ? { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: "sequential" as const }
        : {}),
    });
  } catch (e) {
    throw explainOrtError(e, what, provider);
  }
}

/** A deterministic small input (B = 1, 16×16 rounded up to the spatial multiple) for checks. */
function crossCheckFeeds(
  ort: Ort,
  meta: PriorMetadata,
  initial: ReadonlyMap<string, Float32Array>,
): Record<string, OrtTensor> {
  const m = meta.architecture?.spatial_multiple ?? 1;
  const side = Math.ceil(16 / m) * m;
  const c = meta.channels.pet;
  const cm = meta.channels.mr;
  const x = Float32Array.from({ length: c * side * side }, (_, i) => Math.sin(0.37 * i + 1));
  const mr = Float32Array.from(
    { length: cm * side * side },
    (_, i) => 0.5 + 0.5 * Math.cos(0.11 * i),
  );
  const feeds: Record<string, OrtTensor> = {
    x_t: new ort.Tensor("float32", x, [1, c, side, side]),
    t: new ort.Tensor("float32", Float32Array.of(Math.floor(meta.schedule.T / 10)), [1]),
    mr: new ort.Tensor("float32", mr, [1, cm, side, side]),
  };
  for (const p of meta.lora.params) {
    const name = paramInputName(p.name);
    feeds[name] = new ort.Tensor("float32", initial.get(name)!, p.shape);
  }
  return feeds;
}

async function runEps(
  session: OrtNs.InferenceSession,
  feeds: Record<string, OrtTensor>,
): Promise<Float32Array> {
  const out = await session.run(feeds);
  const eps = await out.eps.getData() as Float32Array;
  out.eps.dispose();
  return eps;
}

async function readOptional(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * Loads a prior from a directory holding `denoiser.onnx` (required), `vjp.onnx` (optional:
 * without it the prior samples but cannot be fine-tuned) and the initial LoRA values
 * (`lora_init.json` + `lora_init.bin`, see {@linkcode readInitialParams}), or from bytes.
 * Validates the metadata and both graph signatures before creating any session.
 */
export async function loadPrior(
  source: string | URL | PriorBytes,
  options: LoadPriorOptions = {},
): Promise<ScorePrior> {
  let bytes: PriorBytes;
  let vjpNote = "";
  let dir: string | null = null;
  if (typeof source === "string" || source instanceof URL) {
    dir = typeof source === "string" ? source : source.pathname;
    const denoiser = await readOptional(`${dir}/${PRIOR_FILES.denoiser}`);
    if (!denoiser) {
      throw new PriorModelError(
        `no ${PRIOR_FILES.denoiser} in ${dir} (a prior directory holds ${PRIOR_FILES.denoiser}, optionally ${PRIOR_FILES.vjp}, and the initial LoRA values named in its metadata)`,
      );
    }
    const vjp = options.loadVjp === false ? null : await readOptional(`${dir}/${PRIOR_FILES.vjp}`);
    if (!vjp) {
      vjpNote = options.loadVjp === false
        ? "vjp.onnx not loaded (loadVjp: false)"
        : `no ${PRIOR_FILES.vjp} in ${dir}`;
    }
    bytes = { denoiser, vjp, label: `${dir}/${PRIOR_FILES.denoiser}` };
  } else {
    bytes = source;
    if (!bytes.vjp || options.loadVjp === false) {
      vjpNote = options.loadVjp === false
        ? "vjp graph not loaded (loadVjp: false)"
        : "no vjp graph given";
    }
  }
  const label = bytes.label ?? "model";
  const vjpLabel = label.endsWith(PRIOR_FILES.denoiser)
    ? label.slice(0, -PRIOR_FILES.denoiser.length) + PRIOR_FILES.vjp
    : `${label} (vjp)`;
  const header = readOnnxHeader(bytes.denoiser);
  const meta = parsePriorMetadata(header, label);
  checkSignature(header, meta, "denoiser", label);
  let vjpHeader: OnnxHeader | null = null;
  const vjpBytes = options.loadVjp === false ? null : bytes.vjp ?? null;
  if (vjpBytes) {
    vjpHeader = readOnnxHeader(vjpBytes);
    const vmeta = parsePriorMetadata(vjpHeader, vjpLabel);
    if (JSON.stringify(vmeta.lora.params) !== JSON.stringify(meta.lora.params)) {
      throw new PriorModelError(
        `${vjpLabel} declares a different LoRA layout than ${label}; both graphs must come from the same export`,
      );
    }
    checkSignature(vjpHeader, meta, "vjp", vjpLabel);
  }
  const initial = new Map<string, Float32Array>();
  const given = dir ? await readInitialParams(dir, meta) : bytes.initialParams ?? new Map();
  for (const [k, v] of given) initial.set(paramInputName(k), v);
  const missing = meta.lora.params.map((p) => paramInputName(p.name)).filter((n) =>
    !initial.has(n)
  );
  if (missing.length) {
    throw new PriorModelError(
      `${label}: no initial values for ${missing.length} adaptable parameter(s) (first "${
        missing[0]
      }"); expected all of lora.params (the biases carry the trained base biases)${
        dir ? "" : ": pass initialParams"
      }`,
    );
  }

  let provider: PriorProvider;
  if (!options.provider || options.provider === "auto") {
    const adapter = options.adapter !== undefined ? options.adapter : await probeAdapter();
    provider = chooseProvider(adapter);
  } else if (PRIOR_PROVIDERS.includes(options.provider)) provider = options.provider;
  else {
    throw new PriorModelError(
      `unknown prior provider "${options.provider}": use "auto", ${
        PRIOR_PROVIDERS.map((p) => `"${p}"`).join(", ")
      }`,
    );
  }
  const threads = options.numThreads ?? 1;
  let loaded = await loadOrt(provider, threads, options.wasmBinary);
  let denoiserSession = await createSession(
    loaded.ort,
    provider,
    bytes.denoiser,
    label,
    loaded.threads,
  );
  let providerNote = "";
  if (provider === "webgpu" && options.crossCheck !== false) {
    // onnxruntime-web 1.30's WebGPU kernels are not always right (a 3×3 Conv with 6 input
    // channels and a multiple of 4 outputs, the U-Net stem, gave errors of O(1) on Mesa
    // llvmpipe): compare one call against the wasm provider and fall back to it on a mismatch.
    const wasm = await loadOrt("wasm", threads, options.wasmBinary);
    const wasmSession = await createSession(wasm.ort, "wasm", bytes.denoiser, label);
    const feedsFor = (ort: Ort): Record<string, OrtTensor> => crossCheckFeeds(ort, meta, initial);
    const ref = await runEps(wasmSession, feedsFor(wasm.ort));
    const got = await runEps(denoiserSession, feedsFor(loaded.ort));
    let diff = 0;
    let scale = 1;
    for (let i = 0; i < ref.length; i++) {
      diff = Math.max(diff, Math.abs(ref[i] - got[i]));
      scale = Math.max(scale, Math.abs(ref[i]));
    }
    if (!(diff <= 1e-3 * scale)) {
      providerNote = `the WebGPU provider disagreed with wasm by ${diff.toPrecision(3)} (max |ε| ${
        scale.toPrecision(3)
      }) on a check input, so the prior runs on wasm`;
      await denoiserSession.release();
      denoiserSession = wasmSession;
      provider = "wasm";
      loaded = wasm;
    } else {
      providerNote = `WebGPU agreed with wasm to ${diff.toPrecision(3)} on a check input`;
      await wasmSession.release();
    }
  }
  let vjpSession: OrtNs.InferenceSession | null = null;
  if (vjpBytes) {
    try {
      vjpSession = await createSession(loaded.ort, provider, vjpBytes, vjpLabel, loaded.threads);
    } catch (e) {
      await denoiserSession.release();
      throw e;
    }
  }
  const specs: ParamSpec[] = meta.lora.params.map((p) => ({
    name: paramInputName(p.name),
    shape: p.shape,
  }));
  return new ScorePrior({
    ort: loaded.ort,
    provider,
    threads: loaded.threads,
    providerNote,
    paramsOnDevice: provider === "webgpu" && options.paramsOnDevice !== false,
    meta,
    specs,
    initial,
    denoiser: denoiserSession,
    vjp: vjpSession,
    vjpHeader,
    vjpNote,
    label,
  });
}

interface ScorePriorParts {
  ort: Ort;
  provider: PriorProvider;
  threads: number;
  providerNote: string;
  paramsOnDevice: boolean;
  meta: PriorMetadata;
  specs: ParamSpec[];
  initial: Map<string, Float32Array>;
  denoiser: OrtNs.InferenceSession;
  vjp: OrtNs.InferenceSession | null;
  vjpHeader: OnnxHeader | null;
  vjpNote: string;
  label: string;
}

/** A loaded score prior: ε_θ(x_t, t, mr) and its VJP with respect to the LoRA parameters. */
export class ScorePrior {
  /** The execution provider the sessions run on. */
  readonly provider: PriorProvider;
  /** wasm threads ORT runs with. */
  readonly threads: number;
  /** The outcome of the WebGPU cross-check ("" when it did not run). */
  readonly providerNote: string;
  /** The validated model card. */
  readonly meta: PriorMetadata;
  /** The diffusion schedule from the metadata. */
  readonly schedule: DdpmSchedule;
  /** Adaptable parameters in graph order (names are graph input names, `p.…`). */
  readonly paramSpecs: readonly ParamSpec[];
  /** True when the VJP graph is loaded, i.e. the prior can be fine-tuned. */
  readonly canFineTune: boolean;
  /** Why fine-tuning is off ("" when it is on). */
  readonly fineTuneNote: string;
  /** Call counts and times. */
  readonly stats: PriorStats = { epsCalls: 0, epsMs: 0, vjpCalls: 0, vjpMs: 0 };
  readonly #p: ScorePriorParts;
  #queue: Promise<unknown> = Promise.resolve();
  #gpuParams = new WeakMap<LoraState, { version: number; tensors: Map<string, OrtTensor> }>();
  #released = false;
  readonly #gradNames: Map<string, string>;

  /** Use {@linkcode loadPrior}. */
  constructor(parts: ScorePriorParts) {
    this.#p = parts;
    this.provider = parts.provider;
    this.threads = parts.threads;
    this.providerNote = parts.providerNote;
    this.meta = parts.meta;
    this.schedule = new DdpmSchedule(parts.meta.schedule);
    this.paramSpecs = parts.specs;
    this.canFineTune = parts.vjp !== null;
    this.fineTuneNote = parts.vjp ? "" : `fine-tuning is off: ${parts.vjpNote}`;
    this.#gradNames = new Map(
      parts.meta.lora.params.map((p) => {
        const input = paramInputName(p.name);
        return [input, p.grad ?? gradOutputName(input)];
      }),
    );
  }

  /** A fresh parameter state at the shipped initial values (LoRA up = 0: the base model). */
  createParams(): LoraState {
    return new LoraState(this.paramSpecs, this.#p.initial);
  }

  /** The fixed `[B, C, H, W]` of the VJP graph, or null without one (or if it is dynamic). */
  get vjpShape(): number[] | null {
    const s = this.#p.vjpHeader?.inputs[0].shape;
    return s && s.every((d) => typeof d === "number") ? s as number[] : null;
  }

  /** PET channels per stack (3 slices in the reference). */
  get channels(): number {
    return this.meta.channels.pet;
  }

  #onnxShape(n: number, opts: PriorCallOptions | undefined, fixed: number[] | null): number[] {
    const c = this.channels;
    let dims: number[];
    if (opts?.shape) {
      const [nx, ny, nz] = opts.shape;
      if (nz % c !== 0 || nx * ny * nz !== n) {
        throw new RangeError(
          `shape [${
            opts.shape.join(", ")
          }] does not fit ${n} values (expected [nx, ny, nz] with nz a multiple of ${c} and nx·ny·nz = ${n})`,
        );
      }
      dims = [nz / c, c, ny, nx];
    } else if (fixed && fixed.reduce((a, b) => a * b, 1) === n) dims = fixed;
    else {
      const side = Math.round(Math.sqrt(n / c));
      if (side * side * c !== n) {
        throw new RangeError(
          `cannot infer the stack shape of ${n} values (not ${c} square slices): pass options.shape = [nx, ny, nz]`,
        );
      }
      dims = [1, c, side, side];
    }
    const m = this.meta.architecture?.spatial_multiple ?? 1;
    if (dims[2] % m !== 0 || dims[3] % m !== 0) {
      throw new RangeError(
        `slices of ${dims[3]}×${
          dims[2]
        } do not fit the network: nx and ny must be multiples of ${m} (architecture.spatial_multiple); pad the stack`,
      );
    }
    return dims;
  }

  #tVector(t: number | ArrayLike<number>, batch: number): Float32Array {
    const tv = typeof t === "number" ? new Float32Array(batch).fill(t) : Float32Array.from(t);
    if (tv.length !== batch) {
      throw new RangeError(`t has ${tv.length} entries, expected one per batch item (${batch})`);
    }
    for (const x of tv) {
      if (!(x >= 0 && x < this.schedule.T)) {
        throw new RangeError(`timestep ${x} is outside [0, ${this.schedule.T - 1}]`);
      }
    }
    return tv;
  }

  #checkParams(params: LoraState): void {
    const names = params.names;
    if (
      names.length !== this.paramSpecs.length ||
      names.some((n, i) => n !== this.paramSpecs[i].name)
    ) {
      throw new Error(
        `the LoRA state does not belong to this prior (expected ${this.paramSpecs.length} parameters starting with "${
          this.paramSpecs[0].name
        }"); create it with prior.createParams()`,
      );
    }
  }

  #paramFeeds(params: LoraState): Record<string, OrtTensor> {
    const { ort } = this.#p;
    const feeds: Record<string, OrtTensor> = {};
    if (!this.#p.paramsOnDevice) {
      for (const s of this.paramSpecs) {
        feeds[s.name] = new ort.Tensor("float32", params.get(s.name), [...s.shape]);
      }
      return feeds;
    }
    // webgpu: keep the parameters in GPU buffers on ORT's device until they change
    let cached = this.#gpuParams.get(params);
    if (!cached || cached.version !== params.version) {
      cached?.tensors.forEach((t) => t.dispose());
      cached = { version: params.version, tensors: new Map() };
      this.#gpuParams.set(params, cached);
    }
    return Object.fromEntries(this.paramSpecs.map((s) => {
      let t = cached!.tensors.get(s.name);
      if (!t) {
        t = this.#uploadGpu(params.get(s.name), s.shape);
        cached!.tensors.set(s.name, t);
      }
      return [s.name, t];
    }));
  }

  #device: GPUDevice | null = null;
  #uploadGpu(data: Float32Array, shape: readonly number[]): OrtTensor {
    const device = this.#device!;
    const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
    const buffer = device.createBuffer({
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(
      buffer,
      0,
      data.buffer as ArrayBuffer,
      data.byteOffset,
      data.byteLength,
    );
    return this.#p.ort.Tensor.fromGpuBuffer(buffer, {
      dataType: "float32",
      dims: [...shape],
      dispose: () => buffer.destroy(),
    });
  }

  async #run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#released) throw new Error("this ScorePrior has been released");
    if (this.#p.paramsOnDevice && !this.#device) {
      this.#device = await this.#p.ort.env.webgpu.device as GPUDevice;
    }
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => undefined);
    return await next;
  }

  #imageFeeds(
    xt: Float32Array,
    t: number | ArrayLike<number>,
    mr: Float32Array,
    dims: number[],
  ): Record<string, OrtTensor> {
    const { ort } = this.#p;
    const mrDims = [dims[0], this.meta.channels.mr, dims[2], dims[3]];
    const nMr = mrDims.reduce((a, b) => a * b, 1);
    if (mr.length !== nMr) {
      throw new RangeError(
        `mr has ${mr.length} values, expected ${nMr} (ONNX shape [${mrDims.join(", ")}])`,
      );
    }
    return {
      x_t: new ort.Tensor("float32", xt, dims),
      t: new ort.Tensor("float32", this.#tVector(t, dims[0]), [dims[0]]),
      mr: new ort.Tensor("float32", mr, mrDims),
    };
  }

  /**
   * ε_θ(x_t, t, mr) with LoRA parameters `params`. `xt` and `mr` are 3-slice stacks (petrel
   * order `[nx, ny, 3·B]`, i.e. ONNX `[B, 3, ny, nx]`; see {@linkcode PriorCallOptions.shape});
   * `t` is the integer timestep (one per batch item or shared).
   */
  eps(
    xt: Float32Array,
    t: number | ArrayLike<number>,
    mr: Float32Array,
    params: LoraState,
    options?: PriorCallOptions,
  ): Promise<Float32Array> {
    this.#checkParams(params);
    const dims = this.#onnxShape(xt.length, options, null);
    return this.#run(async () => {
      const t0 = performance.now();
      const feeds = { ...this.#imageFeeds(xt, t, mr, dims), ...this.#paramFeeds(params) };
      const out = await this.#p.denoiser.run(feeds);
      const eps = await out.eps.getData() as Float32Array;
      out.eps.dispose();
      this.stats.epsCalls++;
      this.stats.epsMs += performance.now() - t0;
      return eps;
    });
  }

  /**
   * ε and the vector-Jacobian product `grads[θ] = (∂ε/∂θ)ᵀ gradEps` for every adaptable
   * parameter, from the VJP graph (its batch and image size are fixed at export:
   * {@linkcode ScorePrior.vjpShape}). Throws when the prior has no VJP graph.
   */
  vjp(
    xt: Float32Array,
    t: number | ArrayLike<number>,
    mr: Float32Array,
    params: LoraState,
    gradEps: Float32Array,
    options?: PriorCallOptions,
  ): Promise<PriorVjp> {
    const session = this.#p.vjp;
    if (!session) {
      throw new Error(
        `${this.#p.label}: cannot compute gradients, ${this.fineTuneNote} (sampling still works)`,
      );
    }
    this.#checkParams(params);
    const fixed = this.vjpShape;
    const dims = this.#onnxShape(xt.length, options, fixed);
    if (fixed && dims.some((d, i) => d !== fixed[i])) {
      throw new RangeError(
        `the VJP graph was exported for x_t of shape [${fixed.join(", ")}] (ONNX order), got [${
          dims.join(", ")
        }]; re-export vjp.onnx for this size or use stacks of that size`,
      );
    }
    if (gradEps.length !== xt.length) {
      throw new RangeError(`gradEps has ${gradEps.length} values, expected ${xt.length} like x_t`);
    }
    return this.#run(async () => {
      const t0 = performance.now();
      const { ort } = this.#p;
      const feeds = {
        ...this.#imageFeeds(xt, t, mr, dims),
        ...this.#paramFeeds(params),
        grad_eps: new ort.Tensor("float32", gradEps, dims),
      };
      const out = await session.run(feeds);
      const eps = await out.eps.getData() as Float32Array;
      const grads = new Map<string, Float32Array>();
      for (const s of this.paramSpecs) {
        const o = out[this.#gradNames.get(s.name)!];
        grads.set(s.name, await o.getData() as Float32Array);
        o.dispose();
      }
      out.eps.dispose();
      this.stats.vjpCalls++;
      this.stats.vjpMs += performance.now() - t0;
      return { eps, grads };
    });
  }

  /** Releases the ORT sessions (and GPU parameter buffers). */
  async release(): Promise<void> {
    if (this.#released) return;
    await this.#queue;
    this.#released = true;
    await this.#p.denoiser.release();
    await this.#p.vjp?.release();
  }
}

/**
 * Reads the initial LoRA values shipped beside a model (`lora.init` in the metadata: a raw
 * float32 little-endian file concatenated in `lora.params` order, and optionally its
 * `petrel-tensors-v1` JSON index). Checks the value count and, when given, the SHA-256.
 */
export async function readInitialParams(
  dir: string,
  meta: PriorMetadata,
): Promise<Map<string, Float32Array>> {
  const init = meta.lora.init;
  if (!init) {
    throw new PriorModelError(
      `the metadata of the prior in ${dir} has no lora.init entry; expected {file, index?, count?, sha256?} naming the initial LoRA values`,
    );
  }
  const raw = await readOptional(`${dir}/${init.file}`);
  if (!raw) {
    throw new PriorModelError(
      `the initial LoRA values ${dir}/${init.file} named in the metadata (lora.init.file) are missing`,
    );
  }
  if (init.sha256) {
    const digest = new Uint8Array(
      await crypto.subtle.digest("SHA-256", raw as Uint8Array<ArrayBuffer>),
    );
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    if (hex !== init.sha256) {
      throw new PriorModelError(
        `${dir}/${init.file} has SHA-256 ${hex}, but the metadata expects ${init.sha256} (the file does not belong to this model)`,
      );
    }
  }
  const indexBytes = init.index ? await readOptional(`${dir}/${init.index}`) : null;
  let index: unknown;
  if (indexBytes) index = JSON.parse(new TextDecoder().decode(indexBytes));
  else {
    // no index: the layout is lora.params order
    let offset = 0;
    const tensors = meta.lora.params.map((p) => {
      const t = { name: p.name, shape: p.shape, offset };
      offset += p.shape.reduce((a, b) => a * b, 1);
      return t;
    });
    index = {
      format: "petrel-tensors-v1",
      file: init.file,
      dtype: "float32",
      byte_order: "little",
      count: offset,
      tensors,
    };
  }
  const bundle = decodeTensorBundle(index, raw, `${dir}/${init.index ?? init.file}`);
  const out = new Map<string, Float32Array>();
  for (const p of meta.lora.params) {
    const t = bundle.get(p.name);
    if (!t) {
      throw new PriorModelError(`${dir}/${init.file} has no initial value for "${p.name}"`);
    }
    if (t.shape.join() !== p.shape.join()) {
      throw new PriorModelError(
        `initial value of "${p.name}" has shape [${t.shape.join(", ")}], the metadata declares [${
          p.shape.join(", ")
        }]`,
      );
    }
    out.set(p.name, t.data);
  }
  return out;
}
