// Joseph projector for the direct-plane sinograms of a circular ring scanner (every sinogram
// plane lies in one image slice: the DDIP stacks and volumes, the 2d and stack3 bench cases).
//
// No LOR end points are stored. For a circle of radius R with N crystals, the chord of radial
// offset rs (radial bin − (nr − 1)/2) in view v is the line p · u = d(rs), with normal
// u = (cos ψ, sin ψ), ψ = (2v + (rs mod 2)) π / N and d(rs) = −R sin(rs π / N): the two parities
// of rs form two families of parallel lines per view. Per family f = 2j + q (local view j,
// parity q) the host tabulates, in float64 rounded once to f32, the Joseph parametrisation
//   ub(i) = d · A + B + i · C     (coordinate along axis b on the plane i of axis a)
// and the path length per plane step (its sign: + when a = x, − when a = y); d(rs) is a second
// table. Forward and back read the same tables with the same arithmetic, so they are adjoint up to
// the order of float summation.
//
// - forward: one invocation per bin of one plane, a gather over planes (as joseph.wgsl).
// - back, two gather forms, neither with atomics, both with a fixed summation order
//   (deterministic), weighting each (line, voxel) pair exactly like the forward:
//   `ring_back` (GPUs): one invocation per voxel; per family the few radial bins whose bilinear
//   footprint covers the voxel are found from d⁻¹ (asin);
//   `ring_back_rows` + `ring_back_cols` (CPU adapters): one invocation per image row (or column)
//   accumulating its lines in private memory; per voxel it does the work of the atomic scatter
//   without the atomics, where the per-voxel form pays its per-family search 448 times a voxel.
//
// On CPU adapters (flags bit 0) the image slice (forward) and the plane's sinogram (back) are
// read from uniform-buffer mirrors, ~10× cheaper than storage loads on llvmpipe.

struct Params {
  origin: vec4<f32>,   // xy: centre of voxel (0,0) of the slice in mm
  voxel: vec4<f32>,    // xy: voxel size in mm (unused here); z: N / π; w: R in mm
  dims: vec4<u32>,     // nx, ny, slice (= plane) index k, flags (bit 0: uniform mirrors)
  ring: vec4<u32>,     // nr, views in this operator, families (2 × views), views per uniform slot
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> families: array<vec4<f32>, 4096>;  // A, B, C, ±weight
@group(0) @binding(2) var<uniform> dtab: array<vec4<f32>, 1024>;      // d(rs) by radial bin

// forward
@group(0) @binding(3) var<storage, read> image_in: array<f32>;        // the whole image
@group(0) @binding(4) var<uniform> slice_u: array<vec4<f32>, 4096>;   // mirror of slice k
@group(0) @binding(5) var<storage, read_write> proj_out: array<f32>;  // all planes' bins

// back
@group(0) @binding(6) var<storage, read> proj_in: array<f32>;         // all planes' bins
@group(0) @binding(7) var<uniform> sino0: array<vec4<f32>, 4096>;     // mirrors of plane k
@group(0) @binding(8) var<uniform> sino1: array<vec4<f32>, 4096>;
@group(0) @binding(9) var<uniform> sino2: array<vec4<f32>, 4096>;
@group(0) @binding(10) var<uniform> sino3: array<vec4<f32>, 4096>;
@group(0) @binding(11) var<storage, read_write> image_out: array<f32>; // the whole image

fn pixel(k: u32) -> f32 {
  if ((params.dims.w & 1u) != 0u) { return slice_u[k >> 2u][k & 3u]; }
  return image_in[params.dims.z * params.dims.x * params.dims.y + k];
}

@compute @workgroup_size(64)
fn ring_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = linear_id(gid, nwg);
  let nr = params.ring.x;
  if (n >= nr * params.ring.y) { return; }
  let r = n % nr;
  let j = n / nr;
  let rs = i32(r) - i32(nr - 1u) / 2;
  let fam = families[2u * j + u32(rs & 1)];
  let ub0 = d_at(r) * fam.x + fam.y;
  let slope = fam.z;
  let ax = fam.w > 0.0;
  let nx = i32(params.dims.x);
  let ny = i32(params.dims.y);
  let na = select(ny, nx, ax);
  let nb = select(nx, ny, ax);
  let sa = select(params.dims.x, 1u, ax);
  let sb = select(1u, params.dims.x, ax);
  let range = plane_range(na, ub0, slope, f32(nb));
  var acc = 0.0;
  for (var i = range.x; i <= range.y; i++) {
    let ub = ub0 + f32(i) * slope;
    let fb = floor(ub);
    let tb = ub - fb;
    let jb = i32(fb);
    let base = u32(i) * sa;
    var v = 0.0;
    if (jb >= 0) { v += pixel(base + u32(jb) * sb) * (1.0 - tb); }
    if (jb + 1 < nb) { v += pixel(base + u32(jb + 1) * sb) * tb; }
    acc += v;
  }
  proj_out[params.dims.z * nr * params.ring.y + n] = acc * abs(fam.w);
}

