// Time-of-flight Joseph projector: TOF sinograms (every LOR × every TOF bin) and list-mode
// events (one LOR and one TOF bin, or a continuous TOF position, per event).
//
// Geometry is that of `joseph.wgsl` (same plane sampling, bilinear interpolation and weight
// voxel[a] / |cos|); each plane sample is further weighted by the TOF kernel of the bin:
//
//   k(s) = ∫_{bin ∩ [s − h, s + h]} N(u; s, σ) du / erf(h / (σ√2))
//
// where s is the sample's position along the LOR (mm from the LOR midpoint, positive towards
// the end point p1), N the Gaussian of the TOF resolution σ, and h = nσ·σ the truncation. The
// truncated Gaussian is renormalised, so over bins that tile the LOR the kernels sum to exactly 1
// and the TOF bins of a LOR add up to its non-TOF line integral.
//
// TOF bin edges: bin u of a LOR spans [(u − nt/2)·w + c, (u + 1 − nt/2)·w + c] (bin centres at
// (u − (nt−1)/2)·w + c, as in STIR and parallelproj), with w the bin width, nt the number of bins
// and c the LOR's TOF centre offset. In sinogram mode u is the integer bin of the invocation; in
// list mode u is given per event (an integer bin, or fractional for a continuous position).
// Sharing this formula makes the sinogram and the list-mode projections of one (LOR, bin)
// bit-identical.
//
// One invocation per (LOR, TOF bin) (`forward`, `back`: list mode, and sinograms of more than 64
// bins) walks only the planes inside the bin's kernel window; sinograms of up to 64 bins use one
// invocation per LOR (`forward_sino`, `back_sino`), which loads or scatters each plane sample once
// for all its bins.
// Back projection scatters into the 64-bit fixed-point accumulator of `joseph.wgsl` (the same
// scheme: integer atomics, order-independent, so bit-reproducible), and `resolve` converts it.

struct Params {
  origin: vec4<f32>,   // xyz: centre of voxel (0,0,0) in mm
  voxel: vec4<f32>,    // xyz: voxel size in mm; w: log2 of the largest weight of one plane step
  dims: vec4<u32>,     // nx, ny, nz, number of LORs in this chunk
  tof: vec4<f32>,      // x: σ (mm), y: bin width w (mm), z: truncation h (mm), w: nt (as f32)
  tofi: vec4<u32>,     // x: bins per LOR in this dispatch (nt, or 1 in list mode), y: data
                       // stride between TOF bins (LORs of the whole operator), z: first LOR of
                       // this chunk, w: 1 in list mode
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> lors: array<f32>;          // 6 floats per LOR (chunk)
@group(0) @binding(2) var<storage, read> tofinfo: array<f32>;       // 2 per LOR: bin u, centre c
@group(0) @binding(3) var<storage, read_write> proj_out: array<f32>;
@group(0) @binding(4) var<storage, read> proj_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> accum: array<atomic<u32>>;  // 2 words per voxel
@group(0) @binding(6) var<storage, read> maxabs_bits: array<u32>;
@group(0) @binding(7) var<storage, read> image_in: array<f32>;


// erf with |error| ≤ 1.5e-7 (Abramowitz & Stegun 7.1.26), odd by construction.
fn erf_approx(x: f32) -> f32 {
  let ax = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * ax);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 +
    t * 1.061405429))));
  let y = 1.0 - poly * exp(-ax * ax);
  return select(y, -y, x < 0.0);
}

// The bin [lo, hi] of the current (LOR, bin) and its kernel constants.
struct Bin {
  lo: f32,
  hi: f32,
  inv: f32,     // 1 / (σ√2)
  norm: f32,    // 1 / (2·erf(h / (σ√2)))
};

fn tof_bin(n: u32, t: u32) -> Bin {
  var u = f32(t);
  if (params.tofi.w != 0u) { u = tofinfo[2u * n]; }
  return bin_at(u, tofinfo[2u * n + 1u]);
}

// Bin u (any real value) of a LOR with centre offset c.
fn bin_at(u: f32, c: f32) -> Bin {
  var b: Bin;
  let w = params.tof.y;
  let half = 0.5 * params.tof.w;
  b.lo = (u - half) * w + c;
  b.hi = (u + 1.0 - half) * w + c;
  b.inv = 1.0 / (params.tof.x * 1.4142135);
  b.norm = 0.5 / erf_approx(params.tof.z * b.inv);
  return b;
}

// Kernel weight of a sample at TOF position s for bin `b` (zero outside bin ∩ [s − h, s + h]).
fn tof_weight(b: Bin, s: f32) -> f32 {
  let h = params.tof.z;
  let lo = max(b.lo, s - h);
  let hi = min(b.hi, s + h);
  if (!(hi > lo)) { return 0.0; }
  return (erf_approx((hi - s) * b.inv) - erf_approx((lo - s) * b.inv)) * b.norm;
}

// Planes whose TOF position may reach the bin's kernel window, intersected with the ray's
// range (one plane of margin each side; tof_weight is exactly zero outside the window anyway).
fn tof_range(r: Ray, b: Bin) -> vec2<i32> {
  let h = params.tof.z;
  let i1 = (b.lo - h - r.s0) / r.ds;
  let i2 = (b.hi + h - r.s0) / r.ds;
  let lo = i32(clamp(floor(min(i1, i2)), -1.0e8, 1.0e8)) - 1;
  let hi = i32(clamp(ceil(max(i1, i2)), -1.0e8, 1.0e8)) + 1;
  return vec2<i32>(max(r.first, lo), min(r.last, hi));
}

