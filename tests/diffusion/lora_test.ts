import { ok as assert, throws as assertThrows } from "node:assert/strict";
import { LoraState } from "../../core/diffusion/lora.ts";

const SPECS = [
  { name: "p.x.lora_down", shape: [2, 3] },
  { name: "p.x.lora_up", shape: [4, 2] },
  { name: "p.x.bias", shape: [4] },
];

Deno.test("LoRA state keeps initial values for reset, clones independently, tracks versions", () => {
  const down = Float32Array.of(1, 2, 3, 4, 5, 6);
  const s = new LoraState(SPECS, new Map([["p.x.lora_down", down]]));
  assert(s.size === 6 + 8 + 4);
  assert(s.names.join() === SPECS.map((p) => p.name).join());
  assert(s.get("p.x.lora_up").every((v) => v === 0), "missing initial values start at zero");
  down[0] = 99; // the state copied its initial values
  assert(s.get("p.x.lora_down")[0] === 1);
  const v0 = s.version;
  s.set("p.x.lora_up", new Float32Array(8).fill(0.5));
  assert(s.version > v0);
  const c = s.clone();
  c.get("p.x.bias")[0] = 7;
  assert(s.get("p.x.bias")[0] === 0, "clone is independent");
  assert(c.get("p.x.lora_up")[3] === 0.5, "clone copies current values");
  s.reset();
  assert(s.get("p.x.lora_up").every((v) => v === 0) && s.get("p.x.lora_down")[5] === 6);
  const moved = s.plus(new Map([["p.x.bias", Float32Array.of(1, 2, 3, 4)]]), -0.5);
  assert(moved.get("p.x.bias").join() === "-0.5,-1,-1.5,-2" && s.get("p.x.bias")[1] === 0);
  const flat = c.flat();
  assert(flat.length === 18 && flat[0] === 1 && flat[6] === 0.5 && flat[14] === 7);
});

Deno.test("LoRA state rejects unknown names and wrong sizes", () => {
  assertThrows(
    () => new LoraState(SPECS, new Map([["p.y", new Float32Array(1)]])),
    /"p.y", which is not an adaptable parameter/,
  );
  assertThrows(
    () => new LoraState(SPECS, new Map([["p.x.bias", new Float32Array(3)]])),
    /has 3 elements, expected 4/,
  );
  const s = new LoraState(SPECS);
  assertThrows(() => s.get("nope"), /unknown LoRA parameter "nope"/);
  assertThrows(() => s.set("p.x.bias", [1]), /expected 4/);
  assertThrows(() => new LoraState([SPECS[0], SPECS[0]]), /duplicate/);
});
