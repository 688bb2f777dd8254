// Joseph's ray-driven projector for arbitrary LORs (start/end points in mm) and an image grid.
//
// Image layout: x fastest, index = i + nx * (j + ny * k); voxel (0,0,0) is centred at `origin`.
// A LOR is the segment p0 -> p1. Along its dominant axis (largest |direction| component in mm)
// the ray is sampled on every voxel plane between p0 and p1; on each plane the image is
// interpolated bilinearly in the two other axes (zero outside the grid) and the sample is
// weighted by voxel[a] / |cos|, the path length between planes.
//
// forward: one invocation per LOR, a pure gather (deterministic).
// back:    one invocation per LOR, scattering into a 64-bit fixed-point accumulator with
//          integer atomics (two u32 words with carry). Integer addition is associative, so the
//          result does not depend on the order in which invocations run: back projections are
//          bit-reproducible. The fixed-point exponent comes from the input's max |value|
//          (see maxabs) and a host-side bound on the per-voxel sum of weights.

struct Params {
  origin: vec4<f32>,   // xyz: centre of voxel (0,0,0) in mm
  voxel: vec4<f32>,    // xyz: voxel size in mm; w: log2 bound on per-voxel weight sum (back)
  dims: vec4<u32>,     // nx, ny, nz, number of LORs in this chunk
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> lors: array<f32>;          // 6 floats per LOR

// forward bindings
@group(0) @binding(2) var<storage, read> image_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> proj_out: array<f32>;

// back bindings
@group(0) @binding(4) var<storage, read> proj_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> accum: array<atomic<u32>>;  // 2 words per voxel
@group(0) @binding(6) var<storage, read> maxabs_bits: array<u32>;

// Everything one LOR needs for its traversal, as scalars (dynamic vector indexing inside the
// loop is slow on CPU back ends such as llvmpipe).
struct Ray {
  valid: bool,
  planar: bool,       // the ray stays on one c-plane with zero c-interpolation (2-D case)
  first: i32,         // plane range along a (inclusive), already clipped to where the
  last: i32,          // bilinear footprint can touch the grid
  ua0: f32,           // start coordinate along a
  ub0: f32,           // b and c coordinates at plane a = 0
  uc0: f32,
  slope_b: f32,       // d(ub)/d(a), d(uc)/d(a)
  slope_c: f32,
  sa: u32,            // index strides along a, b, c
  sb: u32,
  sc: u32,
  nb: i32,
  nc: i32,
  weight: f32,        // path length per plane step in mm
};

fn pick(v: vec3<f32>, k: u32) -> f32 {
  return select(select(v.z, v.y, k == 1u), v.x, k == 0u);
}

fn picku(v: vec3<u32>, k: u32) -> u32 {
  return select(select(v.z, v.y, k == 1u), v.x, k == 0u);
}

// Clips [first, last] to planes where coordinate u(i) = u0 + i*slope lies in (-1, n).
fn clip_range(first: i32, last: i32, u0: f32, slope: f32, n: f32) -> vec2<i32> {
  if (slope == 0.0) {
    if (u0 <= -1.0 || u0 >= n) { return vec2<i32>(1, 0); }
    return vec2<i32>(first, last);
  }
  let t1 = (-1.0 - u0) / slope;
  let t2 = (n - u0) / slope;
  let lo = min(t1, t2);
  let hi = max(t1, t2);
  // One plane of slack on each side: the per-corner masks in `footprint` are exact. Clamp
  // before converting: nearly axis-parallel rays give huge t, and f32 -> i32 of an
  // out-of-range value is not portable.
  let lo_i = i32(clamp(floor(lo), -1.0e8, 1.0e8));
  let hi_i = i32(clamp(ceil(hi), -1.0e8, 1.0e8));
  return vec2<i32>(max(first, lo_i), min(last, hi_i));
}

fn setup_ray(n: u32) -> Ray {
  var r: Ray;
  r.valid = false;
  let p0 = vec3<f32>(lors[6u * n], lors[6u * n + 1u], lors[6u * n + 2u]);
  let p1 = vec3<f32>(lors[6u * n + 3u], lors[6u * n + 4u], lors[6u * n + 5u]);
  let d = p1 - p0;
  let ad = abs(d);
  let len = length(d);
  if (len == 0.0) {
    return r;
  }
  var a = 0u;
  if (ad.y > ad.x && ad.y >= ad.z) { a = 1u; }
  if (ad.z > ad.x && ad.z > ad.y) { a = 2u; }
  let b = (a + 1u) % 3u;
  let c = (a + 2u) % 3u;
  let u0 = (p0 - params.origin.xyz) / params.voxel.xyz;
  let du = d / params.voxel.xyz;
  let dims = params.dims.xyz;
  let ua0 = pick(u0, a);
  let dua = pick(du, a);
  r.slope_b = pick(du, b) / dua;
  r.slope_c = pick(du, c) / dua;
  r.ua0 = ua0;
  r.ub0 = pick(u0, b) - ua0 * r.slope_b;
  r.uc0 = pick(u0, c) - ua0 * r.slope_c;
  let st = vec3<u32>(1u, dims.x, dims.x * dims.y);
  r.sa = picku(st, a);
  r.sb = picku(st, b);
  r.sc = picku(st, c);
  r.nb = i32(picku(dims, b));
  r.nc = i32(picku(dims, c));
  let lo = min(ua0, ua0 + dua);
  let hi = max(ua0, ua0 + dua);
  var range = vec2<i32>(max(i32(ceil(lo)), 0), min(i32(floor(hi)), i32(picku(dims, a)) - 1));
  range = clip_range(range.x, range.y, r.ub0, r.slope_b, f32(r.nb));
  range = clip_range(range.x, range.y, r.uc0, r.slope_c, f32(r.nc));
  r.first = range.x;
  r.last = range.y;
  r.weight = pick(params.voxel.xyz, a) * len / pick(ad, a);
  r.planar = r.slope_c == 0.0 && fract(r.uc0) == 0.0;
  r.valid = r.first <= r.last;
  return r;
}

fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
}

