// Separable Gaussian filtering: a 1-D convolution along one axis with zero padding.
// The kernel is symmetric, so with zero padding the operator is self-adjoint.

struct Params {
  dims: vec4<u32>,   // nx, ny, nz, axis (0 = x, 1 = y, 2 = z)
  radius: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;   // 2 * radius + 1 taps

@compute @workgroup_size(64)
fn convolve_axis(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = gid.x + gid.y * nwg.x * 64u;
  let nx = params.dims.x;
  let ny = params.dims.y;
  let nz = params.dims.z;
  if (k >= nx * ny * nz) { return; }
  let coord = vec3<u32>(k % nx, (k / nx) % ny, k / (nx * ny));
  let axis = params.dims.w;
  let stride = select(select(nx * ny, nx, axis == 1u), 1u, axis == 0u);
  let n_axis = i32(params.dims[axis]);
  let pos = i32(coord[axis]);
  let r = i32(params.radius);
  var acc = 0.0;
  for (var t = -r; t <= r; t++) {
    let p = pos + t;
    if (p >= 0 && p < n_axis) {
      acc += weights[u32(t + r)] * x[u32(i32(k) + t * i32(stride))];
    }
  }
  out[k] = acc;
}
