/**
 * Which prior petrel uses when none is named. A leaf module (no imports) so that the CLI can name
 * the default without loading onnxruntime.
 *
 * @module
 */

/**
 * The prior petrel uses when none is named (relative to the repository root): the FDG prior
 * fine-tuned with augmentations (`docs/model_card.md`, "Prior v3"; chosen on validation subject
 * 50). The first prior stays at `models/fdg_prior`, for comparison and for the earlier results.
 *
 * @example
 * ```ts
 * import { DEFAULT_PRIOR_DIR, loadPrior } from "@petrel/petrel";
 * const prior = await loadPrior(DEFAULT_PRIOR_DIR, { provider: "wasm" });
 * ```
 */
export const DEFAULT_PRIOR_DIR = "models/fdg_prior_v3";
