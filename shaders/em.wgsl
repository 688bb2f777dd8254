// Kernels of the Poisson-likelihood reconstruction family (EM, penalised EM, neighbourhood priors).
// One invocation per element; 1-D dispatches folded into 2-D (index = gid.x + gid.y * nwg.x * 64).
//
// Forward model per bin: ybar = m * (A x) + a (m, a optional, see `flags`).
// Penalised-EM closed form per voxel (De Pierro): maximise
//   c log x − s x − (A/2) x² + Bz x,   c = x_old · Aᵀ(m y / ybar),  s = sensitivity,
// whose positive root is x = [(Bz − s) + sqrt((Bz − s)² + 4 A c)] / (2 A), evaluated in the
// cancellation-free form when Bz − s < 0, and x = c / s when A = 0 (plain EM).

struct Params {
  n: u32,            // number of elements in this dispatch
  flags: u32,        // bit 0: multiplicative factors bound; bit 1: additive term bound;
                     // bit 2: anatomical weights bound
  offset: u32,       // element offset into `out_f` (log-likelihood terms)
  mode: u32,         // prior kind: 0 quadratic, 1 relative difference
  beta: f32,         // penalty / coupling strength
  gamma: f32,        // RDP edge-preservation parameter
  eps: f32,          // RDP denominator offset
  _pad: f32,
  dims: vec4<u32>,   // nx, ny, nz, number of neighbours K
};

@group(0) @binding(0) var<uniform> params: Params;

// Projection-domain bindings
@group(0) @binding(1) var<storage, read> proj: array<f32>;     // A x
@group(0) @binding(2) var<storage, read> mult: array<f32>;     // m
@group(0) @binding(3) var<storage, read> addv: array<f32>;     // a
@group(0) @binding(4) var<storage, read> data: array<f32>;     // y
@group(0) @binding(5) var<storage, read_write> out_f: array<f32>;

// Image-domain bindings
@group(0) @binding(6) var<storage, read_write> ximg: array<f32>;  // image updated in place
@group(0) @binding(7) var<storage, read> bp: array<f32>;          // Aᵀ(m y / ybar)
@group(0) @binding(8) var<storage, read> sens: array<f32>;        // s = Aᵀ m
@group(0) @binding(9) var<storage, read> coef_a: array<f32>;      // A (per voxel)
@group(0) @binding(10) var<storage, read> coef_b: array<f32>;     // Bz (per voxel), or z (x-step)

// Prior bindings
// Neighbour offsets (dx, dy, dz, weight) live in a uniform buffer: on llvmpipe a uniform load is
// ~10x cheaper than a storage load, and the prior loop reads one offset per neighbour.
@group(0) @binding(11) var<uniform> offsets: array<vec4<f32>, 26>;
@group(0) @binding(12) var<storage, read> anat: array<f32>;           // [K, nvox] pair weights
@group(0) @binding(13) var<storage, read> xin: array<f32>;            // image the prior sees
@group(0) @binding(14) var<storage, read_write> out_a: array<f32>;
@group(0) @binding(15) var<storage, read_write> out_b: array<f32>;

fn idx(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
}

fn ybar_at(i: u32) -> f32 {
  var v = proj[i];
  if ((params.flags & 1u) != 0u) { v = mult[i] * v; }
  if ((params.flags & 2u) != 0u) { v = v + addv[i]; }
  return v;
}

fn mult_at(i: u32) -> f32 {
  if ((params.flags & 1u) != 0u) { return mult[i]; }
  return 1.0;
}

// out = m ⊙ (A x) + a
@compute @workgroup_size(64)
fn expected(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = idx(gid, nwg);
  if (i < params.n) { out_f[i] = ybar_at(i); }
}

// out = m ⊙ y / ybar (0 where y = 0 or ybar ≤ 0): the EM ratio, back-projected by Aᵀ.
@compute @workgroup_size(64)
fn em_ratio(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = idx(gid, nwg);
  if (i >= params.n) { return; }
  let yb = ybar_at(i);
  let y = data[i];
  out_f[i] = select(0.0, mult_at(i) * y / yb, yb > 0.0 && y != 0.0);
}

// out[offset + i] = y log(ybar / y) − ybar + y (y > 0), −ybar (y = 0): the Poisson
// log-likelihood minus the data-only constant Σ (y log y − y), which keeps float32 sums precise.
// ybar ≤ 0 with y > 0 gives −inf.
@compute @workgroup_size(64)
fn loglik_terms(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = idx(gid, nwg);
  if (i >= params.n) { return; }
  let yb = ybar_at(i);
  let y = data[i];
  var t = -yb;
  if (y > 0.0) {
    if (yb > 0.0) {
      t = y * log(yb / y) - yb + y;
    } else {
      t = bitcast<f32>(0xff800000u);
    }
  }
  out_f[params.offset + i] = t;
}

// Positive root of A x² − (Bz − s) x − c = 0 (see the header); A = 0 gives the EM update c / s.
fn pen_solve(a: f32, bz: f32, s: f32, c: f32) -> f32 {
  if (!(a > 0.0)) {
    return select(0.0, c / s, s > 0.0);
  }
  let b = bz - s;
  let d = sqrt(b * b + 4.0 * a * c);
  if (b >= 0.0) {
    return (b + d) / (2.0 * a);
  }
  let den = d - b;
  return select(0.0, 2.0 * c / den, den > 0.0);
}

// x ← x ⊙ bp / s (0 where s ≤ 0): MLEM / OSEM.
@compute @workgroup_size(64)
fn em_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = idx(gid, nwg);
  if (i >= params.n) { return; }
  let s = sens[i];
  let c = ximg[i] * bp[i];
  ximg[i] = select(0.0, c / s, s > 0.0);
}

