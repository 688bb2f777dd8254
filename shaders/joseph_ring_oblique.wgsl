// Joseph projector for the span-1 sinograms of a circular ring scanner with oblique planes
// (ring pairs r1 ≠ r2): the 3d bench case and the fully 3-D data of ddipJoint / `petrel recon ddip`.
//
// Every LOR of radial bin r and view v, whatever its ring pair, lies above the direct family's
// in-plane chord (joseph_ring.wgsl: ub(i) = d·A + B + i·C on plane i of the dominant axis a), and
// its z is linear along that chord between the two rings: at plane i the chord fraction from
// crystal a is t(i) = t0 + i·t1 (per line), and the slice coordinate is uc = zc + dz·t (per plane
// of the sinogram). Joseph's bilinear sample factorises into the in-plane interpolation between
// columns jb, jb+1 (the same for every plane of the line) and the z interpolation between slices
// jc, jc+1. So the kernels work per LINE (r, v), not per LOR:
//
// - `fwd_lines`: one invocation per line; on each plane i it interpolates the line's column of
//   all nz slices once (2·nz image loads), then adds each sinogram plane's z-interpolated sample
//   into a private accumulator per plane. Per (LOR, plane step) that is ALU work on private memory
//   instead of Joseph's 4 storage loads.
// - `back_lines_z` (adjoint, first half): one invocation per line; the line's sinogram values
//   (all planes, weighted) are loaded once into private memory, and on each plane i their z
//   weights are summed per slice into Z[line, i, slice] (no atomics: each line owns its Z rows).
// - `back_rows_z` / `back_cols_z` (second half): one invocation per image row (x-dominant lines)
//   or column (y-dominant lines) of one slice, gathering Z of the lines that cross it with the
//   in-plane weights into a private array, as joseph_ring.wgsl's `back_lines` does for direct
//   planes; a fixed order everywhere, so back projections are deterministic.
//
// Forward and back use the same tables and the same arithmetic, so they are adjoint up to the
// order of float summation. The LOR weight (Joseph's path length per plane step) is
// w2d · sqrt(1 + (Δz_mm / L)²) with the in-plane step w2d of the family and the chord length L.

struct Params {
  dims: vec4<u32>,     // nx, ny, nz, flags (bit 0: add to the output instead of writing it)
  ring: vec4<u32>,     // nr, views of the operator, first plane of this pass, planes in this pass
  chunk: vec4<u32>,    // first local view of this Z chunk, views in it, planes in the sinogram, 0
  geom: vec4<f32>,     // N / π, R (mm), 0, 0
};

// Sinogram planes per pass (private accumulators per line). With 512 (one pass of the 3d case's
// 424 planes on 128² × 32) llvmpipe's back projection came out wrong by up to 50 % of its maximum
// while 322 planes, or 424 on 112², were right: cause not found; passes of 256 are right in every
// case tried (tests/projector/ring_oblique_test.ts keeps that case).
const MAX_PLANES = 256u;
const MAX_SLICES = 64u;   // image slices (private column per line)
const MAX_LINE = 256u;    // nx, ny (private row of back_rows_z / back_cols_z)

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> families: array<vec4<f32>, 4096>;  // A, B, C, ±w2d
@group(0) @binding(2) var<uniform> dtab: array<vec4<f32>, 1024>;      // d(rs) by radial bin
@group(0) @binding(3) var<uniform> planes: array<vec4<f32>, 4096>;    // zc, dz (slices), Δz mm, 0
@group(0) @binding(4) var<storage, read> lines: array<vec4<f32>>;     // t0, t1, 1/L (mm), 0
@group(0) @binding(5) var<storage, read> image_in: array<f32>;
@group(0) @binding(6) var<storage, read_write> proj_out: array<f32>;
@group(0) @binding(7) var<storage, read> proj_in: array<f32>;
@group(0) @binding(8) var<storage, read_write> zbuf: array<f32>;      // Z[line, i, slice]
@group(0) @binding(9) var<storage, read_write> image_out: array<f32>;

// The in-plane geometry of line n = j·nr + r (local view j, radial bin r).
struct Line {
  ub0: f32,
  slope: f32,
  w2d: f32,
  ax: bool,    // dominant axis x (planes i = ix) or y
  na: i32,
  nb: i32,
  sa: u32,
  sb: u32,
};

