/**
 * WebGPU context: adapter/device acquisition, device-resident arrays, cached pipelines and a
 * recorder that batches many dispatches into one command buffer (one submit per iteration).
 *
 * @module
 */

import { type ShaderName, SHADERS } from "../../shaders/mod.ts";

/** What petrel reports about the adapter it runs on (also written into provenance manifests). */
export interface AdapterReport {
  /** Human-readable adapter description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  description: string;
  vendor: string;
  architecture: string;
  /** True for software adapters (Mesa llvmpipe): petrel then prefers CPU-friendly paths. */
  isFallback: boolean;
  /** Limits petrel relies on; large problems are chunked to respect them. */
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupsPerDimension: number;
    minStorageBufferOffsetAlignment: number;
  };
}

/** Options for {@linkcode GpuContext.create}. */
export interface GpuContextOptions {
  /** Passed to `navigator.gpu.requestAdapter`. Default "high-performance". */
  powerPreference?: GPUPowerPreference;
}

/** Element types a {@linkcode GpuArray} can hold. */
export type DType = "f32" | "u32" | "i32";

/**
 * Thrown when WebGPU is unavailable or the device is lost; the message says what to install.
 *
 * @example
 * ```ts
 * import { defaultContext, GpuUnavailableError } from "@petrel/petrel";
 * try {
 *   const ctx = await defaultContext();
 *   console.log(ctx.adapter.description); // e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"
 * } catch (e) {
 *   if (!(e instanceof GpuUnavailableError)) throw e;
 *   console.error(e.message); // says which packages to install
 * }
 * ```
 */
export class GpuUnavailableError extends Error {
  override name = "GpuUnavailableError";
}

const NO_ADAPTER_HELP = "No WebGPU adapter was found. On a machine without a GPU petrel runs on " +
  "Mesa's llvmpipe: install it with `apt-get install libegl-mesa0 libgl1-mesa-dri` (Debian/Ubuntu). " +
  "On an NVIDIA GPU install the Vulkan loader (libvulkan1) and the NVIDIA driver's Vulkan ICD.";

/**
 * Workgroup size used by all 1-D kernels in `shaders/` (keep in sync with the WGSL).
 *
 * @example
 * ```ts
 * import { WORKGROUP_SIZE } from "@petrel/petrel";
 * // workgroups of a 1-D dispatch over a 128 × 128 image (KernelRecorder.dispatch1d does this)
 * const groups = Math.ceil((128 * 128) / WORKGROUP_SIZE); // 256
 * ```
 */
export const WORKGROUP_SIZE = 64;

/**
 * A typed array living in a GPU storage buffer. Data stays on the device until
 * {@linkcode GpuArray.read}. Allocate with {@linkcode GpuContext.array}.
 *
 * @example
 * ```ts
 * import { defaultContext } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const x = ctx.array([128, 128, 1]); // zero-filled f32 image, shape fastest axis first
 * x.write(new Float32Array(x.length).fill(1));
 * const host = await x.read(); // Float32Array(16384), one submit + map
 * x.destroy();
 * ```
 */
export class GpuArray {
  /** Number of elements. */
  readonly length: number;
  #destroyed = false;

  constructor(
    readonly ctx: GpuContext,
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType = "f32",
  ) {
    this.length = shape.reduce((a, b) => a * b, 1);
  }

  /** Size in bytes of the payload (the buffer may be padded). */
  get byteLength(): number {
    return this.length * 4;
  }

  /** Copies the array back to the host (one submit + map). */
  async read(): Promise<Float32Array> {
    return new Float32Array(await this.ctx.readBytes(this.buffer, this.byteLength));
  }

  /** Copies the raw 32-bit words back to the host. */
  async readU32(): Promise<Uint32Array> {
    return new Uint32Array(await this.ctx.readBytes(this.buffer, this.byteLength));
  }

  /** Overwrites the contents from host data of the same length. */
  write(data: Float32Array | Uint32Array | Int32Array): void {
    if (data.length !== this.length) {
      throw new RangeError(
        `GpuArray.write: got ${data.length} elements, expected ${this.length} (shape ${
          JSON.stringify(this.shape)
        })`,
      );
    }
    this.ctx.device.queue.writeBuffer(
      this.buffer,
      0,
      data.buffer as ArrayBuffer,
      data.byteOffset,
      data.byteLength,
    );
  }

