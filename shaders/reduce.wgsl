// Deterministic reductions. Every partial sum covers a fixed block of indices and is reduced in
// a fixed tree order, so results are bit-identical from run to run on the same adapter.

struct Params {
  n: u32,          // number of elements
  block: u32,      // elements per workgroup (multiple of 64)
  _pad0: u32,
  _pad1: u32,
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
@group(0) @binding(4) var<storage, read_write> max_bits: array<atomic<u32>>;

var<workgroup> scratch: array<f32, 64>;

fn tree_reduce(lid: u32, v: f32) -> f32 {
  scratch[lid] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lid < s) {
      scratch[lid] += scratch[lid + s];
    }
    workgroupBarrier();
  }
  return scratch[0];
}

// partials[w] = sum over block w of x[i] * y[i]
@compute @workgroup_size(64)
fn dot_partial(@builtin(workgroup_id) wid: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
  let w = wid.x + wid.y * nwg.x;
  let start = w * params.block;
  let stop = min(start + params.block, params.n);
  var acc = 0.0;
  for (var i = start + lid.x; i < stop; i += 64u) {
    acc += x[i] * y[i];
  }
  let total = tree_reduce(lid.x, acc);
  if (lid.x == 0u) { partials[w] = total; }
}

// partials[w] = sum over block w of x[i]
@compute @workgroup_size(64)
fn sum_partial(@builtin(workgroup_id) wid: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
  let w = wid.x + wid.y * nwg.x;
  let start = w * params.block;
  let stop = min(start + params.block, params.n);
  var acc = 0.0;
  for (var i = start + lid.x; i < stop; i += 64u) {
    acc += x[i];
  }
  let total = tree_reduce(lid.x, acc);
  if (lid.x == 0u) { partials[w] = total; }
}

// max_bits[0] = max over i of bits(|x[i]|). For non-negative floats the bit patterns order like
// the values, and NaN/Inf map above every finite value, so this also detects non-finite input.
@compute @workgroup_size(64)
fn maxabs(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * 64u;
  var m = 0u;
  for (var i = gid.x; i < params.n; i += stride) {
    m = max(m, bitcast<u32>(abs(x[i])));
  }
  atomicMax(&max_bits[0], m);
}
