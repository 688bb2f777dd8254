/**
 * The DDIP-HQS constants: the fields (zod), the library defaults (the one source of defaults), the
 * named presets and the methods. `docs/ddip.md` explains every field and how the defaults were
 * chosen.
 *
 * @module
 */

import { z } from "zod";

/** Every DDIP constant with its constraint (no defaults: see {@linkcode DDIP_DEFAULTS}). */
const FIELDS = {
  /** Start time of the reverse chain (exclusive upper bound; reference 200 of T = 1000). */
  startT: z.number().int().positive(),
  /** Reverse steps, evenly strided from startT − 1 down to 0 (paper 200 = every t). */
  steps: z.number().int().positive(),
  /** Fine-tuning iterations per reverse step (paper 2). */
  fineTuneIterations: z.number().int().min(0),
  /**
   * Fine-tune on every `fineTuneEvery`-th reverse step only (paper 1 = every step); a CPU
   * economy when the VJP graph is expensive. The LoRA weights carry over in between.
   */
  fineTuneEvery: z.number().int().positive(),
  /** Penalised-EM iterations per x-step (paper 5). */
  emIterations: z.number().int().min(0),
  /**
   * Each x-step iteration runs one update per ordered subset of the likelihood's forward model
   * (`PenalisedEmStep`'s `orderedSubsets`) instead of one over all data (paper: false). Only
   * changes anything when the caller's forward model has subsets (`docs/performance.md`).
   */
  xStepOrderedSubsets: z.boolean(),
  /** HQS coupling β on the prior's [0, 1] scale (paper 0.01). */
  beta: z.number().positive().finite(),
  /**
   * AdamW learning rate (paper 5e-4), or `"auto"`: `lrBudget` divided by the number of AdamW
   * steps of the chain, so that a longer chain does not drift further from the prior.
   */
  lr: z.union([z.number().positive().finite(), z.literal("auto")]),
  /** `lr × AdamW steps` of `lr: "auto"` (0.1: the validated 2e-3 × 50 of the 25-step chain). */
  lrBudget: z.number().positive().finite(),
  /** AdamW decoupled weight decay (PyTorch's AdamW default, 0.01). */
  weightDecay: z.number().min(0).finite(),
  /** Global gradient-norm clip (paper 1.0). */
  clipNorm: z.number().positive(),
  /** DDIM stochasticity η (paper 0.85). */
  eta: z.number().min(0).max(1),
  /** MLEM iterations of the initialisation (paper 20, from a uniform image). */
  initIterations: z.number().int().min(0),
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
  scalePercentile: z.number().gt(0).max(100),
  scaleFilterFwhmMm: z.number().min(0).finite(),
  scaleHeadroom: z.number().positive().finite(),
  /**
   * HQS coupling at the last reverse step: β goes geometrically from `beta` to `betaEnd` along
   * the chain (equal to `beta` by default: constant). A smaller value lets the late x-step targets
   * follow the data more than the prior.
   */
  betaEnd: z.number().positive().finite().optional(),
  /**
   * Data-consistency iterations after the chain: penalised-EM iterations with coupling
   * `finalBeta` towards the chain's output, started from it (0 = none, the paper).
   */
  finalEmIterations: z.number().int().min(0),
  /** Coupling of the final data-consistency iterations (→ 0: plain MLEM from the output). */
  finalBeta: z.number().positive().finite(),
  /**
   * Run the final data-consistency iterations over the ordered subsets of the likelihood's forward
   * model (one penalised-EM update per subset, `PenalisedEmStep`'s `orderedSubsets`), so that
   * `finalEmIterations` iterations move the image about as far as `finalEmIterations × subsets`
   * plain ones at the cost of `finalEmIterations` (default false: one update over all data per
   * iteration). Only changes anything when the model has subsets; independent of
   * `xStepOrderedSubsets` (the chain's x-steps).
   */
  finalOrderedSubsets: z.boolean(),
  /**
   * Where the final data-consistency iterations are kept: `"all"` (every voxel) or
   * `"disagreement"` (only where they change the chain's output coherently: the in-plane smoothed
   * change exceeds `disagreementThreshold` robust standard deviations; elsewhere the output is
   * kept). The lever of issue 15 for lesions the MR does not show (`residual.ts`, `docs/ddip.md`).
   */
  finalEmRegion: z.enum(["all", "disagreement"]),
  /** In-plane FWHM (mm) of the Gaussian applied to the final iterations' change (`"disagreement"`). */
  disagreementFwhmMm: z.number().min(0).finite(),
  /**
   * τ of `"disagreement"` in robust standard deviations of the smoothed change: its weight is
   * `clamp(|d| − τ, 0, 1)` (none up to τ σ, full from (τ + 1) σ).
   */
  disagreementThreshold: z.number().min(0).finite(),
  /**
   * Hysteresis of `"disagreement"` (0: off): a connected region of flagged voxels keeps its
   * weights only if its disagreement reaches this many robust standard deviations somewhere, so a
   * low `disagreementThreshold` can take the whole of a lesion without the scattered flags of the
   * EM noise (`restrictToDisagreement`'s `seedThreshold`).
   */
  disagreementSeedThreshold: z.number().min(0).finite(),
  /**
   * How `"disagreement"` takes the final iterations where flagged: `"replace"` (their image,
   * weighted) or `"smoothed-change"` (the chain's output plus their in-plane smoothed change,
   * weighted: the local mean of the data without the EM iterations' voxel noise).
   */
  disagreementBlend: z.enum(["replace", "smoothed-change"]),
  /** In-plane FWHM (mm) of the change's filter for `disagreementBlend: "smoothed-change"`. */
  disagreementBlendFwhmMm: z.number().min(0).finite(),
  /** Seed of the start noise and the DDIM noise. */
  seed: z.number().int(),
};

