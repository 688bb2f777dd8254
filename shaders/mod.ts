/**
 * The WGSL kernel families, imported as text so that no file-read permission is needed at run
 * time (recipes run with read access to their inputs only).
 *
 * @module
 */
import elementwise from "./elementwise.wgsl" with { type: "text" };
import em from "./em.wgsl" with { type: "text" };
import gaussian from "./gaussian.wgsl" with { type: "text" };
import joseph from "./joseph.wgsl" with { type: "text" };
import josephCommon from "./joseph_common.wgsl" with { type: "text" };
import joseph_ring from "./joseph_ring.wgsl" with { type: "text" };
import josephRingCommon from "./joseph_ring_common.wgsl" with { type: "text" };
import joseph_ring_oblique from "./joseph_ring_oblique.wgsl" with { type: "text" };
import joseph_tof from "./joseph_tof.wgsl" with { type: "text" };
import reduce from "./reduce.wgsl" with { type: "text" };

/** WGSL source of every kernel family, by name. */
export const SHADERS = {
  elementwise,
  em,
  gaussian,
  // joseph_common.wgsl: the ray clipping and fixed-point helpers both Joseph families share
  joseph: `${josephCommon}\n${joseph}`,
  // joseph_ring_common.wgsl: the dispatch index, d table and plane clipping both ring families share
  joseph_ring: `${josephRingCommon}\n${joseph_ring}`,
  joseph_ring_oblique: `${josephRingCommon}\n${joseph_ring_oblique}`,
  joseph_tof: `${josephCommon}\n${joseph_tof}`,
  reduce,
} as const;

/** Name of a kernel family in `shaders/`. */
export type ShaderName = keyof typeof SHADERS;