// x ← pen_solve(A_j, Bz_j, s_j, x_j bp_j) with per-voxel coefficients (MAP-EM).
@compute @workgroup_size(64)
fn pen_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = idx(gid, nwg);
  if (i >= params.n) { return; }
  ximg[i] = pen_solve(coef_a[i], coef_b[i], sens[i], ximg[i] * bp[i]);
}

// HQS x-step: A = β, Bz = β z (coef_b holds z).
@compute @workgroup_size(64)
fn xstep_update(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = idx(gid, nwg);
  if (i >= params.n) { return; }
  let beta = params.beta;
  ximg[i] = pen_solve(beta, beta * coef_b[i], sens[i], ximg[i] * bp[i]);
}

// x ← max(z, 0) (coef_b holds z).
@compute @workgroup_size(64)
fn clamp_copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = idx(gid, nwg);
  if (i >= params.n) { return; }
  ximg[i] = max(coef_b[i], 0.0);
}

// Pair potential φ(x_j, x_k) and its first two derivatives in x_j.
// mode 0: φ = ½ t²; mode 1 (RDP): φ = t² / (x_j + x_k + γ|t| + ε), t = x_j − x_k.
fn pair_terms(xj: f32, xk: f32) -> vec3<f32> {
  let t = xj - xk;
  if (params.mode == 0u) {
    return vec3<f32>(0.5 * t * t, t, 1.0);
  }
  let g = params.gamma;
  let at = abs(t);
  let sg = select(select(0.0, 1.0, t > 0.0), -1.0, t < 0.0);
  let d = max(xj + xk + g * at + params.eps, 1e-12);  // d³ stays a normal f32
  let e = xj + 3.0 * xk + g * at + 2.0 * params.eps;
  let phi = t * t / d;
  let d1 = t * e / (d * d);
  let d2 = ((e + t + g * at) * d - 2.0 * t * e * (1.0 + g * sg)) / (d * d * d);
  return vec3<f32>(phi, d1, max(d2, 0.0));
}

// Neighbour k of voxel (i, j, l); returns its flat index or 0xffffffff outside the grid.
fn neighbour(p: vec3<i32>, k: u32) -> u32 {
  let o = offsets[k];
  let q = p + vec3<i32>(i32(o.x), i32(o.y), i32(o.z));
  let dims = vec3<i32>(params.dims.xyz);
  if (any(q < vec3<i32>(0)) || any(q >= dims)) { return 0xffffffffu; }
  return u32(q.x + dims.x * (q.y + dims.y * q.z));
}

fn pair_weight(k: u32, j: u32) -> f32 {
  var w = offsets[k].w;
  if ((params.flags & 4u) != 0u) { w = w * anat[k * params.n + j]; }
  return w;
}

fn voxel_pos(j: u32) -> vec3<i32> {
  let nx = params.dims.x;
  let ny = params.dims.y;
  return vec3<i32>(i32(j % nx), i32((j / nx) % ny), i32(j / (nx * ny)));
}

// Σ_k w_jk (φ, ∂φ/∂x_j, ∂²φ/∂x_j²)(x_j, x_k) over the neighbours k of voxel j (value xj).
fn neighbour_sums(j: u32, xj: f32) -> vec3<f32> {
  let p = voxel_pos(j);
  var sx = 0.0;
  var sy = 0.0;
  var sz = 0.0;
  for (var k = 0u; k < params.dims.w; k++) {
    let nb = neighbour(p, k);
    if (nb == 0xffffffffu) { continue; }
    let w = pair_weight(k, j);
    let tr = pair_terms(xj, xin[nb]);
    sx += w * tr.x;
    sy += w * tr.y;
    sz += w * tr.z;
  }
  return vec3<f32>(sx, sy, sz);
}

// De Pierro coefficients of the prior R(x) = ½ Σ_j Σ_k w_jk φ(x_j, x_k) at the image xin:
//   κ_j = 2 Σ_k w_jk ∂²φ/∂x_j²,  g_j = Σ_k w_jk ∂φ/∂x_j,
//   out_a = β κ_j,  out_b = β (κ_j x_j − g_j).
// For the quadratic potential this is exactly De Pierro's separable surrogate (A = 2βΣw,
// Bz = βΣ w (x_j + x_k)); for RDP the curvature is frozen at the current image.
@compute @workgroup_size(64)
fn prior_coeffs(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = idx(gid, nwg);
  if (j >= params.n) { return; }
  let xj = xin[j];
  let s = neighbour_sums(j, xj);
  let kappa = 2.0 * s.z;
  out_a[j] = params.beta * kappa;
  out_b[j] = params.beta * (kappa * xj - s.y);
}

// out_a = ∂R/∂x_j (unscaled by β), out_b = ½ Σ_k w_jk φ(x_j, x_k) (Σ out_b = R(x)).
@compute @workgroup_size(64)
fn prior_eval(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = idx(gid, nwg);
  if (j >= params.n) { return; }
  let s = neighbour_sums(j, xin[j]);
  out_a[j] = s.y;
  out_b[j] = 0.5 * s.x;
}

// x ← x + β · bp (in place; WebGPU forbids binding one buffer as both read and read-write).
@compute @workgroup_size(64)
fn axpy_inplace(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = idx(gid, nwg);
  if (i >= params.n) { return; }
  ximg[i] = ximg[i] + params.beta * bp[i];
}

// out = exp(−proj) (⊙ m when bound): attenuation (× normalisation) factors from line integrals
// of μ.
@compute @workgroup_size(64)
fn atten_factors(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = idx(gid, nwg);
  if (i >= params.n) { return; }
  out_f[i] = mult_at(i) * exp(-proj[i]);
}