fn line_geometry(n: u32) -> Line {
  let nr = params.ring.x;
  let r = n % nr;
  let j = n / nr;
  let rs = i32(r) - i32(nr - 1u) / 2;
  let fam = families[2u * j + u32(rs & 1)];
  var g: Line;
  g.ub0 = d_at(r) * fam.x + fam.y;
  g.slope = fam.z;
  g.w2d = abs(fam.w);
  g.ax = fam.w > 0.0;
  let nx = i32(params.dims.x);
  let ny = i32(params.dims.y);
  g.na = select(ny, nx, g.ax);
  g.nb = select(nx, ny, g.ax);
  g.sa = select(params.dims.x, 1u, g.ax);
  g.sb = select(1u, params.dims.x, g.ax);
  return g;
}

// Index into the zero-padded private column: slot 0 is slice −1, slot k + 1 slice k, slots
// nz + 1 and nz + 2 slices nz and nz + 1 (all zero), so clamping uc to [−1, nz] keeps every
// sample outside the grid at zero without a branch.
fn z_cell(uc: f32, nzf: f32) -> vec2<f32> {
  let u = clamp(uc, -1.0, nzf);
  let fc = floor(u);
  return vec2<f32>(fc + 1.0, u - fc);
}

@compute @workgroup_size(64)
fn fwd_lines(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = linear_id(gid, nwg);
  let nr = params.ring.x;
  let nlines = nr * params.ring.y;
  if (n >= nlines) { return; }
  let p0 = params.ring.z;
  let np = params.ring.w;
  let nz = params.dims.z;
  let nzf = f32(nz);
  let sz = params.dims.x * params.dims.y;
  let g = line_geometry(n);
  let lt = lines[n];
  var yacc: array<f32, MAX_PLANES>;
  for (var p = 0u; p < np; p++) { yacc[p] = 0.0; }
  var col: array<f32, MAX_SLICES + 3u>;
  for (var k = 0u; k < nz + 3u; k++) { col[k] = 0.0; }
  let range = plane_range(g.na, g.ub0, g.slope, f32(g.nb));
  for (var i = range.x; i <= range.y; i++) {
    let ub = g.ub0 + f32(i) * g.slope;
    let fb = floor(ub);
    let tb = ub - fb;
    let jb = i32(fb);
    let base = u32(i) * g.sa;
    let in0 = jb >= 0;
    let in1 = jb + 1 < g.nb;
    let o0 = base + u32(max(jb, 0)) * g.sb;
    let o1 = base + u32(min(jb + 1, g.nb - 1)) * g.sb;
    for (var k = 0u; k < nz; k++) {
      var v = 0.0;
      if (in0) { v += image_in[o0 + k * sz] * (1.0 - tb); }
      if (in1) { v += image_in[o1 + k * sz] * tb; }
      col[k + 1u] = v;
    }
    let t = lt.x + f32(i) * lt.y;
    for (var p = 0u; p < np; p++) {
      let pl = planes[p0 + p];
      let c = z_cell(pl.x + pl.y * t, nzf);
      let jc = u32(c.x);
      yacc[p] += col[jc] * (1.0 - c.y) + col[jc + 1u] * c.y;
    }
  }
  for (var p = 0u; p < np; p++) {
    let dzl = planes[p0 + p].z * lt.z;
    proj_out[(p0 + p) * nlines + n] = yacc[p] * (g.w2d * sqrt(1.0 + dzl * dzl));
  }
}

