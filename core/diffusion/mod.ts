/**
 * The score prior runtime: ONNX denoiser and VJP graphs in onnxruntime-web, LoRA state, AdamW,
 * the DDPM schedule and the DDS/DDIM sampler pieces used by DDIP-HQS.
 *
 * @module
 */
export * from "./schedule.ts";
export * from "./lora.ts";
export * from "./adamw.ts";
export * from "./sampler.ts";
export * from "./onnx_proto.ts";
export * from "./metadata.ts";
export * from "./prior.ts";
export * from "./tensor_bundle.ts";
