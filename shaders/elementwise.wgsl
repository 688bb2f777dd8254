// Element-wise kernels on f32 arrays; one invocation per element, 1-D dispatch folded into 2-D.

struct Params {
  n: u32,
  a: f32,
  b: f32,
  c: f32,
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> y: array<f32>;

fn idx(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
}

// out = a
@compute @workgroup_size(64)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = idx(gid, nwg);
  if (i < params.n) { out[i] = params.a; }
}

// out = a * x
@compute @workgroup_size(64)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = idx(gid, nwg);
  if (i < params.n) { out[i] = params.a * x[i]; }
}

// out = a * x + b * y
@compute @workgroup_size(64)
fn axpby(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = idx(gid, nwg);
  if (i < params.n) { out[i] = params.a * x[i] + params.b * y[i]; }
}

// out = x * y
@compute @workgroup_size(64)
fn mul(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = idx(gid, nwg);
  if (i < params.n) { out[i] = x[i] * y[i]; }
}

// out = x / y where y > 0, else 0 (the EM convention for empty bins and zero sensitivity)
@compute @workgroup_size(64)
fn div_safe(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = idx(gid, nwg);
  if (i < params.n) {
    let d = y[i];
    out[i] = select(0.0, x[i] / d, d > 0.0);
  }
}

// out = a * out (in place; a buffer cannot be bound both read-only and writable in one dispatch)
@compute @workgroup_size(64)
fn scale_inplace(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = idx(gid, nwg);
  if (i < params.n) { out[i] = params.a * out[i]; }
}
