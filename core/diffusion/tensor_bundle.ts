/**
 * `petrel-tensors-v1` bundles: a JSON index `{format, file, dtype: "float32", byte_order:
 * "little", count, tensors: [{name, shape, offset}]}` (offsets in float32 elements) beside a raw
 * little-endian float32 file. The prior's initial LoRA values and its PyTorch fixtures use it.
 *
 * @module
 */

import { z } from "zod";

/**
 * zod schema of a bundle index.
 *
 * @example
 * ```ts
 * import { TensorBundleIndexSchema } from "@petrel/petrel";
 * const index = TensorBundleIndexSchema.parse(JSON.parse(await Deno.readTextFile("models/fdg_prior/lora_init.json")));
 * index.count; // float32 values in lora_init.bin
 * ```
 */
export const TensorBundleIndexSchema = z.looseObject({
  format: z.literal("petrel-tensors-v1"),
  file: z.string().min(1),
  dtype: z.literal("float32"),
  byte_order: z.literal("little"),
  count: z.number().int().nonnegative(),
  tensors: z.array(z.object({
    name: z.string().min(1),
    shape: z.array(z.number().int().nonnegative()),
    offset: z.number().int().nonnegative(),
  })),
});

/** A validated bundle index. */
export type TensorBundleIndex = z.infer<typeof TensorBundleIndexSchema>;

/** One named tensor (row-major/C order, shape as stored). */
export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : path.slice(0, i);
}

/**
 * Decodes a bundle from its parsed JSON index and the raw bytes; checks the byte count and that
 * every tensor lies inside the data. `what` names the bundle in errors.
 *
 * @example
 * ```ts
 * import { decodeTensorBundle } from "@petrel/petrel";
 * const index = {
 *   format: "petrel-tensors-v1",
 *   file: "w.bin",
 *   dtype: "float32",
 *   byte_order: "little",
 *   count: 3,
 *   tensors: [{ name: "bias", shape: [3], offset: 0 }],
 * };
 * const raw = new Uint8Array(Float32Array.of(0.5, 1, 2).buffer); // little-endian hosts
 * decodeTensorBundle(index, raw, "w.json").get("bias"); // { shape: [3], data: Float32Array [0.5, 1, 2] }
 * ```
 */
export function decodeTensorBundle(
  indexJson: unknown,
  raw: Uint8Array,
  what: string,
): Map<string, NamedTensor> {
  const parsed = TensorBundleIndexSchema.safeParse(indexJson);
  if (!parsed.success) {
    throw new Error(
      `${what} is not a petrel-tensors-v1 index (${
        parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")
      }); expected {format: "petrel-tensors-v1", file, dtype: "float32", byte_order: "little", count, tensors: [{name, shape, offset}]}`,
    );
  }
  const index = parsed.data;
  if (raw.byteLength !== index.count * 4) {
    throw new Error(
      `${what}: ${index.file} has ${raw.byteLength} bytes, expected ${index.count} float32 values (${
        index.count * 4
      } bytes)`,
    );
  }
  // copy into an aligned little-endian view (DataView handles any host byte order and offset)
  const all = new Float32Array(index.count);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  for (let i = 0; i < index.count; i++) all[i] = view.getFloat32(4 * i, true);
  const out = new Map<string, NamedTensor>();
  for (const t of index.tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.offset + n > index.count) {
      throw new Error(
        `${what}: tensor "${t.name}" (offset ${t.offset}, ${n} values) runs past the ${index.count} values of ${index.file}`,
      );
    }
    out.set(t.name, { shape: t.shape, data: all.subarray(t.offset, t.offset + n) });
  }
  return out;
}

/**
 * Reads a bundle from its JSON index path (the data file is resolved beside it).
 *
 * @example
 * ```ts
 * import { readTensorBundle } from "@petrel/petrel";
 * const bundle = await readTensorBundle("models/fdg_prior/lora_init.json"); // reads lora_init.bin beside it
 * bundle.get("p.down.0.res.0.conv1.lora_down")?.shape; // [4, 24, 3, 3]
 * ```
 */
export async function readTensorBundle(indexPath: string): Promise<Map<string, NamedTensor>> {
  const json = JSON.parse(await Deno.readTextFile(indexPath));
  const file = typeof json?.file === "string" ? json.file : "";
  const raw = await Deno.readFile(`${dirOf(indexPath)}/${file}`);
  return decodeTensorBundle(json, raw, indexPath);
}
