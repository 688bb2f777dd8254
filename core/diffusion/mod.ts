/**
 * The score prior runtime: ONNX denoiser and VJP graphs in onnxruntime-web, LoRA state, AdamW,
 * the DDPM schedule and the DDS/DDIM sampler pieces used by DDIP-HQS.
 *
 * @example One fine-tuning iteration and one DDS step on a 3-slice stack `xt` with MR `mr`
 * ```ts
 * import { AdamW, ddimStep, loadPrior, noiseTo, Rng, tweedie, tweedieLossGrad } from "@petrel/petrel";
 * const prior = await loadPrior("models/fdg_prior"); // provider from the adapter
 * const params = prior.createParams(); // LoRA up = 0: the base model
 * const n = 128 * 128 * 3;
 * const mr = new Float32Array(n).fill(0.5); // MR stack / its volume max
 * const xHqs = new Float32Array(n).fill(0.3); // x-step result / scale
 * const t = 199;
 * const xt = noiseTo(xHqs, prior.schedule.alphaBar(t), new Rng(0));
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
export * from "./default_prior.ts";
export * from "./tensor_bundle.ts";
export * from "./grid.ts";
