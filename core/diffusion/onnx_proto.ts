/**
 * A minimal reader of the ONNX `ModelProto` protobuf: the `metadata_props` entries and the
 * graph's input/output names, element types and shapes.
 *
 * Why hand-written: onnxruntime-web exposes the input/output names and shapes of a session but
 * not the model's `metadata_props`, where the prior's schedule, scaling and LoRA layout live, and
 * it only tells us what is wrong after a multi-second session creation. Reading the handful of
 * fields we need takes a 60-line varint/length-delimited walker, whereas a full protobuf library
 * with the ONNX schema would be a large dependency for six fields. Unknown fields and the (large)
 * node and initializer payloads are skipped without being decoded.
 *
 * Field numbers (onnx/onnx.proto3): ModelProto {ir_version 1, producer_name 2, graph 7,
 * metadata_props 14}; StringStringEntryProto {key 1, value 2}; GraphProto {initializer 5,
 * input 11, output 12}; TensorProto {name 8}; ValueInfoProto {name 1, type 2};
 * TypeProto {tensor_type 1}; TypeProto.Tensor {elem_type 1, shape 2};
 * TensorShapeProto {dim 1}; Dimension {dim_value 1, dim_param 2}.
 *
 * @module
 */

/** One graph input or output. `shape` entries are numbers or symbolic names (e.g. "B"). */
export interface OnnxValueInfo {
  name: string;
  /** ONNX TensorProto.DataType (1 = float32). */
  elemType: number;
  shape: Array<number | string> | null;
}

/** What {@linkcode readOnnxHeader} extracts from a model. */
export interface OnnxHeader {
  irVersion: number;
  producerName: string;
  /** `metadata_props` as key → value. */
  metadata: Map<string, string>;
  /** Graph inputs that are not initializers, in order. */
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
}

/**
 * Thrown when the bytes are not a well-formed ONNX model.
 *
 * @example
 * ```ts
 * import { OnnxFormatError, readOnnxHeader } from "@petrel/petrel";
 * try {
 *   readOnnxHeader(new TextEncoder().encode("not a model"));
 * } catch (e) {
 *   if (!(e instanceof OnnxFormatError)) throw e;
 *   console.error(e.message);
 * }
 * ```
 */
export class OnnxFormatError extends Error {
  override name = "OnnxFormatError";
}

const decoder = new TextDecoder();

class Reader {
  pos: number;
  constructor(readonly buf: Uint8Array, start = 0, readonly end = buf.length) {
    this.pos = start;
  }
  done(): boolean {
    return this.pos >= this.end;
  }
  varint(): number {
    // up to 10 bytes; values beyond 2^53 lose precision (never the case for the fields we read)
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new OnnxFormatError("truncated varint in ONNX protobuf");
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new OnnxFormatError("malformed varint in ONNX protobuf");
  }
  /** Reads a tag; returns [field, wireType]. */
  tag(): [number, number] {
    const t = this.varint();
    return [Math.floor(t / 8), t & 7];
  }
  bytes(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    if (start + len > this.end) throw new OnnxFormatError("truncated field in ONNX protobuf");
    this.pos += len;
    return [start, start + len];
  }
  string(): string {
    const [a, b] = this.bytes();
    return decoder.decode(this.buf.subarray(a, b));
  }
  sub(): Reader {
    const [a, b] = this.bytes();
    return new Reader(this.buf, a, b);
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new OnnxFormatError(`unsupported protobuf wire type ${wire} in ONNX model`);
    if (this.pos > this.end) throw new OnnxFormatError("truncated field in ONNX protobuf");
  }
}

function readValueInfo(r: Reader): OnnxValueInfo {
  const info: OnnxValueInfo = { name: "", elemType: 0, shape: null };
  while (!r.done()) {
    const [f, w] = r.tag();
    if (f === 1 && w === 2) info.name = r.string();
    else if (f === 2 && w === 2) {
      const type = r.sub();
      while (!type.done()) {
        const [tf, tw] = type.tag();
        if (tf === 1 && tw === 2) {
          const tensor = type.sub();
          while (!tensor.done()) {
            const [ef, ew] = tensor.tag();
            if (ef === 1 && ew === 0) info.elemType = tensor.varint();
            else if (ef === 2 && ew === 2) {
              info.shape = [];
              const shape = tensor.sub();
              while (!shape.done()) {
                const [sf, sw] = shape.tag();
                if (sf === 1 && sw === 2) {
                  const dim = shape.sub();
                  let d: number | string = "?";
                  while (!dim.done()) {
                    const [df, dw] = dim.tag();
                    if (df === 1 && dw === 0) d = dim.varint();
                    else if (df === 2 && dw === 2) d = dim.string();
                    else dim.skip(dw);
                  }
                  info.shape.push(d);
                } else shape.skip(sw);
              }
            } else tensor.skip(ew);
          }
        } else type.skip(tw);
      }
    } else r.skip(w);
  }
  return info;
}

