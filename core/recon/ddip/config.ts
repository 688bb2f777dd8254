/**
 * The DDIP-HQS constants: the zod schema (the one source of defaults), the named presets and the
 * methods (see `docs/ddip.md`).
 *
 * @module
 */

import { z } from "zod";

/** zod schema of the DDIP-HQS constants; every default is the reference value of method.md. */
export const DdipConfigSchema = z.object({
  /** Start time of the reverse chain (exclusive upper bound; reference 200 of T = 1000). */
  startT: z.number().int().positive().default(200),
  /** Reverse steps, evenly strided from startT − 1 down to 0 (reference 200 = every t). */
  steps: z.number().int().positive().default(200),
  /** Fine-tuning iterations per reverse step (reference 2). */
  fineTuneIterations: z.number().int().min(0).default(2),
  /**
   * Fine-tune on every `fineTuneEvery`-th reverse step only (reference 1 = every step); a CPU
   * economy when the VJP graph is expensive. The LoRA weights carry over in between.
   */
  fineTuneEvery: z.number().int().positive().default(1),
  /** Penalised-EM iterations per x-step (reference 5). */
  emIterations: z.number().int().min(0).default(5),
  /** HQS coupling β on the prior's [0, 1] scale (reference 0.01). */
  beta: z.number().positive().finite().default(0.01),
  /** AdamW learning rate (reference 5e-4). */
  lr: z.number().positive().finite().default(5e-4),
  /** AdamW decoupled weight decay (PyTorch's AdamW default, 0.01). */
  weightDecay: z.number().min(0).finite().default(0.01),
  /** Global gradient-norm clip (reference 1.0). */
  clipNorm: z.number().positive().default(1.0),
  /** DDIM stochasticity η (reference 0.85). */
  eta: z.number().min(0).max(1).default(0.85),
  /** MLEM iterations of the initialisation (reference 20, from a uniform image). */
  initIterations: z.number().int().min(0).default(20),
  /**
   * Automatic intensity scale: the `scalePercentile`-th percentile of the MLEM initialisation
   * after a Gaussian filter of `scaleFilterFwhmMm` (in-plane), times `scaleHeadroom`, is mapped to
   * 1 on the prior's scale (the prior was trained on PET divided by its volume max). In the FDG
   * training stacks (241 stacks, BrainWeb 05–50) the filtered 99.5th percentile of a stack is 0.74
   * of the volume max (median; 10–90 %: 0.66–0.81), so 1/0.74 = 1.35 would put the data's
   * statistic where the training data's was; but the sampler's final `clip(x̂0, 0, 1)` then cuts
   * focal uptake above the normal brain (a ×2.3 lesion). Default 1.8, chosen on a validation
   * condition (BrainWeb 50, amyloid-negative, not a test subject): PSNR 32.82 / 33.00 / 31.65 dB
   * and lesion CRC 0.53 / 0.74 / 0.82 at 1.35 / 1.8 / 2.5.
   */
  scalePercentile: z.number().gt(0).max(100).default(99.5),
  scaleFilterFwhmMm: z.number().min(0).finite().default(4),
  scaleHeadroom: z.number().positive().finite().default(1.8),
  /** Seed of the start noise and the DDIM noise. */
  seed: z.number().int().default(0),
}).strict().refine((c) => c.steps <= c.startT, {
  message: "steps must be ≤ startT (one network evaluation per integer timestep at most)",
  path: ["steps"],
});

/** The constants as given (all optional). */
export type DdipConfigInput = z.input<typeof DdipConfigSchema>;
/** The resolved constants. */
export type DdipConfig = z.output<typeof DdipConfigSchema>;

/** The reference constants (method.md): 200 steps from t = 200, 2 × (5 EM + 1 AdamW) per step. */
export const DDIP_REFERENCE: DdipConfigInput = {};

/**
 * The faster CPU preset: the same start time and per-step work, but 25 strided reverse steps
 * (t = 199, 191, …, 0; 50 AdamW steps and 125 EM x-step iterations in all instead of 400 and
 * 2000), about 8× cheaper than the reference chain, with the learning rate raised to 2e-3 to
 * make up for 8× fewer AdamW steps. 2e-3 was chosen on a validation condition (BrainWeb 50,
 * amyloid-negative, 1·10⁵ counts/slice; not one of the test subjects 51–53): PSNR 31.33 / 32.82 /
 * 32.67 dB at lr 5e-4 / 2e-3 / 5e-3 (`docs/results.md`, "Tuning").
 */
export const DDIP_CPU_PRESET: DdipConfigInput = { steps: 25, lr: 2e-3 };

/** Validates DDIP constants; throws one readable error listing every problem. */
export function ddipConfig(input: DdipConfigInput = {}): DdipConfig {
  const r = DdipConfigSchema.safeParse(input);
  if (!r.success) {
    throw new RangeError(
      `invalid DDIP configuration: ${
        r.error.issues.map((i) => `${i.path.join(".") || "config"}: ${i.message}`).join("; ")
      } (see DdipConfigSchema for the expected fields)`,
    );
  }
  return r.data;
}

/** The diffusion-based methods this module runs. */
export type DdipMethod = "ddip-hqs" | "dds" | "ddip-nll";

/** The methods, for validation and listings. */
export const DDIP_METHODS: readonly DdipMethod[] = ["ddip-hqs", "dds", "ddip-nll"];
