/**
 * The score prior at run time: {@linkcode ScorePrior}, the loaded `denoiser.onnx` (ε_θ) and, when
 * present, `vjp.onnx` (ε and the vector-Jacobian product with respect to the LoRA parameters).
 * Load one with `loadPrior` (`load.ts`); the execution provider is chosen in `provider.ts`.
 *
 * Tensors per provider:
 * - `wasm` and `native`: all tensors live in host memory (ORT copies the feeds into the wasm heap
 *   on every run; nothing stays "on a device" because the device is the CPU).
 * - `webgpu`: the LoRA parameters are uploaded once per change into GPU buffers on ORT's device
 *   and fed as `gpu-buffer` tensors; images (one 3-slice stack, ~200 KB) travel to and from the
 *   host per call because the sampler and the EM step consume them there. ORT uses its own
 *   GPUDevice, which is not petrel's `GpuContext` device (setting `ort.env.webgpu.device` had no
 *   effect in 1.30).
 *
 * @module
 */

import { DdpmSchedule } from "./schedule.ts";
import { LoraState, type ParamSpec } from "./lora.ts";
import type { OnnxHeader } from "./onnx_proto.ts";
import { gradOutputName, paramInputName, type PriorMetadata } from "./metadata.ts";
import type { Ort, OrtSession, OrtTensor } from "./ort.ts";
import type { PriorProvider } from "./provider.ts";

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

/** What `loadPrior` hands to the {@linkcode ScorePrior} constructor. */
export interface ScorePriorParts {
  ort: Ort;
  provider: PriorProvider;
  threads: number;
  providerNote: string;
  paramsOnDevice: boolean;
  meta: PriorMetadata;
  specs: ParamSpec[];
  initial: Map<string, Float32Array>;
  denoiser: OrtSession;
  vjp: OrtSession | null;
  vjpHeader: OnnxHeader | null;
  vjpNote: string;
  label: string;
}

/**
 * A loaded score prior: ε_θ(x_t, t, mr) and its VJP with respect to the LoRA parameters.
 *
 * @example
 * ```ts
 * import { loadPrior } from "@petrel/petrel";
 * const prior = await loadPrior("models/fdg_prior");
 * const params = prior.createParams(); // the base model
 * const n = 128 * 128 * 3; // one 3-slice stack, [nx, ny, 3]
 * const xt = new Float32Array(n); // x_t on the prior's [0, 1] scale (plus noise)
 * const mr = new Float32Array(n).fill(0.5); // the MR stack divided by its volume max
 * const eps = await prior.eps(xt, 199, mr, params); // ε_θ(x_t, t = 199, mr)
 * // ⟨gradEps, ∂ε/∂θ⟩ for every LoRA parameter (fine-tuning; the VJP graph is 128 × 128 × 3)
 * const { grads } = await prior.vjp(xt, 199, mr, params, new Float32Array(n).fill(1e-3));
 * await prior.release();
 * ```
 */
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
