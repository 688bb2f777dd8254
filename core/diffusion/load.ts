/**
 * Loading a score prior: from a directory holding `denoiser.onnx`, optionally `vjp.onnx`, and the
 * initial LoRA values, or from bytes. Validates the model card and both graph signatures before
 * creating any session, and cross-checks a WebGPU session against wasm.
 *
 * Permissions: reading the model directory (`--allow-read=<dir>`); see `ort.ts` for ORT's own
 * binary and `native`'s `--allow-ffi`. No net, env or run access.
 *
 * @module
 */

import { type OnnxHeader, readOnnxHeader } from "./onnx_proto.ts";
import { decodeTensorBundle } from "./tensor_bundle.ts";
import type { ParamSpec } from "./lora.ts";
import {
  checkSignature,
  paramInputName,
  parsePriorMetadata,
  type PriorMetadata,
  PriorModelError,
} from "./metadata.ts";
import {
  createSession,
  loadOrt,
  type Ort,
  type OrtSession,
  type OrtTensor,
  runEps,
} from "./ort.ts";
import { type PriorProvider, resolveProvider } from "./provider.ts";
import { ScorePrior } from "./prior.ts";

/**
 * Options of {@linkcode loadPrior}.
 *
 * @example
 * ```ts
 * import { type LoadPriorOptions, loadPrior } from "@petrel/petrel";
 * const options: LoadPriorOptions = {
 *   provider: "wasm", // force onnxruntime-web's CPU build, e.g. for bit-identical reruns
 *   numThreads: 1, // the default; 2 only pays off on an idle machine
 *   loadVjp: false, // sampling only (no fine-tuning): skips vjp.onnx
 * };
 * const prior = await loadPrior("models/fdg_prior", options);
 * prior.canFineTune; // false
 * ```
 */
export interface LoadPriorOptions {
  /**
   * "auto" (default) picks from the adapter (see `chooseProvider` in `provider.ts`). `"native"` runs the
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
   * 2 threads only pay off on an otherwise idle machine, where they do: the CPU-preset stack in
   * 0.69× the time, the image bit for bit the same (`docs/performance.md`;
   * `petrel recon ddip --set priorThreads=2`).
   */
  numThreads?: number;
  /**
   * onnxruntime-node (`provider: "native"`) only: threads that run independent nodes of a graph
   * at the same time (ORT's parallel executor; default 1, sequential). The results are the same
   * as with 1 (each node still runs on `numThreads` intra-op threads); it pays off only where a
   * core would otherwise idle during the network calls (`docs/performance.md`). Ignored by the
   * other providers.
   */
  interOpThreads?: number;
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
/**
 * The default file names inside a prior directory.
 *
 * @example
 * ```ts
 * import { PRIOR_FILES } from "@petrel/petrel";
 * const dir = "models/fdg_prior";
 * const bytes = await Deno.readFile(`${dir}/${PRIOR_FILES.denoiser}`); // denoiser.onnx
 * ```
 */
export const PRIOR_FILES = {
  denoiser: "denoiser.onnx",
  vjp: "vjp.onnx",
} as const;
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
 *
 * @example
 * ```ts
 * import { defaultContext, loadPrior } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * // wasm on a CPU adapter, webgpu on a real GPU; 1 ORT thread by default
 * const prior = await loadPrior("models/fdg_prior", { adapter: ctx.adapter });
 * console.log(prior.provider, prior.canFineTune); // e.g. "wasm" true
 * await prior.release();
 * ```
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

  let provider = await resolveProvider(options.provider, options.adapter);
  const threads = options.numThreads ?? 1;
  const interOp = options.interOpThreads ?? 1;
  if (!Number.isInteger(interOp) || interOp < 1) {
    throw new RangeError(`interOpThreads must be an integer ≥ 1, got ${interOp}`);
  }
  let loaded = await loadOrt(provider, threads, options.wasmBinary);
  let denoiserSession = await createSession(
    loaded.ort,
    provider,
    bytes.denoiser,
    label,
    loaded.threads,
    interOp,
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
  let vjpSession: OrtSession | null = null;
  if (vjpBytes) {
    try {
      vjpSession = await createSession(
        loaded.ort,
        provider,
        vjpBytes,
        vjpLabel,
        loaded.threads,
        interOp,
      );
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

/**
 * Reads the initial LoRA values shipped beside a model (`lora.init` in the metadata: a raw
 * float32 little-endian file concatenated in `lora.params` order, and optionally its
 * `petrel-tensors-v1` JSON index). Checks the value count and, when given, the SHA-256.
 *
 * @example
 * ```ts
 * import { parsePriorMetadata, readInitialParams, readOnnxHeader } from "@petrel/petrel";
 * const dir = "models/fdg_prior";
 * const meta = parsePriorMetadata(readOnnxHeader(await Deno.readFile(`${dir}/denoiser.onnx`)), dir);
 * const initial = await readInitialParams(dir, meta); // Map: "p.…" → Float32Array
 * initial.size; // 126: one entry per lora.params
 * ```
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