/**
 * The DDIP constants as partial overrides (every field optional, no defaults, unknown fields
 * refused): what presets and recipes hold. A recipe can reuse single fields, e.g.
 * `DdipOverridesSchema.pick({ steps: true, lr: true, beta: true })`.
 *
 * @example
 * ```ts
 * import { DdipOverridesSchema } from "@petrel/petrel";
 * const RecipeParams = DdipOverridesSchema.pick({ steps: true, lr: true, beta: true, eta: true });
 * RecipeParams.parse({ steps: 25 }); // { steps: 25 }
 * ```
 */
export const DdipOverridesSchema = z.object(FIELDS).partial().strict();

/**
 * The constants as given (all optional).
 *
 * @example
 * ```ts
 * import { type DdipConfigInput, ddipConfig } from "@petrel/petrel";
 * // a recipe's overrides: a longer chain with a decaying coupling
 * const overrides: DdipConfigInput = { steps: 50, beta: 0.01, betaEnd: 0.001, seed: 7 };
 * const config = ddipConfig(overrides); // the defaults, then the overrides; lr "auto" → 0.001
 * ```
 */
export type DdipConfigInput = z.input<typeof DdipOverridesSchema>;

/**
 * Number of AdamW steps a chain takes (for `lr: "auto"`).
 *
 * @example
 * ```ts
 * import { adamSteps, DDIP_PAPER, ddipConfig } from "@petrel/petrel";
 * adamSteps(ddipConfig()); // 50: 25 steps × 2 fine-tuning iterations
 * adamSteps(ddipConfig(DDIP_PAPER)); // 400
 * adamSteps({ steps: 25, fineTuneEvery: 2, fineTuneIterations: 2 }); // 26: fine-tunes on 13 steps
 * ```
 */
export function adamSteps(
  c: { steps: number; fineTuneEvery: number; fineTuneIterations: number },
): number {
  return Math.ceil(c.steps / c.fineTuneEvery) * c.fineTuneIterations;
}

/**
 * zod schema of the complete constants (every field required; {@linkcode ddipConfig} fills the
 * missing ones from {@linkcode DDIP_DEFAULTS}); resolves `lr: "auto"` to a number.
 *
 * @example
 * ```ts
 * import { DDIP_DEFAULTS, DdipConfigSchema } from "@petrel/petrel";
 * DdipConfigSchema.parse({ ...DDIP_DEFAULTS, steps: 100 }).lr; // 0.0005: 0.1 / 200 AdamW steps
 * DdipConfigSchema.safeParse({ ...DDIP_DEFAULTS, steps: 300 }).success; // false: steps > startT
 * ```
 */