// Forward: a gather, one invocation per (LOR, bin). Output index = LOR + stride · bin.
@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = linear_id(gid, nwg);
  let count = params.dims.w;
  if (g >= count * params.tofi.x) { return; }
  let n = g % count;
  let t = g / count;
  let out_idx = params.tofi.z + n + params.tofi.y * t;
  let r = setup_ray(n);
  if (!r.valid) {
    proj_out[out_idx] = 0.0;
    return;
  }
  let b = tof_bin(n, t);
  let range = tof_range(r, b);
  var acc = 0.0;
  for (var i = range.x; i <= range.y; i++) {
    let fi = f32(i);
    let k = tof_weight(b, r.s0 + fi * r.ds);
    if (k == 0.0) { continue; }
    acc += k * sample_bilinear(r, i);
  }
  proj_out[out_idx] = acc * r.weight;
}

// Back projection (exact adjoint of `forward`): one invocation per (LOR, bin), scattering
// y · weight · k(s) · bilinear into the fixed-point accumulator.
@compute @workgroup_size(64)
fn back(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = linear_id(gid, nwg);
  let count = params.dims.w;
  if (g >= count * params.tofi.x) { return; }
  let n = g % count;
  let t = g / count;
  let val = proj_in[params.tofi.z + n + params.tofi.y * t];
  if (val == 0.0) { return; }
  let r = setup_ray(n);
  if (!r.valid) { return; }
  let b = tof_bin(n, t);
  let range = tof_range(r, b);
  let to_fixed = pow2(fixed_exponent(bitcast<f32>(maxabs_bits[0]), params.voxel.w));
  let wv = val * r.weight;
  for (var i = range.x; i <= range.y; i++) {
    let fi = f32(i);
    let k = tof_weight(b, r.s0 + fi * r.ds);
    if (k == 0.0) { continue; }
    scatter_bilinear(r, i, wv * k, to_fixed);
  }
}

// Sinogram kernels with one invocation per LOR (nt ≤ MAX_SINO_BINS): each plane sample is loaded
// (forward) or scattered (back) once for all the bins whose kernel window holds it, instead of
// once per bin. Every (LOR, bin) value is the same sum in the same plane order as in `forward`,
// so the two paths, and list-mode events, agree bit for bit in the forward projection.
const MAX_SINO_BINS: u32 = 64u;

// First and last bin (clamped to 0 … nt−1, one bin of margin) whose window may hold s.
fn bin_window(s: f32, c: f32) -> vec2<i32> {
  let h = params.tof.z;
  let half = 0.5 * params.tof.w;
  let last = i32(params.tof.w) - 1;
  let a = (s - h - c) / params.tof.y + half;
  let b = (s + h - c) / params.tof.y + half;
  let lo = i32(clamp(floor(a), -2.0, f32(last) + 2.0)) - 1;
  let hi = i32(clamp(floor(b), -2.0, f32(last) + 2.0)) + 1;
  return vec2<i32>(max(lo, 0), min(hi, last));
}

@compute @workgroup_size(64)
fn forward_sino(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = linear_id(gid, nwg);
  let count = params.dims.w;
  if (n >= count) { return; }
  let nt = params.tofi.x;
  var acc: array<f32, 64>;
  let r = setup_ray(n);
  var scale = 0.0;
  if (r.valid) {
    scale = r.weight;
    let c = tofinfo[2u * n + 1u];
    let all = Bin(bin_at(0.0, c).lo, bin_at(f32(nt - 1u), c).hi, 0.0, 0.0);
    let range = tof_range(r, all);
    for (var i = range.x; i <= range.y; i++) {
      let fi = f32(i);
      let s = r.s0 + fi * r.ds;
      let win = bin_window(s, c);
      if (win.x > win.y) { continue; }
      let v = sample_bilinear(r, i);
      for (var t = win.x; t <= win.y; t++) {
        let k = tof_weight(bin_at(f32(t), c), s);
        if (k == 0.0) { continue; }
        acc[t] += k * v;
      }
    }
  }
  for (var t = 0u; t < nt; t++) {
    proj_out[params.tofi.z + n + params.tofi.y * t] = acc[t] * scale;
  }
}

@compute @workgroup_size(64)
fn back_sino(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = linear_id(gid, nwg);
  let count = params.dims.w;
  if (n >= count) { return; }
  let nt = params.tofi.x;
  var y: array<f32, 64>;
  var any = false;
  for (var t = 0u; t < nt; t++) {
    y[t] = proj_in[params.tofi.z + n + params.tofi.y * t];
    any = any || y[t] != 0.0;
  }
  if (!any) { return; }
  let r = setup_ray(n);
  if (!r.valid) { return; }
  let c = tofinfo[2u * n + 1u];
  let all = Bin(bin_at(0.0, c).lo, bin_at(f32(nt - 1u), c).hi, 0.0, 0.0);
  let range = tof_range(r, all);
  let to_fixed = pow2(fixed_exponent(bitcast<f32>(maxabs_bits[0]), params.voxel.w));
  for (var i = range.x; i <= range.y; i++) {
    let fi = f32(i);
    let s = r.s0 + fi * r.ds;
    let win = bin_window(s, c);
    var ysum = 0.0;
    for (var t = win.x; t <= win.y; t++) {
      if (y[t] == 0.0) { continue; }
      ysum += y[t] * tof_weight(bin_at(f32(t), c), s);
    }
    if (ysum == 0.0) { continue; }
    scatter_bilinear(r, i, r.weight * ysum, to_fixed);
  }
}

