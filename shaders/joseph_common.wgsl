// Helpers shared by the Joseph projectors (`joseph.wgsl`, `joseph_tof.wgsl`); `shaders/mod.ts`
// prepends this file to each of them, so there is one copy of the ray set-up and clipping and of the
// deterministic 64-bit fixed-point accumulation. The including kernel declares `params` (a
// `Params` with `origin`, `voxel` and `dims`), `lors` (binding 1), `accum` (binding 5),
// `maxabs_bits` (binding 6) and `image_in` (binding 7).

fn pick(v: vec3<f32>, k: u32) -> f32 {
  return select(select(v.z, v.y, k == 1u), v.x, k == 0u);
}

fn picku(v: vec3<u32>, k: u32) -> u32 {
  return select(select(v.z, v.y, k == 1u), v.x, k == 0u);
}

// b < c: z is the c axis of x- and y-dominant rays.
fn axis_b(a: u32) -> u32 { return select(0u, 1u, a == 0u); }

fn axis_c(a: u32) -> u32 { return select(2u, 1u, a == 2u); }

// Clips [first, last] to planes where u(i) = u0 + i*slope lies in (-1, n), exactly as the
// per-plane test floor(u) in [-1, n-1] would.
fn clip_range(first: i32, last: i32, u0: f32, slope: f32, n: f32) -> vec2<i32> {
  if (slope == 0.0) {
    if (u0 <= -1.0 || u0 >= n) { return vec2<i32>(1, 0); }
    return vec2<i32>(first, last);
  }
  let t1 = (-1.0 - u0) / slope;
  let t2 = (n - u0) / slope;
  // Clamp before converting: nearly axis-parallel rays give huge t, and f32 -> i32 of an
  // out-of-range value is not portable.
  let lo = i32(clamp(floor(min(t1, t2)), -1.0e8, 1.0e8));
  let hi = i32(clamp(ceil(max(t1, t2)), -1.0e8, 1.0e8));
  var f = max(first, lo);
  var l = min(last, hi);
  // Rounding in t can be off by one plane: tighten with the exact per-plane test.
  if (f <= l) {
    let uf = u0 + f32(f) * slope;
    if (uf <= -1.0 || uf >= n) { f = f + 1; }
    let ul = u0 + f32(l) * slope;
    if (ul <= -1.0 || ul >= n) { l = l - 1; }
  }
  return vec2<i32>(f, l);
}

// Everything one LOR needs for its traversal, as scalars (dynamic vector indexing inside the
// loop is slow on CPU back ends). The including kernel declares `lors` (binding 1, 6 floats per
// LOR: start and end point in mm).
struct Ray {
  valid: bool,
  a: u32,             // dominant axis
  first: i32,         // plane range along a (inclusive), clipped to where the bilinear
  last: i32,          // footprint touches the grid: jb in [-1, nb-1], jc in [-1, nc-1]
  ub0: f32,           // b and c coordinates at plane a = 0
  uc0: f32,
  slope_b: f32,       // d(ub)/d(a), d(uc)/d(a)
  slope_c: f32,
  sa: u32,            // image index strides along a, b, c
  sb: u32,
  sc: u32,
  nb: i32,
  nc: i32,
  weight: f32,        // path length per plane step in mm
  s0: f32,            // TOF position (mm from the midpoint towards p1) of plane 0 ...
  ds: f32,            // ... and its change per plane (joseph_tof.wgsl)
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
  let b = axis_b(a);
  let c = axis_c(a);
  r.a = a;
  let u0 = (p0 - params.origin.xyz) / params.voxel.xyz;
  let du = d / params.voxel.xyz;
  let dims = params.dims.xyz;
  let ua0 = pick(u0, a);
  let dua = pick(du, a);
  r.slope_b = pick(du, b) / dua;
  r.slope_c = pick(du, c) / dua;
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
  // Plane i sits at fraction (i − ua0) / dua of the way from p0 to p1.
  r.ds = len / dua;
  r.s0 = -ua0 * r.ds - 0.5 * len;
  r.valid = r.first <= r.last;
  return r;
}

fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
}

// One masked load: zero outside the grid without touching memory.
fn image_at(i: u32, jb: i32, jc: i32, st: vec3<u32>, nb: i32, nc: i32) -> f32 {
  if (jb < 0 || jb >= nb || jc < 0 || jc >= nc) { return 0.0; }
  return image_in[i * st.x + u32(jb) * st.y + u32(jc) * st.z];
}