// Bilinear footprint of plane i: two indices and two weights per axis, clamped indices with
// zero weights outside the grid (so loads never need a branch).
struct Footprint {
  ib0: u32,
  ib1: u32,
  wb0: f32,
  wb1: f32,
  ic0: u32,
  ic1: u32,
  wc0: f32,
  wc1: f32,
};

fn footprint(r: Ray, i: i32) -> Footprint {
  var f: Footprint;
  let fi = f32(i);
  let ub = r.ub0 + fi * r.slope_b;
  let uc = r.uc0 + fi * r.slope_c;
  let fb = floor(ub);
  let fc = floor(uc);
  let jb = i32(fb);
  let jc = i32(fc);
  let tb = ub - fb;
  let tc = uc - fc;
  f.wb0 = select(0.0, 1.0 - tb, jb >= 0 && jb < r.nb);
  f.wb1 = select(0.0, tb, jb >= -1 && jb + 1 < r.nb);
  f.wc0 = select(0.0, 1.0 - tc, jc >= 0 && jc < r.nc);
  f.wc1 = select(0.0, tc, jc >= -1 && jc + 1 < r.nc);
  f.ib0 = u32(clamp(jb, 0, r.nb - 1)) * r.sb;
  f.ib1 = u32(clamp(jb + 1, 0, r.nb - 1)) * r.sb;
  f.ic0 = u32(clamp(jc, 0, r.nc - 1)) * r.sc;
  f.ic1 = u32(clamp(jc + 1, 0, r.nc - 1)) * r.sc;
  return f;
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = linear_id(gid, nwg);
  if (n >= params.dims.w) { return; }
  let r = setup_ray(n);
  if (!r.valid) {
    proj_out[n] = 0.0;
    return;
  }
  var acc = 0.0;
  if (r.planar) {
    let ic = u32(i32(r.uc0)) * r.sc;
    for (var i = r.first; i <= r.last; i++) {
      let f = footprint(r, i);
      let base = u32(i) * r.sa + ic;
      acc += image_in[base + f.ib0] * f.wb0 + image_in[base + f.ib1] * f.wb1;
    }
  } else {
    for (var i = r.first; i <= r.last; i++) {
      let f = footprint(r, i);
      let base = u32(i) * r.sa;
      let v0 = image_in[base + f.ic0 + f.ib0] * f.wb0 + image_in[base + f.ic0 + f.ib1] * f.wb1;
      let v1 = image_in[base + f.ic1 + f.ib0] * f.wb0 + image_in[base + f.ic1 + f.ib1] * f.wb1;
      acc += v0 * f.wc0 + v1 * f.wc1;
    }
  }
  proj_out[n] = acc * r.weight;
}

