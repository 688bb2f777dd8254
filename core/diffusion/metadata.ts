/**
 * The prior's model card inside the ONNX file: `metadata_props["petrel"]`, a JSON document
 * `{format: "petrel-prior-v1", schedule, prediction, channels, scaling, lora, training}` written
 * by `scripts/prior/onnx_export.py`, validated here with zod, and the graph signature that must
 * go with it.
 *
 * @module
 */

import { z } from "zod";
import { ScheduleSpecSchema } from "./schedule.ts";
import type { OnnxHeader, OnnxValueInfo } from "./onnx_proto.ts";

/**
 * The metadata key petrel's exporter writes.
 *
 * @example
 * ```ts
 * import { PETREL_METADATA_KEY, readOnnxHeader } from "@petrel/petrel";
 * const header = readOnnxHeader(await Deno.readFile("models/fdg_prior/denoiser.onnx"));
 * const card = JSON.parse(header.metadata.get(PETREL_METADATA_KEY)!); // the raw model card
 * ```
 */
export const PETREL_METADATA_KEY = "petrel";
/**
 * The only format version this runtime reads.
 *
 * @example
 * ```ts
 * import { parsePriorMetadata, PETREL_PRIOR_FORMAT, readOnnxHeader } from "@petrel/petrel";
 * const header = readOnnxHeader(await Deno.readFile("models/fdg_prior/denoiser.onnx"));
 * parsePriorMetadata(header, "denoiser.onnx").format === PETREL_PRIOR_FORMAT; // true
 * ```
 */
export const PETREL_PRIOR_FORMAT = "petrel-prior-v1";

/**
 * zod schema of one adaptable parameter in the metadata.
 *
 * @example
 * ```ts
 * import { LoraParamSchema } from "@petrel/petrel";
 * LoraParamSchema.parse({ name: "p.down.0.res.0.conv1.lora_down", shape: [4, 24, 3, 3] });
 * ```
 */
export const LoraParamSchema = z.object({
  name: z.string().min(1),
  /** The VJP graph's output for this parameter (default `grad.<name without "p.">`). */
  grad: z.string().min(1).optional(),
  shape: z.array(z.number().int().positive()),
});

/**
 * zod schema of `lora.init`: where the initial parameter values are stored beside the model.
 *
 * @example
 * ```ts
 * import { LoraInitSchema } from "@petrel/petrel";
 * LoraInitSchema.parse({ file: "lora_init.bin", index: "lora_init.json", count: 56472 });
 * ```
 */
