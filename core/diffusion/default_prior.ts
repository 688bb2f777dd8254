/**
 * Which prior petrel uses when none is named. A leaf module (no imports) so that the CLI can name
 * the default without loading onnxruntime.
 *
 * @module
 */

/**
 * The prior petrel uses when none is named (relative to the repository root): the FDG prior
 * fine-tuned with augmentations, then with more and larger MR-invisible lesions
 * (`docs/model_card.md`, "Prior v4"; chosen over v3 on validation subject 50). `models/fdg_prior_v3`
 * and the first prior `models/fdg_prior` stay, for comparison and for the earlier results.
 *
 * @example
 * ```ts
 * import { DEFAULT_PRIOR_DIR, loadPrior } from "@petrel/petrel";
 * const prior = await loadPrior(DEFAULT_PRIOR_DIR, { provider: "wasm" });
 * ```
 */
export const DEFAULT_PRIOR_DIR = "models/fdg_prior_v4";
