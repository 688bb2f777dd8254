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

// Everything one LOR needs for its traversal.
struct Ray {
  valid: bool,
  axis: u32,          // dominant axis a
  ib: u32,            // the two other axes b, c
  ic: u32,
  first: i32,         // plane range along a (inclusive)
  last: i32,
  u0: vec3<f32>,      // start point in continuous voxel-index coordinates
  du: vec3<f32>,      // end - start in voxel-index coordinates
  weight: f32,        // path length per plane step in mm
};

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
  r.axis = a;
  r.ib = (a + 1u) % 3u;
  r.ic = (a + 2u) % 3u;
  r.u0 = (p0 - params.origin.xyz) / params.voxel.xyz;
  r.du = d / params.voxel.xyz;
  let n_a = i32(params.dims[a]);
  let lo = min(r.u0[a], r.u0[a] + r.du[a]);
  let hi = max(r.u0[a], r.u0[a] + r.du[a]);
  r.first = max(i32(ceil(lo)), 0);
  r.last = min(i32(floor(hi)), n_a - 1);
  r.weight = params.voxel[a] * len / ad[a];
  r.valid = r.first <= r.last;
  return r;
}

fn strides() -> vec3<u32> {
  return vec3<u32>(1u, params.dims.x, params.dims.x * params.dims.y);
}

fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
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
  let st = strides();
  let sa = st[r.axis];
  let sb = st[r.ib];
  let sc = st[r.ic];
  let nb = i32(params.dims[r.ib]);
  let nc = i32(params.dims[r.ic]);
  let inv = 1.0 / r.du[r.axis];
  var acc = 0.0;
  for (var i = r.first; i <= r.last; i++) {
    let s = (f32(i) - r.u0[r.axis]) * inv;
    let ub = r.u0[r.ib] + s * r.du[r.ib];
    let uc = r.u0[r.ic] + s * r.du[r.ic];
    let fb = floor(ub);
    let fc = floor(uc);
    let jb = i32(fb);
    let jc = i32(fc);
    if (jb < -1 || jb >= nb || jc < -1 || jc >= nc) { continue; }
    let tb = ub - fb;
    let tc = uc - fc;
    let base = u32(i) * sa;
    // Each corner contributes only when inside the grid (zero padding).
    var v = 0.0;
    if (jc >= 0) {
      let row = base + u32(jc) * sc;
      var w0 = 0.0;
      if (jb >= 0) { w0 = image_in[row + u32(jb) * sb] * (1.0 - tb); }
      var w1 = 0.0;
      if (jb + 1 < nb && tb != 0.0) { w1 = image_in[row + u32(jb + 1) * sb] * tb; }
      v += (w0 + w1) * (1.0 - tc);
    }
    if (jc + 1 < nc && tc != 0.0) {
      let row = base + u32(jc + 1) * sc;
      var w0 = 0.0;
      if (jb >= 0) { w0 = image_in[row + u32(jb) * sb] * (1.0 - tb); }
      var w1 = 0.0;
      if (jb + 1 < nb && tb != 0.0) { w1 = image_in[row + u32(jb + 1) * sb] * tb; }
      v += (w0 + w1) * tc;
    }
    acc += v;
  }
  proj_out[n] = acc * r.weight;
}

// Adds v * 2^scale_exp as a 64-bit two's-complement fixed-point number to voxel `idx`.
fn fixed_add(idx: u32, v: f32, to_fixed: f32) {
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
  let st = strides();
  let sa = st[r.axis];
  let sb = st[r.ib];
  let sc = st[r.ic];
  let nb = i32(params.dims[r.ib]);
  let nc = i32(params.dims[r.ic]);
  let inv = 1.0 / r.du[r.axis];
  let wv = val * r.weight;
  for (var i = r.first; i <= r.last; i++) {
    let s = (f32(i) - r.u0[r.axis]) * inv;
    let ub = r.u0[r.ib] + s * r.du[r.ib];
    let uc = r.u0[r.ic] + s * r.du[r.ic];
    let fb = floor(ub);
    let fc = floor(uc);
    let jb = i32(fb);
    let jc = i32(fc);
    if (jb < -1 || jb >= nb || jc < -1 || jc >= nc) { continue; }
    let tb = ub - fb;
    let tc = uc - fc;
    let base = u32(i) * sa;
    if (jc >= 0) {
      let row = base + u32(jc) * sc;
      let wc = wv * (1.0 - tc);
      if (jb >= 0) { fixed_add(row + u32(jb) * sb, wc * (1.0 - tb), to_fixed); }
      if (jb + 1 < nb && tb != 0.0) { fixed_add(row + u32(jb + 1) * sb, wc * tb, to_fixed); }
    }
    if (jc + 1 < nc && tc != 0.0) {
      let row = base + u32(jc + 1) * sc;
      let wc = wv * tc;
      if (jb >= 0) { fixed_add(row + u32(jb) * sb, wc * (1.0 - tb), to_fixed); }
      if (jb + 1 < nb && tb != 0.0) { fixed_add(row + u32(jb + 1) * sb, wc * tb, to_fixed); }
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
