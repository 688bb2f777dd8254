/**
 * Figures of merit for reconstructed images against a known truth (host arrays, float64
 * arithmetic): MSE, PSNR, NRMSE, Gaussian-window SSIM (scikit-image conventions), ROI statistics,
 * lesion contrast recovery, background variability, bias/std across noise realisations and
 * NEMA NU 2-style IEC phantom figures.
 *
 * @module
 */
export * from "./image.ts";
export * from "./roi.ts";
export * from "./report.ts";