export const DdipConfigSchema = z.object(FIELDS).strict()
  .refine((c) => c.steps <= c.startT, {
    message: "steps must be ≤ startT (one network evaluation per integer timestep at most)",
    path: ["steps"],
  })
  .transform((c) => ({
    ...c,
    lr: c.lr === "auto" ? c.lrBudget / Math.max(1, adamSteps(c)) : c.lr,
  }));

/** The resolved constants (`lr` a number). */
export type DdipConfig = z.output<typeof DdipConfigSchema>;

// the paper's constants as a complete literal (DDIP_DEFAULTS builds on it)
const PAPER = {
  startT: 200,
  steps: 200,
  fineTuneIterations: 2,
  fineTuneEvery: 1,
  emIterations: 5,
  xStepOrderedSubsets: false,
  beta: 0.01,
  lr: 5e-4,
  weightDecay: 0.01,
  clipNorm: 1,
  eta: 0.85,
  initIterations: 20,
  finalEmIterations: 0,
};
/**
 * The paper's constants (Hashimoto & Gong; `docs/ddip.md`): 200 reverse steps from t = 200, each
 * 2 × (5 penalised-EM iterations + 1 AdamW step at lr 5e-4), β 0.01, η 0.85. On a CPU the chain
 * costs about 8× the default, and its 400 AdamW steps fit the noise of the x-step targets
 * (issue 15: a speckled cortex on FDG).
 *
 * @example
 * ```ts
 * import { DDIP_PAPER, ddipConfig } from "@petrel/petrel";
 * const paper = ddipConfig(DDIP_PAPER); // the defaults, overridden by the paper's constants
 * paper.steps; // 200
 * paper.lr; // 0.0005
 * ```
 */
export const DDIP_PAPER: DdipConfigInput = PAPER;

/**
 * The former name of {@linkcode DDIP_PAPER}.
 *
 * @example
 * ```ts
 * import { DDIP_PAPER, DDIP_REFERENCE } from "@petrel/petrel";
 * DDIP_REFERENCE === DDIP_PAPER; // true: prefer DDIP_PAPER in new code
 * ```
 */
export const DDIP_REFERENCE: DdipConfigInput = DDIP_PAPER;

/**
 * The library defaults (`ddipConfig()` with no input): the paper's start time and per-step work,
 * 25 strided reverse steps (t = 199, 191, …, 0; 50 AdamW steps) and `lr: "auto"`, which gives
 * 0.1 / 50 = 2e-3 here and scales down for longer chains so they cannot drift further. 2e-3 at
 * 25 steps was chosen on a validation condition (BrainWeb 50, amyloid-negative, 1·10⁵
 * counts/slice; not one of the test subjects 51–53): PSNR 31.33 / 32.82 / 32.67 dB at lr 5e-4 /
 * 2e-3 / 5e-3 (`docs/results.md`, "Tuning"). After the chain, 20 penalised-EM iterations
 * (β 1e-4) are kept only where they disagree with its output (`finalEmRegion: "disagreement"`,
 * τ 3 robust σ after an 8 mm filter): on the validation stacks of subject 50 this raised the
 * recovery of MR-invisible hot lesions on amyloid from 0.60–0.63 to 0.86–0.87 (OSEM 0.75–0.78)
 * at −0.3 to +0.4 dB; {@linkcode DDIP_PAPER} runs the chain alone.
 *
 * @example
 * ```ts
 * import { DDIP_DEFAULTS, ddipConfig } from "@petrel/petrel";
 * DDIP_DEFAULTS.steps; // 25
 * DDIP_DEFAULTS.lr; // "auto"
 * ddipConfig().lr; // 0.002: "auto" resolved, 0.1 / 50 AdamW steps
 * ```
 */
