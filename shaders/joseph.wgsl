// Joseph's ray-driven projector for arbitrary LORs (start/end points in mm) and an image grid.
//
// Image layout: x fastest, index = i + nx * (j + ny * k); voxel (0,0,0) is centred at `origin`.
// A LOR is the segment p0 -> p1. Along its dominant axis a (largest |direction| component in
// mm) the ray is sampled on every voxel plane between p0 and p1; on each plane the image is
// interpolated bilinearly in the two other axes b < c (zero outside the grid) and the sample is
// weighted by voxel[a] / |cos|, the path length between planes.
//
// On Mesa's llvmpipe (Mesa 22) every storage-buffer access costs about the same fixed amount
// per 32-bit component and lane (a vec4 load costs four), so the kernels minimise the number of
// accesses per plane step rather than their size:
// - forward: one invocation per LOR, a pure gather; corners outside the grid are not loaded.
// - back: one invocation per LOR scattering into a 64-bit fixed-point accumulator with integer
//   atomics (two u32 words with carry). Integer addition is associative, so the result does not
//   depend on the order in which invocations run: back projections are bit-reproducible. The
//   scale is chosen so that one contribution fits the low word, making the high-word atomic
//   rare (only on carries and negative values).

struct Params {
  origin: vec4<f32>,   // xyz: centre of voxel (0,0,0) in mm
  voxel: vec4<f32>,    // xyz: voxel size in mm; w: log2 of the largest weight of one plane step
  dims: vec4<u32>,     // nx, ny, nz, number of LORs in this chunk
  flags: vec4<u32>,    // x: 1 when single slices are mirrored in the uniform slots below
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> lors: array<f32>;          // 6 floats per LOR

// forward bindings (the image is binding 7, below)
@group(0) @binding(3) var<storage, read_write> proj_out: array<f32>;

// back bindings
@group(0) @binding(4) var<storage, read> proj_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> accum: array<atomic<u32>>;  // 2 words per voxel
@group(0) @binding(6) var<storage, read> maxabs_bits: array<u32>;


@group(0) @binding(7) var<storage, read> image_in: array<f32>;

// Uniform-buffer mirrors of up to four z-slices (nx*ny <= 16384), used on CPU adapters where a
// uniform load costs about a tenth of a storage load (docs/performance.md). Uniform arrays have
// a 16-byte stride, hence vec4 packing of consecutive voxels.
@group(0) @binding(11) var<uniform> slice0: array<vec4<f32>, 4096>;
@group(0) @binding(12) var<uniform> slice1: array<vec4<f32>, 4096>;
@group(0) @binding(13) var<uniform> slice2: array<vec4<f32>, 4096>;
@group(0) @binding(14) var<uniform> slice3: array<vec4<f32>, 4096>;

fn slice_load(slot: u32, k: u32) -> f32 {
  switch slot {
    case 0u: { return slice0[k >> 2u][k & 3u]; }
    case 1u: { return slice1[k >> 2u][k & 3u]; }
    case 2u: { return slice2[k >> 2u][k & 3u]; }
    default: { return slice3[k >> 2u][k & 3u]; }
  }
}

// Line integral of a ray that stays on z-slice `slot` (c = z, no c-interpolation).
fn planar_sum(r: Ray, slot: u32) -> f32 {
  var acc = 0.0;
  for (var i = r.first; i <= r.last; i++) {
    let ub = r.ub0 + f32(i) * r.slope_b;
    let fb = floor(ub);
    let tb = ub - fb;
    let jb = i32(fb);
    let base = u32(i) * r.sa;
    var v = 0.0;
    if (jb >= 0) { v += slice_load(slot, base + u32(jb) * r.sb) * (1.0 - tb); }
    if (jb + 1 < r.nb) { v += slice_load(slot, base + u32(jb + 1) * r.sb) * tb; }
    acc += v;
  }
  return acc;
}

// Forward projection: a pure gather, one invocation per LOR. Corners outside the grid are
// skipped, so a single-slice (2-D) ray makes two loads per plane.
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
  if (params.flags.x != 0u && r.slope_c == 0.0 && r.sc == params.dims.x * params.dims.y &&
      fract(r.uc0) == 0.0 && r.uc0 >= 0.0 && r.uc0 < 4.0) {
    proj_out[n] = planar_sum(r, u32(r.uc0)) * r.weight;
    return;
  }
  var acc = 0.0;
  for (var i = r.first; i <= r.last; i++) {
    acc += sample_bilinear(r, i);
  }
  proj_out[n] = acc * r.weight;
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
  let to_fixed = pow2(fixed_exponent(bitcast<f32>(maxabs_bits[0]), params.voxel.w));
  let wv = val * r.weight;
  for (var i = r.first; i <= r.last; i++) {
    scatter_bilinear(r, i, wv, to_fixed);
  }
}