export const LoraInitSchema = z.looseObject({
  /** Raw float32 little-endian values, concatenated in `lora.params` order. */
  file: z.string().min(1),
  /** The `petrel-tensors-v1` JSON index of that file. */
  index: z.string().min(1).optional(),
  dtype: z.literal("float32").optional(),
  byte_order: z.literal("little").optional(),
  count: z.number().int().nonnegative().optional(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
});

/**
 * zod schema of the `petrel` metadata document (unknown extra keys are kept).
 *
 * @example
 * ```ts
 * import { PriorMetadataSchema } from "@petrel/petrel";
 * const meta = PriorMetadataSchema.parse({
 *   format: "petrel-prior-v1",
 *   schedule: { kind: "linear", T: 1000, beta_start: 1e-4, beta_end: 0.02 },
 *   prediction: "epsilon",
 *   channels: { pet: 3, mr: 3 },
 *   scaling: {},
 *   lora: { rank: 4, params: [{ name: "p.out.lora_down", shape: [4, 24, 3, 3] }] },
 *   training: { voxel_mm: 2.086 },
 * });
 * ```
 */
export const PriorMetadataSchema = z.looseObject({
  format: z.literal(PETREL_PRIOR_FORMAT),
  schedule: ScheduleSpecSchema,
  /** ε-prediction (the exporter writes "epsilon"). */
  prediction: z.enum(["epsilon", "eps"]),
  channels: z.looseObject({
    pet: z.number().int().positive(),
    mr: z.number().int().positive(),
  }),
  scaling: z.looseObject({}),
  architecture: z.looseObject({
    /** H and W must be multiples of this (2^(levels−1) for the U-Net). */
    spatial_multiple: z.number().int().positive().optional(),
  }).optional(),
  lora: z.looseObject({
    rank: z.number().int().positive(),
    params: z.array(LoraParamSchema).min(1),
    init: LoraInitSchema.optional(),
  }),
  training: z.looseObject({}),
});

/** The validated metadata document. */
export type PriorMetadata = z.infer<typeof PriorMetadataSchema>;

/**
 * Thrown when a model's metadata or graph signature is not what the runtime expects.
 *
 * @example
 * ```ts
 * import { loadPrior, PriorModelError } from "@petrel/petrel";
 * try {
 *   await loadPrior("models/no_such_prior");
 * } catch (e) {
 *   if (!(e instanceof PriorModelError)) throw e;
 *   console.error(e.message); // "no denoiser.onnx in models/no_such_prior (a prior directory holds …)"
 * }
 * ```
 */
export class PriorModelError extends Error {
  override name = "PriorModelError";
}

/**
 * The input names every denoiser graph starts with, in order.
 *
 * @example
 * ```ts
 * import { IMAGE_INPUTS, readOnnxHeader } from "@petrel/petrel";
 * const header = readOnnxHeader(await Deno.readFile("models/fdg_prior/denoiser.onnx"));
 * header.inputs.slice(0, 3).map((i) => i.name); // ["x_t", "t", "mr"], as IMAGE_INPUTS
 * IMAGE_INPUTS.length; // 3: the LoRA parameters follow
 * ```
 */
export const IMAGE_INPUTS = ["x_t", "t", "mr"] as const;

/**
 * The graph input name of an adaptable parameter: metadata names are used as given when they
 * already carry the `p.` prefix, otherwise `p.` is prepended (the exporter's convention).
 *
 * @example
 * ```ts
 * import { paramInputName } from "@petrel/petrel";
 * paramInputName("out.lora_up"); // "p.out.lora_up"
 * paramInputName("p.out.lora_up"); // "p.out.lora_up"
 * ```
 */
export function paramInputName(name: string): string {
  return name.startsWith("p.") ? name : `p.${name}`;
}

/**
 * The VJP graph's output name for the gradient of parameter input `p.<x>`: `grad.<x>`.
 *
 * @example
 * ```ts
 * import { gradOutputName } from "@petrel/petrel";
 * gradOutputName("p.out.lora_up"); // "grad.out.lora_up"
 * ```
 */
export function gradOutputName(inputName: string): string {
  return `grad.${inputName.startsWith("p.") ? inputName.slice(2) : inputName}`;
}

/**
 * Parses and validates the `petrel` metadata of a model; `what` names the file in errors.
 *
 * @example
 * ```ts
 * import { parsePriorMetadata, readOnnxHeader } from "@petrel/petrel";
 * const header = readOnnxHeader(await Deno.readFile("models/fdg_prior/denoiser.onnx"));
 * const meta = parsePriorMetadata(header, "models/fdg_prior/denoiser.onnx");
 * meta.channels; // { pet: 3, mr: 3 }
 * meta.schedule.T; // 1000
 * ```
 */
export function parsePriorMetadata(header: OnnxHeader, what: string): PriorMetadata {
  const raw = header.metadata.get(PETREL_METADATA_KEY);
  if (raw === undefined) {
    const keys = [...header.metadata.keys()];
    throw new PriorModelError(
      `${what} has no "${PETREL_METADATA_KEY}" entry in its ONNX metadata_props (found ${
        keys.length ? keys.map((k) => `"${k}"`).join(", ") : "none"
      }); expected the JSON model card {format: "${PETREL_PRIOR_FORMAT}", schedule, prediction, channels, scaling, lora, training} written by scripts/prior/onnx_export.py`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new PriorModelError(
      `${what}: the "${PETREL_METADATA_KEY}" metadata is not valid JSON (${
        (e as Error).message
      }); expected a JSON object with format "${PETREL_PRIOR_FORMAT}"`,
    );
  }
  const parsed = PriorMetadataSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`)
      .join("; ");
    throw new PriorModelError(
      `${what}: invalid "${PETREL_METADATA_KEY}" metadata (${problems}); expected {format: "${PETREL_PRIOR_FORMAT}", schedule: {kind: "linear", T, beta_start, beta_end}, prediction: "epsilon", channels: {pet, mr}, scaling, lora: {rank, params: [{name, shape}]}, training}`,
    );
  }
  return parsed.data;
}

function describe(v: OnnxValueInfo | undefined): string {
  if (!v) return "nothing";
  return `"${v.name}"${v.shape ? ` [${v.shape.join(", ")}]` : ""}`;
}

function sameShape(a: OnnxValueInfo["shape"], b: readonly number[]): boolean {
  if (!a) return true; // no static shape recorded: cannot check here, ORT will
  return a.length === b.length && a.every((d, i) => typeof d !== "number" || d === b[i]);
}

/**
 * Checks a graph signature against the metadata: inputs `x_t, t, mr, <params…>` (plus
 * `grad_eps` for the VJP graph), all float32, parameter shapes as declared; outputs `eps`
 * (plus `grad.<param>` for every parameter). Throws {@linkcode PriorModelError} naming the
 * first difference and what was expected.
 *
 * @example
 * ```ts
 * import { checkSignature, parsePriorMetadata, readOnnxHeader } from "@petrel/petrel";
 * const denoiser = readOnnxHeader(await Deno.readFile("models/fdg_prior/denoiser.onnx"));
 * const vjp = readOnnxHeader(await Deno.readFile("models/fdg_prior/vjp.onnx"));
 * const meta = parsePriorMetadata(denoiser, "denoiser.onnx");
 * checkSignature(denoiser, meta, "denoiser", "denoiser.onnx"); // passes
 * checkSignature(vjp, meta, "vjp", "vjp.onnx"); // passes: grad_eps input, grad.* outputs
 * ```
 */
export function checkSignature(
  header: OnnxHeader,
  meta: PriorMetadata,
  kind: "denoiser" | "vjp",
  what: string,
): void {
  const params = meta.lora.params.map((p) => ({
    ...p,
    input: paramInputName(p.name),
    gradOut: p.grad ?? gradOutputName(paramInputName(p.name)),
  }));
  const expectedInputs = [
    ...IMAGE_INPUTS,
    ...params.map((p) => p.input),
    ...(kind === "vjp" ? ["grad_eps"] : []),
  ];
  const expectedOutputs = [
    "eps",
    ...(kind === "vjp" ? params.map((p) => p.gradOut) : []),
  ];
  const summary = (names: string[]): string =>
    names.length > 6
      ? `${names.slice(0, 5).join(", ")}, … (${names.length} in all)`
      : names.join(", ");
  for (let i = 0; i < Math.max(expectedInputs.length, header.inputs.length); i++) {
    const got = header.inputs[i];
    const want = expectedInputs[i];
    if (!got || got.name !== want) {
      throw new PriorModelError(
        `${what}: graph input ${i} is ${describe(got)} but ${
          want ? `"${want}"` : "no further input"
        } was expected (a ${kind} graph takes inputs ${summary(expectedInputs)})`,
      );
    }
    if (got.elemType !== 1) {
      throw new PriorModelError(
        `${what}: graph input "${got.name}" has ONNX element type ${got.elemType}, expected 1 (float32)`,
      );
    }
  }
  for (const p of params) {
    const got = header.inputs.find((x) => x.name === p.input)!;
    if (!sameShape(got.shape, p.shape)) {
      throw new PriorModelError(
        `${what}: input "${p.input}" has shape [${
          got.shape!.join(", ")
        }] but the metadata declares [${p.shape.join(", ")}]`,
      );
    }
  }
  for (const [n, c] of [["x_t", meta.channels.pet], ["mr", meta.channels.mr]] as const) {
    const s = header.inputs.find((x) => x.name === n)!.shape;
    if (s && (s.length !== 4 || s[1] !== c)) {
      throw new PriorModelError(
        `${what}: input "${n}" has shape [${
          s.join(", ")
        }], expected [B, ${c}, H, W] (channels in the metadata)`,
      );
    }
  }
  const outNames = header.outputs.map((o) => o.name);
  for (const want of expectedOutputs) {
    if (!outNames.includes(want)) {
      throw new PriorModelError(
        `${what}: graph has no output "${want}" (found ${
          summary(outNames)
        }; a ${kind} graph outputs ${summary(expectedOutputs)})`,
      );
    }
  }
}
