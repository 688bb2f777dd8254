/**
 * The adaptable parameters of a score prior (LoRA down/up factors and biases) as named
 * Float32Arrays in the graph's input order, with their initial values kept for {@linkcode
 * LoraState.reset}.
 *
 * @module
 */

/** Name and shape of one adaptable parameter (shape in the graph's order, as in ONNX/PyTorch). */
export interface ParamSpec {
  name: string;
  shape: readonly number[];
}

/**
 * Number of elements of a shape.
 *
 * @example
 * ```ts
 * import { shapeSize } from "@petrel/petrel";
 * shapeSize([4, 24, 3, 3]); // 864: a rank-4 LoRA down factor of a 3×3 conv with 24 inputs
 * shapeSize([]); // 1 (a scalar)
 * ```
 */
export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * A set of named float32 parameters. `version` increases on every in-place change made through
 * this class (or {@linkcode LoraState.touch}), so a runtime can cache device copies.
 *
 * @example
 * ```ts
 * import { loadPrior } from "@petrel/petrel";
 * const prior = await loadPrior("models/fdg_prior");
 * const params = prior.createParams(); // a LoraState; LoRA up-factors 0: the base model
 * params.size; // 56472 scalars in 126 tensors
 * const saved = params.clone(); // carry or restore adapters between stacks
 * params.reset(); // back to the base model
 * ```
 */
export class LoraState {
  readonly specs: readonly ParamSpec[];
  readonly #values: Map<string, Float32Array>;
  readonly #initial: Map<string, Float32Array>;
  #version = 0;

  /**
   * Creates the state from specs and initial values (copied); a missing value starts at zero.
   * Throws if a value has the wrong length or a name is unknown.
   */
  constructor(specs: readonly ParamSpec[], initial: ReadonlyMap<string, Float32Array> = new Map()) {
    const names = new Set<string>();
    for (const s of specs) {
      if (names.has(s.name)) throw new Error(`duplicate LoRA parameter name "${s.name}"`);
      names.add(s.name);
    }
    for (const name of initial.keys()) {
      if (!names.has(name)) {
        throw new Error(
          `initial value given for "${name}", which is not an adaptable parameter of the model (expected one of ${specs.length} names such as "${
            specs[0]?.name ?? "?"
          }")`,
        );
      }
    }
    this.specs = specs.map((s) => ({ name: s.name, shape: [...s.shape] }));
    this.#values = new Map();
    this.#initial = new Map();
    for (const s of this.specs) {
      const n = shapeSize(s.shape);
      const init = initial.get(s.name);
      if (init && init.length !== n) {
        throw new RangeError(
          `initial value of "${s.name}" has ${init.length} elements, expected ${n} (shape ${
            JSON.stringify(s.shape)
          })`,
        );
      }
      const v = init ? Float32Array.from(init) : new Float32Array(n);
      this.#initial.set(s.name, Float32Array.from(v));
      this.#values.set(s.name, v);
    }
  }

  /** Parameter names in graph input order. */
  get names(): string[] {
    return this.specs.map((s) => s.name);
  }

  /** Total number of scalar parameters. */
  get size(): number {
    let n = 0;
    for (const v of this.#values.values()) n += v.length;
    return n;
  }

  /** Increases on every change; runtimes use it to know when device copies are stale. */
  get version(): number {
    return this.#version;
  }

  /** Marks the values as changed after writing into {@linkcode LoraState.get} arrays directly. */
  touch(): void {
    this.#version++;
  }

  /** The live values of one parameter (writing into it requires a {@linkcode LoraState.touch}). */
  get(name: string): Float32Array {
    const v = this.#values.get(name);
    if (!v) {
      throw new Error(
        `unknown LoRA parameter "${name}" (expected one of: ${this.names.slice(0, 5).join(", ")}${
          this.specs.length > 5 ? ", …" : ""
        })`,
      );
    }
    return v;
  }

  /** Overwrites one parameter's values. */
  set(name: string, values: ArrayLike<number>): void {
    const v = this.get(name);
    if (values.length !== v.length) {
      throw new RangeError(
        `value for "${name}" has ${values.length} elements, expected ${v.length}`,
      );
    }
    v.set(values);
    this.#version++;
  }

  /** `[name, values]` pairs in graph input order. */
  entries(): Array<[string, Float32Array]> {
    return this.specs.map((s) => [s.name, this.#values.get(s.name)!]);
  }

  /** Restores the initial values (up factors back to zero: the base model). */
  reset(): void {
    for (const [name, init] of this.#initial) this.#values.get(name)!.set(init);
    this.#version++;
  }

  /** An independent copy (same initial values, current values copied). */
  clone(): LoraState {
    const c = new LoraState(this.specs, this.#initial);
    for (const [name, v] of this.#values) c.#values.get(name)!.set(v);
    return c;
  }

  /** Copies the current values of `other` (same specs) into this state. */
  copyFrom(other: LoraState): void {
    for (const [name, v] of other.entries()) this.set(name, v);
  }

  /** A new state whose values are `this + scale · direction` (for finite differences). */
  plus(direction: LoraState | ReadonlyMap<string, Float32Array>, scale: number): LoraState {
    const c = this.clone();
    const get = (name: string): Float32Array | undefined =>
      direction instanceof LoraState ? direction.get(name) : direction.get(name);
    for (const [name, v] of c.#values) {
      const d = get(name);
      if (!d) continue;
      for (let i = 0; i < v.length; i++) v[i] += scale * d[i];
    }
    c.touch();
    return c;
  }

  /** All values concatenated in graph order (a new array). */
  flat(): Float32Array {
    const out = new Float32Array(this.size);
    let o = 0;
    for (const [, v] of this.entries()) {
      out.set(v, o);
      o += v.length;
    }
    return out;
  }
}