// Adds round-toward-zero(v * 2^S), sign-extended to 64 bits, to voxel `idx`'s two-word
// two's-complement accumulator. |v| * 2^S < 2^31 by the choice of S, so a non-negative
// contribution touches the high word only when the low word carries.
fn fixed_add(idx: u32, v: f32, to_fixed: f32) {
  let s = i32(v * to_fixed);
  if (s == 0) { return; }
  let lo = bitcast<u32>(s);
  let old = atomicAdd(&accum[2u * idx], lo);
  let carry = select(0u, 1u, old > 0xffffffffu - lo);
  let hiw = select(0u, 0xffffffffu, s < 0) + carry;
  if (hiw != 0u) {
    atomicAdd(&accum[2u * idx + 1u], hiw);
  }
}

// The bilinear sample of the image at plane i of ray r (corners outside the grid count as zero
// and are not loaded).
fn sample_bilinear(r: Ray, i: i32) -> f32 {
  let st = vec3<u32>(r.sa, r.sb, r.sc);
  let fi = f32(i);
  let ub = r.ub0 + fi * r.slope_b;
  let uc = r.uc0 + fi * r.slope_c;
  let fb = floor(ub);
  let fc = floor(uc);
  let tb = ub - fb;
  let tc = uc - fc;
  let jb = i32(fb);
  let jc = i32(fc);
  let v0 = mix(image_at(u32(i), jb, jc, st, r.nb, r.nc), image_at(u32(i), jb + 1, jc, st, r.nb, r.nc), tb);
  let v1 = mix(image_at(u32(i), jb, jc + 1, st, r.nb, r.nc), image_at(u32(i), jb + 1, jc + 1, st, r.nb, r.nc), tb);
  return mix(v0, v1, tc);
}

// Adds w times the bilinear weights of plane i's sample of ray r to its four corner voxels (the
// adjoint of sample_bilinear); corners outside the grid get zero weight and a clamped, unused
// index.
fn scatter_bilinear(r: Ray, i: i32, w: f32, to_fixed: f32) {
  let fi = f32(i);
  let ub = r.ub0 + fi * r.slope_b;
  let uc = r.uc0 + fi * r.slope_c;
  let fb = floor(ub);
  let fc = floor(uc);
  let jb = i32(fb);
  let jc = i32(fc);
  let tb = ub - fb;
  let tc = uc - fc;
  let base = u32(i) * r.sa;
  let wb0 = select(0.0, 1.0 - tb, jb >= 0 && jb < r.nb);
  let wb1 = select(0.0, tb, jb >= -1 && jb + 1 < r.nb);
  let wc0 = select(0.0, w * (1.0 - tc), jc >= 0 && jc < r.nc);
  let wc1 = select(0.0, w * tc, jc >= -1 && jc + 1 < r.nc);
  let ib0 = u32(clamp(jb, 0, r.nb - 1)) * r.sb;
  let ib1 = u32(clamp(jb + 1, 0, r.nb - 1)) * r.sb;
  let ic0 = u32(clamp(jc, 0, r.nc - 1)) * r.sc;
  let ic1 = u32(clamp(jc + 1, 0, r.nc - 1)) * r.sc;
  fixed_add(base + ic0 + ib0, wc0 * wb0, to_fixed);
  fixed_add(base + ic0 + ib1, wc0 * wb1, to_fixed);
  fixed_add(base + ic1 + ib0, wc1 * wb0, to_fixed);
  fixed_add(base + ic1 + ib1, wc1 * wb1, to_fixed);
}

// The fixed-point exponent S (value = integer * 2^-S) shared by back and resolve: the largest
// single contribution max|y| * max step weight maps below 2^31.
fn fixed_exponent(maxabs: f32, log2_step: f32) -> i32 {
  if (!(maxabs > 0.0)) { return 0; }
  let e = i32(ceil(log2(maxabs) + log2_step)) + 1;
  return clamp(31 - e, -100, 120);
}

// Exact 2^k for integer k in [-126, 127] (ldexp/exp2 need not be exact on every back end).
fn pow2(k: i32) -> f32 {
  return bitcast<f32>(u32(k + 127) << 23u);
}

// resolve: fixed point -> f32, one invocation per voxel.
@group(0) @binding(9) var<storage, read> accum_words: array<u32>;
@group(0) @binding(10) var<storage, read_write> image_out: array<f32>;

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
  // value = (hi * 2^32 + lo) * 2^-S, scaled in two exact power-of-two steps to stay in range
  let v = (f32(hi) * 4294967296.0 + f32(lo)) * pow2(-S / 2) * pow2(-S + S / 2);
  image_out[k] = sign * v;
}