/**
 * Reads the metadata and graph signature of an ONNX model without decoding its weights.
 *
 * @example
 * ```ts
 * import { readOnnxHeader } from "@petrel/petrel";
 * const header = readOnnxHeader(await Deno.readFile("models/fdg_prior/denoiser.onnx"));
 * header.inputs[0]; // { name: "x_t", elemType: 1, shape: ["B", 3, "H", "W"] }
 * header.metadata.has("petrel"); // true: the model card
 * ```
 */
export function readOnnxHeader(bytes: Uint8Array): OnnxHeader {
  const header: OnnxHeader = {
    irVersion: 0,
    producerName: "",
    metadata: new Map(),
    inputs: [],
    outputs: [],
  };
  const r = new Reader(bytes);
  const initializers = new Set<string>();
  let sawGraph = false;
  while (!r.done()) {
    const [f, w] = r.tag();
    if (f === 1 && w === 0) header.irVersion = r.varint();
    else if (f === 2 && w === 2) header.producerName = r.string();
    else if (f === 14 && w === 2) {
      const e = r.sub();
      let key = "";
      let value = "";
      while (!e.done()) {
        const [ef, ew] = e.tag();
        if (ef === 1 && ew === 2) key = e.string();
        else if (ef === 2 && ew === 2) value = e.string();
        else e.skip(ew);
      }
      header.metadata.set(key, value);
    } else if (f === 7 && w === 2) {
      sawGraph = true;
      const g = r.sub();
      while (!g.done()) {
        const [gf, gw] = g.tag();
        if (gf === 11 && gw === 2) header.inputs.push(readValueInfo(g.sub()));
        else if (gf === 12 && gw === 2) header.outputs.push(readValueInfo(g.sub()));
        else if (gf === 5 && gw === 2) {
          const t = g.sub();
          while (!t.done()) {
            const [tf, tw] = t.tag();
            if (tf === 8 && tw === 2) initializers.add(t.string());
            else t.skip(tw);
          }
        } else g.skip(gw);
      }
    } else r.skip(w);
  }
  if (!sawGraph || header.irVersion === 0) {
    throw new OnnxFormatError(
      "not an ONNX model: no graph or IR version found (expected a serialized onnx.ModelProto)",
    );
  }
  // IR < 4 lists initializers among the inputs as well; they are not feeds
  header.inputs = header.inputs.filter((i) => !initializers.has(i.name));
  return header;
}

function varintBytes(n: number): number[] {
  const out: number[] = [];
  while (n >= 128) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function lengthDelimited(field: number, payload: Uint8Array): Uint8Array {
  const head = [...varintBytes(field * 8 + 2), ...varintBytes(payload.length)];
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

/**
 * Returns a copy of an ONNX model whose `metadata_props` are replaced by `entries` (the rest
 * of the bytes unchanged). Used to stamp or repair metadata, and by tests to make bad models.
 *
 * @example
 * ```ts
 * import { readOnnxHeader, withOnnxMetadata } from "@petrel/petrel";
 * const bytes = await Deno.readFile("models/fdg_prior/denoiser.onnx");
 * const card = readOnnxHeader(bytes).metadata.get("petrel")!;
 * const stamped = withOnnxMetadata(bytes, new Map([["petrel", card], ["note", "retrained 2026"]]));
 * readOnnxHeader(stamped).metadata.get("note"); // "retrained 2026"
 * ```
 */
export function withOnnxMetadata(
  bytes: Uint8Array,
  entries: ReadonlyMap<string, string>,
): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  const r = new Reader(bytes);
  while (!r.done()) {
    const start = r.pos;
    const [f, w] = r.tag();
    r.skip(w);
    if (f !== 14) parts.push(bytes.subarray(start, r.pos));
  }
  for (const [k, v] of entries) {
    const kb = lengthDelimited(1, enc.encode(k));
    const vb = lengthDelimited(2, enc.encode(v));
    const entry = new Uint8Array(kb.length + vb.length);
    entry.set(kb);
    entry.set(vb, kb.length);
    parts.push(lengthDelimited(14, entry));
  }
  const total = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