@compute @workgroup_size(64)
fn back_lines_z(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
  let nr = params.ring.x;
  let nlines = nr * params.ring.y;
  let local = linear_id(gid, nwg);
  if (local >= nr * params.chunk.y) { return; }
  let n = params.chunk.x * nr + local;
  let p0 = params.ring.z;
  let np = params.ring.w;
  let nz = params.dims.z;
  let nzf = f32(nz);
  let add = (params.dims.w & 1u) != 0u;
  let g = line_geometry(n);
  let lt = lines[n];
  var yl: array<f32, MAX_PLANES>;
  for (var p = 0u; p < np; p++) {
    let dzl = planes[p0 + p].z * lt.z;
    yl[p] = proj_in[(p0 + p) * nlines + n] * (g.w2d * sqrt(1.0 + dzl * dzl));
  }
  let range = plane_range(g.na, g.ub0, g.slope, f32(g.nb));
  // Z rows of planes outside the range stay zero (the row/column gather may still visit them).
  let na_max = max(params.dims.x, params.dims.y);
  let zbase = local * na_max * nz;
  var zacc: array<f32, MAX_SLICES + 3u>;
  for (var i = 0; i < i32(na_max); i++) {
    let zrow = zbase + u32(i) * nz;
    if (i < range.x || i > range.y) {
      if (!add) {
        for (var k = 0u; k < nz; k++) { zbuf[zrow + k] = 0.0; }
      }
      continue;
    }
    for (var k = 0u; k < nz + 3u; k++) { zacc[k] = 0.0; }
    let t = lt.x + f32(i) * lt.y;
    for (var p = 0u; p < np; p++) {
      let pl = planes[p0 + p];
      let c = z_cell(pl.x + pl.y * t, nzf);
      let jc = u32(c.x);
      let y = yl[p];
      zacc[jc] += y * (1.0 - c.y);
      zacc[jc + 1u] += y * c.y;
    }
    if (add) {
      for (var k = 0u; k < nz; k++) { zbuf[zrow + k] = zbuf[zrow + k] + zacc[k + 1u]; }
    } else {
      for (var k = 0u; k < nz; k++) { zbuf[zrow + k] = zacc[k + 1u]; }
    }
  }
}

// The in-plane half of the adjoint for one image row (along_x) or column `line` of slice k:
// Σ over the chunk's lines crossing it of Z[line, i, k] times the in-plane weight of voxel i.
fn gather_z(line: i32, k: u32, along_x: bool) -> array<f32, MAX_LINE> {
  var acc: array<f32, MAX_LINE>;
  let nx = i32(params.dims.x);
  let ny = i32(params.dims.y);
  let nz = params.dims.z;
  let nr = params.ring.x;
  let half = i32(nr - 1u) / 2;
  let n_i = select(ny, nx, along_x);
  let last = f32(n_i - 1);
  let na_max = max(params.dims.x, params.dims.y);
  let j0 = params.chunk.x;
  for (var f = 2u * j0; f < 2u * (j0 + params.chunk.y); f++) {
    let fam = families[f];
    if ((fam.w > 0.0) != along_x) { continue; }
    let q = i32(f & 1u);
    let span = line_rs_span(line, fam, last, q, half, params.geom.xy);
    let lo = span.x;
    let hi = span.y;
    let row = ((f >> 1u) - j0) * nr;
    for (var rs = lo; rs <= hi; rs += 2) {
      let r = u32(rs + half);
      let u0 = d_at(r) * fam.x + fam.y;
      let planes_i = line_planes(line, u0, fam.z, n_i);
      let zb = (row + r) * na_max * nz + k;
      for (var i = planes_i.x; i <= planes_i.y; i++) {
        let ub = u0 + f32(i) * fam.z;
        let wb = cell_weight(ub, line);
        if (wb != 0.0) { acc[i] += zbuf[zb + u32(i) * nz] * wb; }
      }
    }
  }
  return acc;
}

@compute @workgroup_size(64)
fn back_rows_z(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = linear_id(gid, nwg);
  let nx = params.dims.x;
  let ny = params.dims.y;
  if (n >= ny * params.dims.z) { return; }
  let iy = n % ny;
  let k = n / ny;
  let acc = gather_z(i32(iy), k, true);
  let base = (k * ny + iy) * nx;
  if ((params.dims.w & 1u) != 0u) {
    for (var ix = 0u; ix < nx; ix++) { image_out[base + ix] = image_out[base + ix] + acc[ix]; }
  } else {
    for (var ix = 0u; ix < nx; ix++) { image_out[base + ix] = acc[ix]; }
  }
}

@compute @workgroup_size(64)
fn back_cols_z(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = linear_id(gid, nwg);
  let nx = params.dims.x;
  let ny = params.dims.y;
  if (n >= nx * params.dims.z) { return; }
  let ix = n % nx;
  let k = n / nx;
  let acc = gather_z(i32(ix), k, false);
  let base = k * nx * ny + ix;
  for (var iy = 0u; iy < ny; iy++) {
    image_out[base + iy * nx] = image_out[base + iy * nx] + acc[iy];
  }
}