fn sino_at(l: u32) -> f32 {
  if ((params.dims.w & 1u) == 0u) { return proj_in[params.dims.z * params.ring.x * params.ring.y + l]; }
  let per = params.ring.w * params.ring.x;  // bins per uniform slot
  let slot = l / per;
  let k = l - slot * per;
  switch slot {
    case 0u: { return sino0[k >> 2u][k & 3u]; }
    case 1u: { return sino1[k >> 2u][k & 3u]; }
    case 2u: { return sino2[k >> 2u][k & 3u]; }
    default: { return sino3[k >> 2u][k & 3u]; }
  }
}

@compute @workgroup_size(64)
fn ring_back(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = linear_id(gid, nwg);
  let nx = params.dims.x;
  let ny = params.dims.y;
  if (n >= nx * ny) { return; }
  let ix = i32(n % nx);
  let iy = i32(n / nx);
  let nr = params.ring.x;
  let half = i32(nr - 1u) / 2;
  var acc = 0.0;
  for (var f = 0u; f < params.ring.z; f++) {
    let fam = families[f];
    let ax = fam.w > 0.0;
    let i = select(iy, ix, ax);
    let ib = select(ix, iy, ax);
    let q = i32(f & 1u);
    // ub ∈ (ib − 1, ib + 1)  ⇔  d·A ∈ (ib − 1 − B − iC, ib + 1 − B − iC); widen a little and let
    // the exact test below decide.
    let c = f32(ib) - fam.y - f32(i) * fam.z;
    let span = rs_span(c - 1.0, c + 1.0, fam.x, q, half, params.voxel.zw);
    let lo = span.x;
    let hi = span.y;
    let row = (f >> 1u) * nr;
    for (var rs = lo; rs <= hi; rs += 2) {
      let r = u32(rs + half);
      let y = sino_at(row + r);
      let ub = (d_at(r) * fam.x + fam.y) + f32(i) * fam.z;
      acc += (y * abs(fam.w)) * cell_weight(ub, ib);
    }
  }
  image_out[params.dims.z * nx * ny + n] = acc;
}

// Back projection for CPU adapters: one invocation per image row (x-dominant families) or column
// (y-dominant families) of one slice, accumulating the line's samples in a private array. Each
// (line, voxel) pair is visited once, like the atomic scatter, but private memory needs no
// atomics: `ring_back_rows` writes the slice, `ring_back_cols` then adds its part in place.
const MAX_LINE = 256u;

fn back_lines(line: i32, along_x: bool) -> array<f32, MAX_LINE> {
  var acc: array<f32, MAX_LINE>;
  let nx = i32(params.dims.x);
  let ny = i32(params.dims.y);
  let nr = params.ring.x;
  let half = i32(nr - 1u) / 2;
  // along_x: the row iy = line, planes i = ix (families with a = x); else the column ix = line.
  let n_i = select(ny, nx, along_x);
  let last = f32(n_i - 1);
  for (var f = 0u; f < params.ring.z; f++) {
    let fam = families[f];
    if ((fam.w > 0.0) != along_x) { continue; }
    let q = i32(f & 1u);
    let span = line_rs_span(line, fam, last, q, half, params.voxel.zw);
    let lo = span.x;
    let hi = span.y;
    let row = (f >> 1u) * nr;
    let w = abs(fam.w);
    for (var rs = lo; rs <= hi; rs += 2) {
      let r = u32(rs + half);
      let val = sino_at(row + r) * w;
      if (val == 0.0) { continue; }
      let u0 = d_at(r) * fam.x + fam.y;
      let planes_i = line_planes(line, u0, fam.z, n_i);
      for (var i = planes_i.x; i <= planes_i.y; i++) {
        let ub = u0 + f32(i) * fam.z;
        let wb = cell_weight(ub, line);
        acc[i] += val * wb;
      }
    }
  }
  return acc;
}

@compute @workgroup_size(64)
fn ring_back_rows(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
  let iy = linear_id(gid, nwg);
  let nx = params.dims.x;
  if (iy >= params.dims.y) { return; }
  let acc = back_lines(i32(iy), true);
  let base = params.dims.z * nx * params.dims.y + iy * nx;
  for (var ix = 0u; ix < nx; ix++) { image_out[base + ix] = acc[ix]; }
}

@compute @workgroup_size(64)
fn ring_back_cols(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
  let ix = linear_id(gid, nwg);
  let nx = params.dims.x;
  if (ix >= nx) { return; }
  let acc = back_lines(i32(ix), false);
  let base = params.dims.z * nx * params.dims.y + ix;
  for (var iy = 0u; iy < params.dims.y; iy++) {
    image_out[base + iy * nx] = image_out[base + iy * nx] + acc[iy];
  }
}