  /** Frees the device memory. Using the array afterwards is an error. */
  destroy(): void {
    if (!this.#destroyed) this.buffer.destroy();
    this.#destroyed = true;
  }
}

/** A buffer bound with an offset (for chunked dispatches over large arrays). */
export interface BufferSlice {
  buffer: GPUBuffer;
  offset?: number;
  size?: number;
}

/** Anything that can be bound as a storage or uniform resource. */
export type Bindable = GPUBuffer | GpuArray | BufferSlice;

function toBinding(b: Bindable): GPUBufferBinding {
  if (b instanceof GpuArray) return { buffer: b.buffer };
  if ("buffer" in b && !(b instanceof GPUBuffer)) {
    return { buffer: b.buffer, offset: b.offset ?? 0, size: b.size };
  }
  return { buffer: b as GPUBuffer };
}

/**
 * Records compute dispatches into one command encoder; {@linkcode KernelRecorder.submit} sends
 * them all at once. Dispatches run in recording order (WebGPU orders storage accesses between
 * dispatches), so a whole reconstruction iteration is one submit.
 *
 * @example
 * ```ts
 * import { defaultContext, fill, scale } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const x = ctx.array([4]);
 * const y = ctx.array([4]);
 * const rec = ctx.record();
 * fill(rec, x, 1);
 * scale(rec, y, x, 3); // sees the fill: dispatches run in recording order
 * rec.submit(); // one command buffer for both
 * console.log(await y.read()); // Float32Array [3, 3, 3, 3]
 * ```
 */
export class KernelRecorder {
  readonly encoder: GPUCommandEncoder;
  #pass: GPUComputePassEncoder | null = null;
  #submitted = false;
  #temps: GpuArray[] = [];
  /** Number of dispatches recorded so far (useful in benchmarks and tests). */
  dispatches = 0;

  constructor(readonly ctx: GpuContext) {
    this.encoder = ctx.device.createCommandEncoder();
  }

  #computePass(): GPUComputePassEncoder {
    if (!this.#pass) this.#pass = this.encoder.beginComputePass();
    return this.#pass;
  }

  #endPass(): void {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
  }

