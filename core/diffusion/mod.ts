/**
 * The score prior runtime: ONNX denoiser and VJP graphs in onnxruntime-web, LoRA state, AdamW,
 * the DDPM schedule and the DDS/DDIM sampler pieces used by DDIP-HQS.
 *
 * @example One fine-tuning iteration and one DDS step on a 3-slice stack `xt` with MR `mr`
 * ```ts
 * import { AdamW, ddimStep, loadPrior, tweedie, tweedieLossGrad } from "./mod.ts";
 * import { Rng } from "../random.ts";
 * const prior = await loadPrior("models/fdg_prior"); // provider from the adapter
 * const params = prior.createParams(); // LoRA up = 0: the base model
 * const ab = prior.schedule.alphaBar(t);
 * const x0 = tweedie(xt, await prior.eps(xt, t, mr, params), ab);
 * const { gradEps } = tweedieLossGrad(x0, xHqs, ab); // loss = mean‖x̂0 − x_hqs‖²
 * const { grads } = await prior.vjp(xt, t, mr, params, gradEps);
 * new AdamW({ lr: 5e-4, clipNorm: 1 }).step(params, grads);
 * const eps = await prior.eps(xt, t, mr, params);
 * const xPrev = ddimStep(tweedie(xt, eps, ab), eps, {
 *   alphaBarPrev: prior.schedule.alphaBar(t - 1), eta: 0.85, rng: new Rng(1),
 * });
 * ```
 *
 * @module
 */
export * from "./schedule.ts";
export * from "./lora.ts";
export * from "./adamw.ts";
export * from "./sampler.ts";
export * from "./onnx_proto.ts";
export * from "./metadata.ts";
export * from "./provider.ts";
export * from "./prior.ts";
export * from "./load.ts";
export * from "./tensor_bundle.ts";
export * from "./grid.ts";
