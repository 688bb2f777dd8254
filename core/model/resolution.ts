/**
 * The image-space resolution model (PSF) as recipes take it: an in-plane and an axial FWHM in mm,
 * both 0 (no model) unless given. A scanner's resolution is a calibration the user supplies, like
 * its normalisation; petrel never guesses one.
 *
 * @module
 */

import { z } from "zod";

/**
 * Recipe parameters of the resolution model, for a recipe's zod object.
 *
 * @example
 * ```ts
 * import { RESOLUTION_PARAMS, resolutionModel } from "@petrel/petrel";
 * import { z } from "zod";
 * const params = z.object({ iterations: z.number().int().default(4), ...RESOLUTION_PARAMS });
 * resolutionModel(params.parse({ resolutionFwhmMm: 4 })); // { resolutionFwhmMm: [4, 4, 0] }
 * ```
 */
export const RESOLUTION_PARAMS = {
  resolutionFwhmMm: z.number().min(0).max(50).default(0).describe(
    "in-plane FWHM (mm) of the image-space resolution model (the scanner's PSF; 0: none)",
  ),
  resolutionAxialFwhmMm: z.number().min(0).max(50).default(0).describe(
    "axial FWHM (mm) of the image-space resolution model (0: none)",
  ),
};

/**
 * The forward-model option of the resolution parameters: `{ resolutionFwhmMm: [xy, xy, z] }`, or
 * `{}` when both are 0 (no model, the projector alone).
 *
 * @example
 * ```ts
 * import { resolutionModel } from "@petrel/petrel";
 * resolutionModel({ resolutionFwhmMm: 4.5, resolutionAxialFwhmMm: 0 }); // { resolutionFwhmMm: [4.5, 4.5, 0] }
 * resolutionModel({ resolutionFwhmMm: 0, resolutionAxialFwhmMm: 0 }); // {}
 * ```
 */
export function resolutionModel(
  p: { resolutionFwhmMm: number; resolutionAxialFwhmMm: number },
): { resolutionFwhmMm?: readonly [number, number, number] } {
  if (p.resolutionFwhmMm === 0 && p.resolutionAxialFwhmMm === 0) return {};
  return {
    resolutionFwhmMm: [p.resolutionFwhmMm, p.resolutionFwhmMm, p.resolutionAxialFwhmMm] as const,
  };
}