  /**
   * Records one dispatch of `entry` from shader family `shader` with the given bindings
   * (binding index = position in the array, group 0).
   */
  dispatch(
    shader: ShaderName,
    entry: string,
    bindings: readonly (Bindable | null)[],
    workgroups: readonly [number, number?, number?],
  ): void {
    const [x, y = 1, z = 1] = workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const max = this.ctx.adapter.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) {
      throw new RangeError(
        `dispatch ${shader}.${entry}: ${x}×${y}×${z} workgroups exceeds the adapter limit ${max} per dimension; use dispatch1d for large 1-D problems`,
      );
    }
    const pipeline = this.ctx.pipeline(shader, entry);
    const bindGroup = this.ctx.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: bindings.flatMap((b, i) => b ? [{ binding: i, resource: toBinding(b) }] : []),
    });
    const pass = this.#computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.dispatches++;
  }

  /**
   * Dispatches a 1-D problem of `n` invocations (workgroup size {@linkcode WORKGROUP_SIZE}),
   * folding the workgroup count into two dimensions when it exceeds the per-dimension limit.
   * Kernels reconstruct the linear index as `gid.x + gid.y * num_workgroups.x * 64`.
   */
  dispatch1d(
    shader: ShaderName,
    entry: string,
    bindings: readonly (Bindable | null)[],
    n: number,
  ): void {
    const groups = Math.ceil(n / WORKGROUP_SIZE);
    const max = this.ctx.adapter.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= max) this.dispatch(shader, entry, bindings, [groups]);
    else {
      const gy = Math.ceil(groups / max);
      this.dispatch(shader, entry, bindings, [Math.ceil(groups / gy), gy]);
    }
  }

  /** Records a buffer-to-buffer copy. */
  copy(src: GpuArray | GPUBuffer, dst: GpuArray | GPUBuffer, bytes?: number): void {
    this.#endPass();
    const s = src instanceof GpuArray ? src.buffer : src;
    const d = dst instanceof GpuArray ? dst.buffer : dst;
    const size = bytes ?? (src instanceof GpuArray ? src.byteLength : s.size);
    this.encoder.copyBufferToBuffer(s, 0, d, 0, size);
  }

  /** Records a copy of `bytes` bytes between buffers at the given offsets (multiples of 4). */
  copyRange(
    src: GPUBuffer,
    srcOffset: number,
    dst: GPUBuffer,
    dstOffset: number,
    bytes: number,
  ): void {
    this.#endPass();
    this.encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /** Records a zero fill of a whole buffer. */
  clear(buf: GpuArray | GPUBuffer): void {
    this.#endPass();
    this.encoder.clearBuffer(buf instanceof GpuArray ? buf.buffer : buf);
  }

  /** A scratch array that lives until the work of this recorder has finished on the device. */
  temp(shape: readonly number[]): GpuArray {
    const a = this.ctx.array(shape);
    this.#temps.push(a);
    return a;
  }

  /** Finishes and submits the command buffer. A recorder can be submitted once. */
  submit(): void {
    if (this.#submitted) throw new Error("KernelRecorder.submit: already submitted");
    this.#endPass();
    this.ctx.device.queue.submit([this.encoder.finish()]);
    this.#submitted = true;
    if (this.#temps.length) {
      const temps = this.#temps;
      this.#temps = [];
      this.ctx.device.queue.onSubmittedWorkDone().then(() => temps.forEach((t) => t.destroy()));
    }
  }
}

/**
 * The WebGPU device plus the caches petrel keeps on it.
 *
 * @example
 * ```ts
 * import { defaultContext, scale } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const a = ctx.array([3], Float32Array.of(1, 2, 3));
 * const b = ctx.array([3]);
 * ctx.run((rec) => scale(rec, b, a, 2)); // one submit for everything recorded
 * console.log(await b.read()); // [2, 4, 6]
 * ```
 */
export class GpuContext {
  #pipelines = new Map<string, GPUComputePipeline>();
  #modules = new Map<string, GPUShaderModule>();
  #uniforms = new Map<string, GPUBuffer>();
  #lost: string | null = null;
  #errors: string[] = [];

  private constructor(readonly device: GPUDevice, readonly adapter: AdapterReport) {
    device.lost.then((info) => {
      this.#lost = `${info.reason}: ${info.message}`;
    });
    // Validation errors are otherwise silent: keep them and raise at the next read-back.
    device.addEventListener("uncapturederror", (ev) => {
      this.#errors.push((ev as GPUUncapturedErrorEvent).error.message);
    });
  }

  /** Throws if WebGPU reported a validation or out-of-memory error since the last check. */
  checkErrors(): void {
    if (this.#errors.length) {
      const msgs = this.#errors.splice(0);
      throw new Error(`WebGPU reported ${msgs.length} error(s): ${msgs.slice(0, 3).join(" | ")}`);
    }
  }

  /** Acquires an adapter and device. Throws {@linkcode GpuUnavailableError} with install advice. */
  static async create(options: GpuContextOptions = {}): Promise<GpuContext> {
    if (typeof navigator === "undefined" || !("gpu" in navigator) || !navigator.gpu) {
      throw new GpuUnavailableError(`navigator.gpu is missing in this runtime. ${NO_ADAPTER_HELP}`);
    }
    const adapter = await navigator.gpu.requestAdapter({
      powerPreference: options.powerPreference ?? "high-performance",
    });
    if (!adapter) throw new GpuUnavailableError(NO_ADAPTER_HELP);
    const l = adapter.limits;
    const device = await adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxStorageBuffersPerShaderStage: Math.min(l.maxStorageBuffersPerShaderStage, 10),
      },
    });
    const info = adapter.info;
    const report: AdapterReport = {
      description: info.description || info.device || "unknown adapter",
      vendor: info.vendor,
      architecture: info.architecture,
      // deno-lint-ignore no-explicit-any
      isFallback: Boolean((info as any).isFallbackAdapter ?? (adapter as any).isFallbackAdapter),
      limits: {
        maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
        maxBufferSize: device.limits.maxBufferSize,
        maxComputeWorkgroupsPerDimension: device.limits.maxComputeWorkgroupsPerDimension,
        minStorageBufferOffsetAlignment: device.limits.minStorageBufferOffsetAlignment,
      },
    };
    return new GpuContext(device, report);
  }

  #checkAlive(): void {
    if (this.#lost) throw new GpuUnavailableError(`the WebGPU device was lost (${this.#lost})`);
  }

  /** A compute pipeline for `entry` in shader family `shader`, compiled once and cached. */
  pipeline(shader: ShaderName, entry: string): GPUComputePipeline {
    const key = `${shader}:${entry}`;
    let p = this.#pipelines.get(key);
    if (!p) {
      this.#checkAlive();
      let module = this.#modules.get(shader);
      if (!module) {
        module = this.device.createShaderModule({ label: shader, code: SHADERS[shader] });
        this.#modules.set(shader, module);
      }
      p = this.device.createComputePipeline({
        label: key,
        layout: "auto",
        compute: { module, entryPoint: entry },
      });
      this.#pipelines.set(key, p);
    }
    return p;
  }

  /** Allocates a device array of `shape`, zero-filled or initialised from `data`. */
  array(shape: readonly number[], data?: ArrayLike<number>, dtype: DType = "f32"): GpuArray {
    this.#checkAlive();
    for (const s of shape) {
      if (!Number.isInteger(s) || s < 0) {
        throw new RangeError(
          `array shape must be non-negative integers, got ${JSON.stringify(shape)}`,
        );
      }
    }
    const n = shape.reduce((a, b) => a * b, 1);
    const bytes = Math.max(16, Math.ceil((n * 4) / 16) * 16);
    if (bytes > this.adapter.limits.maxBufferSize) {
      throw new RangeError(
        `array of ${n} elements (${bytes} bytes) exceeds the adapter's maxBufferSize ${this.adapter.limits.maxBufferSize}`,
      );
    }
    const buffer = this.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    const arr = new GpuArray(this, buffer, [...shape], dtype);
    if (data) {
      if (data.length !== n) {
        buffer.destroy();
        throw new RangeError(
          `array data has ${data.length} elements, shape ${JSON.stringify(shape)} needs ${n}`,
        );
      }
      const typed = dtype === "f32"
        ? (data instanceof Float32Array ? data : Float32Array.from(data))
        : dtype === "u32"
        ? (data instanceof Uint32Array ? data : Uint32Array.from(data))
        : (data instanceof Int32Array ? data : Int32Array.from(data));
      arr.write(typed);
    }
    return arr;
  }

  /**
   * A uniform buffer holding `words` (32-bit each; numbers are written as f32 unless given as a
   * typed array). Buffers are cached by content because a queue write before a submit would
   * otherwise overwrite parameters that earlier recorded dispatches still need.
   */
  uniform(words: Uint32Array | Float32Array | Int32Array): GPUBuffer {
    const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
    const key = Array.from(bytes).join(",");
    let buf = this.#uniforms.get(key);
    if (!buf) {
      const size = Math.max(16, Math.ceil(bytes.byteLength / 16) * 16);
      buf = this.device.createBuffer({
        size,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      const padded = new Uint8Array(size);
      padded.set(bytes);
      this.device.queue.writeBuffer(buf, 0, padded);
      if (this.#uniforms.size > 4096) this.#uniforms.clear(); // bounded; old buffers are GC'd
      this.#uniforms.set(key, buf);
    }
    return buf;
  }

  /** A new recorder; call `submit()` when the batch is complete. */
  record(): KernelRecorder {
    this.#checkAlive();
    return new KernelRecorder(this);
  }

  /** Records with `fn` and submits once. */
  run(fn: (rec: KernelRecorder) => void): void {
    const rec = this.record();
    fn(rec);
    rec.submit();
  }

  /** Copies `bytes` from a storage buffer to the host (one submit and a map). */
  async readBytes(src: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    this.#checkAlive();
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const staging = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(src, 0, staging, 0, size);
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const out = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    staging.destroy();
    this.checkErrors();
    return out;
  }

  /** Waits until all submitted work has finished (for timing). */
  async finish(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    this.checkErrors();
  }

  /** Releases the device. */
  destroy(): void {
    for (const b of this.#uniforms.values()) b.destroy();
    this.#uniforms.clear();
    this.device.destroy();
  }
}

let shared: Promise<GpuContext> | null = null;

/**
 * The process-wide default context (created on first use). Recipes and tests share it so that
 * pipelines are compiled once.
 *
 * @example
 * ```ts
 * import { defaultContext } from "@petrel/petrel";
 * const ctx = await defaultContext(); // the shared WebGPU device (throws GpuUnavailableError without one)
 * const x = ctx.array([4], Float32Array.of(1, 2, 3, 4));
 * console.log(await x.read());
 * ```
 */
export function defaultContext(): Promise<GpuContext> {
  if (!shared) {
    shared = GpuContext.create();
    shared.catch(() => {
      shared = null;
    });
  }
  return shared;
}