// Adds v * 2^S (S from fixed_exponent) as a 64-bit two's-complement fixed-point number to voxel
// `idx`. `to_fixed` = 2^(S-32), so `scaled` is the value in units of the high word.
fn fixed_add(idx: u32, v: f32, to_fixed: f32) {
  if (v == 0.0) { return; }
  let scaled = v * to_fixed;               // |scaled| < 2^30 by the choice of exponent
  let hi = floor(scaled);
  let lo = u32((scaled - hi) * 4294967296.0);
  let old = atomicAdd(&accum[2u * idx], lo);
  let carry = select(0u, 1u, old > 0xffffffffu - lo);
  let hiw = bitcast<u32>(i32(hi)) + carry;
  if (hiw != 0u) {
    atomicAdd(&accum[2u * idx + 1u], hiw);
  }
}

// The fixed-point exponent S (value = integer * 2^-S) shared by back and resolve.
fn fixed_exponent(maxabs: f32, log2_bound: f32) -> i32 {
  if (!(maxabs > 0.0)) { return 0; }
  let e = max(i32(ceil(log2(maxabs) + log2_bound)) + 1, -60);
  return 62 - e;
}

@compute @workgroup_size(64)
fn back(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = linear_id(gid, nwg);
  if (n >= params.dims.w) { return; }
  let val = proj_in[n];
  if (val == 0.0) { return; }
  let r = setup_ray(n);
  if (!r.valid) { return; }
  let S = fixed_exponent(bitcast<f32>(maxabs_bits[0]), params.voxel.w);
  let to_fixed = ldexp(1.0, S - 32);
  let wv = val * r.weight;
  if (r.planar) {
    let ic = u32(i32(r.uc0)) * r.sc;
    for (var i = r.first; i <= r.last; i++) {
      let f = footprint(r, i);
      let base = u32(i) * r.sa + ic;
      fixed_add(base + f.ib0, wv * f.wb0, to_fixed);
      fixed_add(base + f.ib1, wv * f.wb1, to_fixed);
    }
  } else {
    for (var i = r.first; i <= r.last; i++) {
      let f = footprint(r, i);
      let base = u32(i) * r.sa;
      let w0 = wv * f.wc0;
      let w1 = wv * f.wc1;
      fixed_add(base + f.ic0 + f.ib0, w0 * f.wb0, to_fixed);
      fixed_add(base + f.ic0 + f.ib1, w0 * f.wb1, to_fixed);
      fixed_add(base + f.ic1 + f.ib0, w1 * f.wb0, to_fixed);
      fixed_add(base + f.ic1 + f.ib1, w1 * f.wb1, to_fixed);
    }
  }
}

// resolve: fixed point -> f32, one invocation per voxel.
@group(0) @binding(7) var<storage, read> accum_words: array<u32>;
@group(0) @binding(8) var<storage, read_write> image_out: array<f32>;

@compute @workgroup_size(64)
fn resolve(@builtin(global_invocation_id) gid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = linear_id(gid, nwg);
  let nvox = params.dims.x * params.dims.y * params.dims.z;
  if (k >= nvox) { return; }
  let S = fixed_exponent(bitcast<f32>(maxabs_bits[0]), params.voxel.w);
  var lo = accum_words[2u * k];
  var hi = accum_words[2u * k + 1u];
  var sign = 1.0;
  if ((hi & 0x80000000u) != 0u) {
    // negate the 64-bit two's-complement value so the conversion sees a magnitude
    lo = ~lo + 1u;
    hi = ~hi + select(0u, 1u, lo == 0u);
    sign = -1.0;
  }
  let v = f32(hi) * ldexp(1.0, 32 - S) + f32(lo) * ldexp(1.0, -S);
  image_out[k] = sign * v;
}
