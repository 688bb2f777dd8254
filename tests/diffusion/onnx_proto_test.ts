import { ok as assert, throws as assertThrows } from "node:assert/strict";
import {
  OnnxFormatError,
  readOnnxHeader,
  withOnnxMetadata,
} from "../../core/diffusion/onnx_proto.ts";

// An independent protobuf writer for the handful of ONNX fields under test.
const enc = new TextEncoder();
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 128) {
    out.push((n % 128) | 128);
    n = Math.floor(n / 128);
  }
  return [...out, n];
}
function ld(field: number, payload: number[]): number[] {
  return [...varint(field * 8 + 2), ...varint(payload.length), ...payload];
}
function vi(field: number, n: number): number[] {
  return [...varint(field * 8), ...varint(n)];
}
function str(field: number, s: string): number[] {
  return ld(field, [...enc.encode(s)]);
}
function valueInfo(name: string, dims: Array<number | string>): number[] {
  const shape = dims.flatMap((d) => ld(1, typeof d === "number" ? vi(1, d) : str(2, d)));
  return [...str(1, name), ...ld(2, ld(1, [...vi(1, 1), ...ld(2, shape)]))];
}
function model(meta: Array<[string, string]>, irVersion = 8): Uint8Array {
  const graph = [
    ...ld(1, [...str(4, "Conv"), ...str(1, "x_t")]), // a node (skipped by the reader)
    ...ld(5, [...vi(1, 3), ...vi(2, 1), ...str(8, "W"), ...ld(9, [0, 0, 128, 63])]), // initializer
    ...ld(11, valueInfo("x_t", ["B", 3, "H", "W"])),
    ...ld(11, valueInfo("W", [3])), // IR < 4 style: the initializer is also listed as an input
    ...ld(11, valueInfo("p.a.lora_down", [4, 300])),
    ...ld(12, valueInfo("eps", ["B", 3, "H", "W"])),
  ];
  return Uint8Array.from([
    ...vi(1, irVersion),
    ...str(2, "petrel test"),
    ...ld(8, [...str(1, ""), ...vi(2, 14)]), // opset_import
    ...ld(7, graph),
    ...meta.flatMap(([k, v]) => ld(14, [...str(1, k), ...str(2, v)])),
  ]);
}

Deno.test("ONNX header reader finds metadata, inputs (minus initializers) and outputs", () => {
  const long = "x".repeat(1000); // multi-byte length varint
  const h = readOnnxHeader(model([["petrel", '{"a":1}'], ["other", long]]));
  assert(h.irVersion === 8 && h.producerName === "petrel test");
  assert(h.metadata.get("petrel") === '{"a":1}' && h.metadata.get("other") === long);
  assert(h.inputs.map((i) => i.name).join() === "x_t,p.a.lora_down");
  assert(JSON.stringify(h.inputs[0].shape) === '["B",3,"H","W"]');
  assert(JSON.stringify(h.inputs[1].shape) === "[4,300]" && h.inputs[1].elemType === 1);
  assert(h.outputs.length === 1 && h.outputs[0].name === "eps");
});

Deno.test("metadata replacement keeps the graph and swaps metadata_props", () => {
  const bytes = model([["petrel", "{}"], ["keep", "no"]]);
  const out = withOnnxMetadata(bytes, new Map([["petrel", '{"format":"x"}']]));
  const h = readOnnxHeader(out);
  assert(h.metadata.size === 1 && h.metadata.get("petrel") === '{"format":"x"}');
  assert(h.inputs.map((i) => i.name).join() === "x_t,p.a.lora_down");
  const none = readOnnxHeader(withOnnxMetadata(bytes, new Map()));
  assert(none.metadata.size === 0);
});

Deno.test("non-ONNX bytes give a format error", () => {
  assertThrows(() => readOnnxHeader(enc.encode("hello, not a model")), OnnxFormatError);
  assertThrows(() => readOnnxHeader(new Uint8Array([0x3a, 0x05, 1])), /truncated/);
  assertThrows(() => readOnnxHeader(new Uint8Array()), /not an ONNX model/);
});