export const DDIP_DEFAULTS: Readonly<z.input<typeof DdipConfigSchema>> = Object.freeze(
  {
    ...PAPER,
    steps: 25,
    lr: "auto",
    lrBudget: 0.1,
    scalePercentile: 99.5,
    scaleFilterFwhmMm: 4,
    scaleHeadroom: 1.8,
    // the data-disagreement lever (issue 15), chosen on validation subject 50: keeps MR-invisible
    // hot lesions on amyloid at no mean PSNR cost (docs/results.md, "Data-disagreement lever")
    finalEmIterations: 20,
    finalBeta: 1e-4,
    finalEmRegion: "disagreement",
    disagreementFwhmMm: 8,
    disagreementThreshold: 3,
    // opt-in variants of the lever, off (docs/ddip.md): on validation subject 50 the ordered-subset,
    // hysteresis and smoothed-change variant kept the amyloid MR-invisible lesions at OSEM's
    // recovery, but flags none of the FDG ones (docs/results.md, issue 15)
    finalOrderedSubsets: false,
    disagreementSeedThreshold: 0,
    disagreementBlend: "replace",
    disagreementBlendFwhmMm: 3,
    seed: 0,
  } as const,
);

/**
 * The 25-step CPU chain with its learning rate spelled out (equal to the defaults): about 8×
 * cheaper than {@linkcode DDIP_PAPER}, lr raised to 2e-3 for its 8× fewer AdamW steps.
 *
 * @example
 * ```ts
 * import { DDIP_CPU_PRESET, ddipConfig } from "@petrel/petrel";
 * const c = ddipConfig(DDIP_CPU_PRESET, { seed: 3 }); // later layers win
 * [c.steps, c.lr, c.seed]; // [25, 0.002, 3]
 * ```
 */
export const DDIP_CPU_PRESET: DdipConfigInput = { steps: 25, lr: 2e-3 };

/**
 * Resolves DDIP constants: {@linkcode DDIP_DEFAULTS}, then each layer in turn (later layers win;
 * `undefined` values are skipped), validated as a whole. Throws one readable error listing every
 * problem.
 *
 * @example
 * ```ts
 * import { DDIP_PAPER, ddipConfig } from "@petrel/petrel";
 * ddipConfig().lr; // 0.002: 25 steps, lr "auto"
 * ddipConfig(DDIP_PAPER, { steps: 50 }); // the paper's constants with a shorter chain
 * ddipConfig({ steps: 100 }).lr; // 0.0005 (0.1 / 200 AdamW steps)
 * ```
 */
export function ddipConfig(...layers: (DdipConfigInput | undefined)[]): DdipConfig {
  const merged: Record<string, unknown> = { ...DDIP_DEFAULTS };
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer ?? {})) if (v !== undefined) merged[k] = v;
  }
  const r = DdipConfigSchema.safeParse(merged);
  if (!r.success) {
    throw new RangeError(
      `invalid DDIP configuration: ${
        r.error.issues.map((i) => `${i.path.join(".") || "config"}: ${i.message}`).join("; ")
      } (see DdipOverridesSchema for the expected fields)`,
    );
  }
  return r.data;
}

/**
 * The HQS coupling β (prior's scale) at reverse step `i` of `n`: `beta`, or geometric from `beta`
 * at the first step to `betaEnd` at the last.
 *
 * @example
 * ```ts
 * import { ddipConfig, hqsBeta } from "@petrel/petrel";
 * const c = ddipConfig({ beta: 0.01, betaEnd: 0.0001 });
 * [hqsBeta(c, 0, 25), hqsBeta(c, 12, 25), hqsBeta(c, 24, 25)]; // ≈ [0.01, 0.001, 0.0001]
 * ```
 */
export function hqsBeta(
  config: { beta: number; betaEnd?: number },
  i: number,
  n: number,
): number {
  if (config.betaEnd === undefined || n < 2) return config.beta;
  return config.beta * (config.betaEnd / config.beta) ** (i / (n - 1));
}

/** The diffusion-based methods this module runs. */
export type DdipMethod = "ddip-hqs" | "dds" | "ddip-nll";

/**
 * The methods, for validation and listings.
 *
 * @example
 * ```ts
 * import { DDIP_METHODS, type DdipMethod } from "@petrel/petrel";
 * const method = "dds"; // e.g. from a recipe
 * if (!DDIP_METHODS.includes(method as DdipMethod)) {
 *   throw new RangeError(`method must be one of ${DDIP_METHODS.join(", ")}, got ${method}`);
 * }
 * ```
 */
export const DDIP_METHODS: readonly DdipMethod[] = ["ddip-hqs", "dds", "ddip-nll"];
