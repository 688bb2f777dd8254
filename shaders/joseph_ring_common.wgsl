// Helpers shared by the ring-sinogram Joseph kernels (`joseph_ring.wgsl`,
// `joseph_ring_oblique.wgsl`); `shaders/mod.ts` prepends this file to each. The including kernel
// declares `dtab` (binding 2: d(rs) by radial bin).

fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
}

fn d_at(r: u32) -> f32 {
  return dtab[r >> 2u][r & 3u];
}

// Planes [first, last] along a where ub = ub0 + i·slope lies in (−1, nb), as in joseph.wgsl.
fn plane_range(na: i32, ub0: f32, slope: f32, nb: f32) -> vec2<i32> {
  var f = 0;
  var l = na - 1;
  if (slope == 0.0) {
    if (ub0 <= -1.0 || ub0 >= nb) { return vec2<i32>(1, 0); }
    return vec2<i32>(f, l);
  }
  let t1 = (-1.0 - ub0) / slope;
  let t2 = (nb - ub0) / slope;
  f = max(f, i32(clamp(floor(min(t1, t2)), -1.0e8, 1.0e8)));
  l = min(l, i32(clamp(ceil(max(t1, t2)), -1.0e8, 1.0e8)));
  if (f <= l) {
    let uf = ub0 + f32(f) * slope;
    if (uf <= -1.0 || uf >= nb) { f = f + 1; }
    let ul = ub0 + f32(l) * slope;
    if (ul <= -1.0 || ul >= nb) { l = l - 1; }
  }
  return vec2<i32>(f, l);
}

// Slack on the radial-bin bounds from asin: backends' asin is not exact, and a bin left out
// would break adjointness, while an extra one is rejected by the exact weight test.
const RS_MARGIN = 0.5;

// rs of the line at distance d: rs = −(N/π) asin(d / R) (geom = (N/π, R in mm)).
fn rs_of(d: f32, geom: vec2<f32>) -> f32 {
  return -geom.x * asin(clamp(d / geom.y, -1.0, 1.0));
}

// [lo, hi]: the radial offsets rs of parity q, |rs| ≤ half, of the family's lines whose d·A lies
// in (u_lo, u_hi), widened by RS_MARGIN (lo is the first rs ≥ the bound of parity q).
fn rs_span(u_lo: f32, u_hi: f32, a: f32, q: i32, half: i32, geom: vec2<f32>) -> vec2<i32> {
  let r1 = rs_of(u_lo / a, geom);
  let r2 = rs_of(u_hi / a, geom);
  var lo = max(i32(ceil(min(r1, r2) - RS_MARGIN)), -half);
  let hi = min(i32(floor(max(r1, r2) + RS_MARGIN)), half);
  lo = lo + ((lo - q) & 1);
  return vec2<i32>(lo, hi);
}

// For the row/column gathers: the rs span of family `fam` (parity q) whose lines have
// ub ∈ (line − 1, line + 1) somewhere on planes 0 … last.
fn line_rs_span(line: i32, fam: vec4<f32>, last: f32, q: i32, half: i32, geom: vec2<f32>) -> vec2<i32> {
  let c = f32(line) - fam.y;
  let lo_u = c - 1.0 - max(0.0, last * fam.z);
  let hi_u = c + 1.0 - min(0.0, last * fam.z);
  return rs_span(lo_u, hi_u, fam.x, q, half, geom);
}

// Planes [i0, i1] of 0 … n_i − 1 where ub = u0 + i·slope ∈ (line − 1, line + 1), widened by
// rounding (the weight below is exact).
fn line_planes(line: i32, u0: f32, slope: f32, n_i: i32) -> vec2<i32> {
  var i0 = 0;
  var i1 = n_i - 1;
  if (slope != 0.0) {
    let t1 = (f32(line) - 1.0 - u0) / slope;
    let t2 = (f32(line) + 1.0 - u0) / slope;
    i0 = max(i0, i32(clamp(floor(min(t1, t2)), -1.0e8, 1.0e8)));
    i1 = min(i1, i32(clamp(ceil(max(t1, t2)), -1.0e8, 1.0e8)));
  }
  return vec2<i32>(i0, i1);
}

// Joseph's bilinear weight of cell `line` along b for a sample at ub.
fn cell_weight(ub: f32, line: i32) -> f32 {
  let fb = floor(ub);
  let tb = ub - fb;
  let jb = i32(fb);
  return select(0.0, 1.0 - tb, jb == line) + select(0.0, tb, jb + 1 == line);
}
