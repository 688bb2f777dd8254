/**
 * Image and data I/O: NIfTI-1 (`.nii`, `.nii.gz`), NumPy `.npy`, sinograms with a JSON sidecar,
 * STIR Interfile images and projection data, PNG montages. Every writer is atomic (temporary
 * name + rename); readers throw a {@linkcode FormatError} for corrupt, truncated or mismatched
 * files and a {@linkcode FilePermissionError} naming the missing `--allow-*` flag.
 * File formats are described in `docs/formats.md`.
 *
 * @module
 */
// writeFileAtomic / writeFilesAtomic live in ./files.ts; not re-exported here because
// core/runtime exports a writeFileAtomic of its own (the root mod.ts re-exports both areas).
export {
  checkFinite,
  explainFileError,
  FilePermissionError,
  type FiniteOptions,
  FormatError,
  readBytes,
  readText,
} from "./files.ts";
export * from "./nifti.ts";
export * from "./npy.ts";
export * from "./sinogram.ts";
export * from "./interfile.ts";
export * from "./png.ts";
export * from "./image.ts";
export * from "./study.ts";
export * from "./listmode.ts";
