/**
 * petrel's projectors beside parallelproj's C++/OpenMP Joseph projector, in one run, on the very
 * same LORs and image, repetitions alternating between the two (issue 18's projector target:
 * pair time ≤ 0.5× parallelproj's). Ratios from one run are the figure on a loaded machine.
 *
 *   deno run -A bench/parallelproj_compare.ts --parallelproj-lib /tmp/pp_build/libparallelproj.so
 *   ... --cases 2d,stack3 --repeats 10 --threads 2 --projectors joseph,ring --json
 *
 * parallelproj is not part of petrel: build its CPU library in a throwaway folder (see
 * {@linkcode BUILD_HINT}). `bench/parallelproj_harness.c` (petrel's own code) is compiled with
 * `cc` into a temporary folder and loads the library with dlopen; it runs in its own process with
 * `OMP_NUM_THREADS` = `--threads` and `OMP_WAIT_POLICY=passive` (unless set), and petrel's
 * llvmpipe gets `LP_NUM_THREADS` = `--threads` unless it is set already.
 *
 * Each case first projects a smooth test image with both and reports how far petrel's forward
 * projection is from parallelproj's (and its back projection of parallelproj's sinogram from
 * parallelproj's back projection): `max rel` = max |Δ| / max |parallelproj|, `mean rel` =
 * Σ |Δ| / Σ |parallelproj|; the back projection also without each slice's border rows and
 * columns, where the two differ by convention (how far a ray is followed beyond the outermost
 * voxel centres). These runs double as warm-up. Then fwd, back and pair are timed with
 * the order of the sides rotated every repetition; the table gives medians of wall and process
 * CPU time and petrel / parallelproj ratios.
 *
 * Every petrel timing above ends with one wait for the device, and Deno 2.9's WebGPU answers a
 * wait (`onSubmittedWorkDone`, `mapAsync`) no sooner than ~10 ms after it is asked: its poll loop
 * sleeps 10 ms before it looks again. That fixed wait dominates the small 2d case. `stream` times
 * what an iterative reconstruction does instead: `--stream K` pairs submitted back to back (one
 * submit each) and one wait, per pair; parallelproj's side is K pairs in a row, per pair.
 *
 * @module
 */

import { cpuMs, median, scannerCases, selectCases } from "./_timing.ts";
import { defaultContext, type GpuArray, type GpuContext } from "../core/gpu/context.ts";
import { MMR_VOXEL_MM } from "../core/geometry/scanner.ts";
import type { ImageGrid } from "../core/geometry/grid.ts";
import type { LorSet } from "../core/geometry/lors.ts";
import { JosephProjector } from "../core/projector/joseph.ts";
import type { LinearOperator } from "../core/projector/operator.ts";
import { ringProjector, ringProjectorUnsupported } from "../core/projector/ring_oblique.ts";

/** How to get the library this benchmark needs (printed when `--parallelproj-lib` is missing). */
export const BUILD_HINT = [
  "bench/parallelproj_compare.ts needs parallelproj's CPU library: --parallelproj-lib PATH/libparallelproj.so",
  "Build it in a throwaway folder (nothing of it belongs in petrel), e.g.:",
  "  git clone https://github.com/KUL-recon-lab/libparallelproj /tmp/pp_src",
  "  cmake -S /tmp/pp_src -B /tmp/pp_build -DCMAKE_BUILD_TYPE=Release -DUSE_CUDA=OFF -DBUILD_PYTHON=OFF",
  "  cmake --build /tmp/pp_build -j2",
  "(its CMakeLists asks for CMake ≥ 3.31; with an older CMake lower cmake_minimum_required in the copy)",
  "then: deno run -A bench/parallelproj_compare.ts --parallelproj-lib /tmp/pp_build/libparallelproj.so",
].join("\n");

/** Repeats per case (medians over these), alternating between the sides. */
const CASES = scannerCases({
  "2d": { repeats: 20 },
  stack3: { repeats: 10 },
  "3d": { repeats: 1 },
});

const PROJECTORS = ["joseph", "ring"] as const;

/** Parsed command line of this benchmark. */
export interface CompareOptions {
  /** Path of libparallelproj.so (undefined: print {@linkcode BUILD_HINT}, exit 2). */
  lib?: string;
  cases: string[];
  projectors: string[];
  /** Overrides every case's repeats. */
  repeats?: number;
  threads: number;
  /** Pairs per wait in the `stream` timing (default 10). */
  stream: number;
  json: boolean;
}

/** A usage error: the message is printed and the process exits 2. */
export class UsageError extends Error {}

/**
 * Parses the arguments. Unknown flags, cases and projectors throw {@linkcode UsageError} before
 * anything runs.
 *
 * @example
 * ```ts
 * parseCompareArgs(["--parallelproj-lib", "/tmp/pp_build/libparallelproj.so", "--cases", "2d"]);
 * // { lib: "/tmp/pp_build/libparallelproj.so", cases: ["2d"], threads: 2, ... }
 * ```
 */
export function parseCompareArgs(args: readonly string[]): CompareOptions {
  const o: CompareOptions = {
    cases: CASES.map((c) => c.name),
    projectors: [...PROJECTORS],
    threads: 2,
    stream: 10,
    json: false,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined || v.startsWith("--")) throw new UsageError(`${a} needs a value`);
      return v;
    };
    const positive = (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) {
        throw new UsageError(`${a} must be a positive integer, got ${v}`);
      }
      return n;
    };
    if (a === "--parallelproj-lib") o.lib = value();
    else if (a === "--cases") o.cases = value().split(",");
    else if (a === "--projectors") o.projectors = value().split(",");
    else if (a === "--repeats") o.repeats = positive(value());
    else if (a === "--threads") o.threads = positive(value());
    else if (a === "--stream") o.stream = positive(value());
    else if (a === "--json") o.json = true;
    else throw new UsageError(`unknown argument ${a}`);
  }
  try {
    selectCases(CASES, o.cases);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const bad = o.projectors.filter((p) => !(PROJECTORS as readonly string[]).includes(p));
  if (bad.length) throw new UsageError(`unknown projector(s) ${bad}; choose from ${PROJECTORS}`);
  return o;
}

/** max |a−b| / max |ref| and Σ|a−b| / Σ|ref|. */
export function relativeDifference(
  a: Float32Array,
  ref: Float32Array,
): { maxRel: number; meanRel: number } {
  if (a.length !== ref.length) throw new RangeError(`lengths differ: ${a.length} vs ${ref.length}`);
  let maxD = 0, maxR = 0, sumD = 0, sumR = 0;
  for (let n = 0; n < a.length; n++) {
    const d = Math.abs(a[n] - ref[n]), r = Math.abs(ref[n]);
    if (d > maxD) maxD = d;
    if (r > maxR) maxR = r;
    sumD += d;
    sumR += r;
  }
  return { maxRel: maxR > 0 ? maxD / maxR : maxD, meanRel: sumR > 0 ? sumD / sumR : sumD };
}

/**
 * A smooth, non-uniform test image (x fastest): 0.25 everywhere, so that the forward comparison
 * covers the grid's border voxels too, plus a modulated cylinder.
 */
function testImage(grid: ImageGrid): Float32Array {
  const [nx, ny, nz] = grid.shape;
  const x = new Float32Array(nx * ny * nz).fill(0.25);
  const r2 = (0.45 * nx) ** 2;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const u = i - (nx - 1) / 2, v = j - (ny - 1) / 2;
        if (u * u + v * v > r2) continue;
        x[i + nx * (j + ny * k)] += 1 + 0.5 * Math.sin(0.11 * i + 0.3 * k) * Math.cos(0.07 * j);
      }
    }
  }
  return x;
}

type Op = "fwd" | "back" | "pair" | "stream";

interface Timed {
  wall: number;
  cpu: number;
}

/** One side of the comparison: its three operations, each resolving when done. */
interface Side {
  name: string;
  fwd(): Promise<Timed>;
  back(): Promise<Timed>;
  pair(): Promise<Timed>;
  /** `--stream` pairs in a row, per pair. */
  stream(): Promise<Timed>;
}

/** The compiled harness running parallelproj in a child process, one command per line. */
class Harness {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf = "";
  #dec = new TextDecoder();
  #enc = new TextEncoder();

  constructor(exe: string, args: string[], threads: number) {
    this.#child = new Deno.Command(exe, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
      // Passive waiting unless set: OpenMP threads that spin at barriers would count spin time as
      // parallelproj's CPU time and take cores from the other side on a loaded machine.
      env: {
        OMP_NUM_THREADS: String(threads),
        OMP_WAIT_POLICY: Deno.env.get("OMP_WAIT_POLICY") ?? "passive",
      },
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#reader = this.#child.stdout.getReader();
  }

  async ask(cmd: string): Promise<string> {
    await this.#writer.write(this.#enc.encode(cmd + "\n"));
    for (;;) {
      const nl = this.#buf.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        if (!line.startsWith("ok")) throw new Error(`parallelproj harness: ${line}`);
        return line;
      }
      const { value, done } = await this.#reader.read();
      if (done) throw new Error(`parallelproj harness exited while answering "${cmd}"`);
      this.#buf += this.#dec.decode(value, { stream: true });
    }
  }

  async timed(cmd: string): Promise<Timed> {
    const [, wall, cpu] = (await this.ask(cmd)).split(" ");
    return { wall: Number(wall), cpu: Number(cpu) };
  }

  async close(): Promise<void> {
    await this.#writer.write(this.#enc.encode("quit\n"));
    await this.#writer.close();
    this.#reader.releaseLock();
    await this.#child.stdout.cancel();
    await this.#child.status;
  }
}

/** Compiles bench/parallelproj_harness.c into `dir`; returns the executable's path. */
async function buildHarness(dir: string): Promise<string> {
  const src = new URL("./parallelproj_harness.c", import.meta.url).pathname;
  const exe = `${dir}/parallelproj_harness`;
  let out;
  try {
    out = await new Deno.Command("cc", { args: ["-O2", "-o", exe, src, "-ldl"] }).output();
  } catch (e) {
    throw new UsageError(`cannot run cc to build ${src}: ${(e as Error).message}`);
  }
  if (!out.success) {
    throw new UsageError(`cc failed on ${src}:\n${new TextDecoder().decode(out.stderr)}`);
  }
  return exe;
}

/** Times `fn` plus waiting for the device, as one wall/CPU figure. */
async function timeOnce(ctx: GpuContext, fn: () => void): Promise<Timed> {
  const c0 = cpuMs();
  const t0 = performance.now();
  fn();
  await ctx.finish();
  return { wall: performance.now() - t0, cpu: cpuMs() - c0 };
}

/**
 * The LORs and grid in parallelproj's axis order. petrel stores images x fastest
 * (`i + nx·(j + ny·k)`), parallelproj C order (`n1·n2·i0 + n2·i1 + i2`), so the same memory is
 * parallelproj's image with axes (z, y, x): coordinates, shape, origin and voxel size reversed.
 */
function writeParallelprojInputs(dir: string, lors: LorSet, grid: ImageGrid, x: Float32Array) {
  const start = new Float32Array(3 * lors.count), end = new Float32Array(3 * lors.count);
  const e = lors.endpoints;
  for (let n = 0; n < lors.count; n++) {
    for (let c = 0; c < 3; c++) {
      start[3 * n + c] = e[6 * n + 2 - c];
      end[3 * n + c] = e[6 * n + 5 - c];
    }
  }
  Deno.writeFileSync(`${dir}/start.f32`, new Uint8Array(start.buffer));
  Deno.writeFileSync(`${dir}/end.f32`, new Uint8Array(end.buffer));
  Deno.writeFileSync(`${dir}/image.f32`, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  const rev = (v: readonly number[]) => [v[2], v[1], v[0]].map(String);
  return [
    dir,
    String(lors.count),
    ...rev(grid.shape),
    ...rev(grid.originMm),
    ...rev(grid.voxelSizeMm),
  ];
}

/** One row of the table: one petrel projector against parallelproj on one case. */
export interface CompareRow {
  case: string;
  projector: string;
  lors: number;
  voxels: number;
  repeats: number;
  threads: number;
  petrel_fwd_ms: number;
  petrel_back_ms: number;
  petrel_pair_ms: number;
  pp_fwd_ms: number;
  pp_back_ms: number;
  pp_pair_ms: number;
  ratio_fwd: number;
  ratio_back: number;
  /** petrel / parallelproj pair wall time, the figure (target ≤ 0.5). */
  ratio_pair: number;
  petrel_fwd_cpu_ms: number;
  petrel_back_cpu_ms: number;
  petrel_pair_cpu_ms: number;
  pp_fwd_cpu_ms: number;
  pp_back_cpu_ms: number;
  pp_pair_cpu_ms: number;
  ratio_fwd_cpu: number;
  ratio_back_cpu: number;
  /** The same from process CPU time (all threads), steadier than wall time under heavy load. */
  ratio_pair_cpu: number;
  /** Pairs per wait of the stream timing. */
  stream: number;
  /** Wall time per pair with `stream` pairs submitted back to back and one wait (as in a loop). */
  petrel_stream_pair_ms: number;
  /** parallelproj's wall time per pair over `stream` pairs in a row. */
  pp_stream_pair_ms: number;
  /** petrel / parallelproj per-pair wall time in the stream timing. */
  ratio_stream_pair: number;
  /** The same from process CPU time. */
  ratio_stream_pair_cpu: number;
  fwd_max_rel: number;
  fwd_mean_rel: number;
  back_max_rel: number;
  back_mean_rel: number;
  /** Back-projection agreement without the in-plane border voxels (where the conventions differ). */
  back_inner_max_rel: number;
  adapter: string;
}

/** Runs the comparison; returns the process exit code (2 on usage errors). */
export async function main(args: string[]): Promise<number> {
  let o: CompareOptions;
  try {
    o = parseCompareArgs(args);
    if (o.lib === undefined) {
      console.error(BUILD_HINT);
      return 2;
    }
    try {
      if (!Deno.statSync(o.lib).isFile) throw new Error("not a file");
    } catch (e) {
      throw new UsageError(
        `--parallelproj-lib ${o.lib}: ${(e as Error).message}\n\n${BUILD_HINT}`,
      );
    }
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`parallelproj_compare: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const tmp = await Deno.makeTempDir({ prefix: "petrel_ppcmp_" });
  try {
    let exe;
    try {
      exe = await buildHarness(tmp);
    } catch (e) {
      if (e instanceof UsageError) {
        console.error(`parallelproj_compare: ${e.message}`);
        return 2;
      }
      throw e;
    }
    // llvmpipe reads LP_NUM_THREADS when the adapter is created: match parallelproj's threads.
    if (Deno.env.get("LP_NUM_THREADS") === undefined) {
      Deno.env.set("LP_NUM_THREADS", String(o.threads));
    }
    const ctx = await defaultContext();
    const rows = await runCases(ctx, exe, tmp, o);
    print(rows, o, ctx);
    return 0;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

async function runCases(
  ctx: GpuContext,
  exe: string,
  tmp: string,
  o: CompareOptions,
): Promise<CompareRow[]> {
  const rows: CompareRow[] = [];
  for (const c of selectCases(CASES, o.cases)) {
    const repeats = o.repeats ?? c.repeats;
    const scanner = c.scanner();
    const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
    const lors = scanner.lors();
    const image = testImage(grid);
    const ppArgs = [o.lib!, ...writeParallelprojInputs(tmp, lors, grid, image)];
    const pp = new Harness(exe, ppArgs, o.threads);
    try {
      // Agreement (and warm-up): parallelproj forward, then back projection of its sinogram.
      await pp.ask("pair");
      await pp.ask(`dump ${tmp}/out`);
      const ppFwd = new Float32Array(Deno.readFileSync(`${tmp}/out.fwd`).buffer);
      const ppBack = new Float32Array(Deno.readFileSync(`${tmp}/out.back`).buffer);
      const ppSide: Side = {
        name: "parallelproj",
        fwd: () => pp.timed("fwd"),
        back: () => pp.timed("back"),
        pair: () => pp.timed("pair"),
        stream: async () => {
          const t = { wall: 0, cpu: 0 };
          for (let k = 0; k < o.stream; k++) {
            const one = await pp.timed("pair");
            t.wall += one.wall / o.stream;
            t.cpu += one.cpu / o.stream;
          }
          return t;
        },
      };
      const ringWhy = ringProjectorUnsupported(scanner, grid);
      const petrel: { side: Side; agree: Agreement; destroy: () => void }[] = [];
      for (const kind of o.projectors) {
        if (kind === "ring" && ringWhy) continue;
        const P = kind === "ring"
          ? ringProjector(ctx, scanner, grid)
          : new JosephProjector(ctx, lors, grid);
        const x = ctx.array(P.inShape, image);
        const y = ctx.array(P.outShape);
        const b = ctx.array(P.inShape);
        const agree = await agreement(ctx, P, x, y, b, ppFwd, ppBack);
        petrel.push({
          side: {
            name: kind,
            fwd: () => timeOnce(ctx, () => ctx.run((rec) => P.apply(rec, x, y))),
            back: () => timeOnce(ctx, () => ctx.run((rec) => P.adjoint(rec, y, b))),
            pair: () =>
              timeOnce(ctx, () =>
                ctx.run((rec) => {
                  P.apply(rec, x, y);
                  P.adjoint(rec, y, b);
                })),
            stream: async () => {
              const t = await timeOnce(ctx, () => {
                for (let k = 0; k < o.stream; k++) {
                  ctx.run((rec) => {
                    P.apply(rec, x, y);
                    P.adjoint(rec, y, b);
                  });
                }
              });
              return { wall: t.wall / o.stream, cpu: t.cpu / o.stream };
            },
          },
          agree,
          destroy: () => {
            P.destroy();
            x.destroy();
            y.destroy();
            b.destroy();
          },
        });
      }
      // Timed runs: every repetition rotates the order of the sides.
      const sides = [ppSide, ...petrel.map((p) => p.side)];
      const times = new Map<string, Record<Op, Timed[]>>(
        sides.map((s) => [s.name, { fwd: [], back: [], pair: [], stream: [] }]),
      );
      for (const op of ["fwd", "back", "pair", "stream"] as const) {
        for (let r = 0; r < repeats; r++) {
          for (let s = 0; s < sides.length; s++) {
            const side = sides[(s + r) % sides.length];
            times.get(side.name)![op].push(await side[op]());
          }
        }
      }
      const med = (name: string, op: Op, key: keyof Timed) =>
        median(times.get(name)![op].map((t) => t[key]));
      for (const p of petrel) {
        const n = p.side.name;
        const row: CompareRow = {
          case: c.name,
          projector: n,
          lors: lors.count,
          voxels: image.length,
          repeats,
          threads: o.threads,
          petrel_fwd_ms: med(n, "fwd", "wall"),
          petrel_back_ms: med(n, "back", "wall"),
          petrel_pair_ms: med(n, "pair", "wall"),
          pp_fwd_ms: med("parallelproj", "fwd", "wall"),
          pp_back_ms: med("parallelproj", "back", "wall"),
          pp_pair_ms: med("parallelproj", "pair", "wall"),
          ratio_fwd: med(n, "fwd", "wall") / med("parallelproj", "fwd", "wall"),
          ratio_back: med(n, "back", "wall") / med("parallelproj", "back", "wall"),
          ratio_pair: med(n, "pair", "wall") / med("parallelproj", "pair", "wall"),
          petrel_fwd_cpu_ms: med(n, "fwd", "cpu"),
          petrel_back_cpu_ms: med(n, "back", "cpu"),
          petrel_pair_cpu_ms: med(n, "pair", "cpu"),
          pp_fwd_cpu_ms: med("parallelproj", "fwd", "cpu"),
          pp_back_cpu_ms: med("parallelproj", "back", "cpu"),
          pp_pair_cpu_ms: med("parallelproj", "pair", "cpu"),
          ratio_fwd_cpu: med(n, "fwd", "cpu") / med("parallelproj", "fwd", "cpu"),
          ratio_back_cpu: med(n, "back", "cpu") / med("parallelproj", "back", "cpu"),
          ratio_pair_cpu: med(n, "pair", "cpu") / med("parallelproj", "pair", "cpu"),
          stream: o.stream,
          petrel_stream_pair_ms: med(n, "stream", "wall"),
          pp_stream_pair_ms: med("parallelproj", "stream", "wall"),
          ratio_stream_pair: med(n, "stream", "wall") / med("parallelproj", "stream", "wall"),
          ratio_stream_pair_cpu: med(n, "stream", "cpu") / med("parallelproj", "stream", "cpu"),
          fwd_max_rel: p.agree.fwd.maxRel,
          fwd_mean_rel: p.agree.fwd.meanRel,
          back_max_rel: p.agree.back.maxRel,
          back_mean_rel: p.agree.back.meanRel,
          back_inner_max_rel: p.agree.backInner.maxRel,
          adapter: ctx.adapter.description + (ctx.adapter.isFallback ? " (fallback)" : ""),
        };
        rows.push(row);
        if (o.json) console.log(JSON.stringify(row));
      }
      for (const p of petrel) p.destroy();
    } finally {
      await pp.close();
    }
  }
  return rows;
}

interface Agreement {
  fwd: { maxRel: number; meanRel: number };
  back: { maxRel: number; meanRel: number };
  /** The back projection without the outermost rows and columns of each slice. */
  backInner: { maxRel: number; meanRel: number };
}

/** petrel's forward of `x` against parallelproj's, and its back projection of parallelproj's sinogram. */
async function agreement(
  ctx: GpuContext,
  P: LinearOperator,
  x: GpuArray,
  y: GpuArray,
  b: GpuArray,
  ppFwd: Float32Array,
  ppBack: Float32Array,
): Promise<Agreement> {
  ctx.run((rec) => P.apply(rec, x, y));
  const fwd = relativeDifference(await y.read(), ppFwd);
  y.write(ppFwd);
  ctx.run((rec) => P.adjoint(rec, y, b));
  const bb = await b.read();
  const back = relativeDifference(bb, ppBack);
  const [nx, ny] = P.inShape;
  const inner = (v: Float32Array) =>
    v.filter((_, n) => {
      const i = n % nx, j = Math.floor(n / nx) % ny;
      return i > 0 && j > 0 && i < nx - 1 && j < ny - 1;
    });
  const backInner = relativeDifference(inner(bb), inner(ppBack));
  return { fwd, back, backInner };
}

function print(rows: CompareRow[], o: CompareOptions, ctx: GpuContext) {
  if (o.json) return;
  const f = (v: number, d = 1) => +v.toFixed(d);
  console.log(
    `petrel (${ctx.adapter.description}${ctx.adapter.isFallback ? ", fallback" : ""}) ` +
      `vs parallelproj C++/OpenMP, ${o.threads} threads each; medians, wall ms; ratio = petrel / parallelproj`,
  );
  console.table(rows.map((r) => ({
    case: r.case,
    petrel: r.projector,
    reps: r.repeats,
    "fwd": `${f(r.petrel_fwd_ms)} / ${f(r.pp_fwd_ms)}`,
    "back": `${f(r.petrel_back_ms)} / ${f(r.pp_back_ms)}`,
    "pair": `${f(r.petrel_pair_ms)} / ${f(r.pp_pair_ms)}`,
    "fwd ratio": f(r.ratio_fwd, 2),
    "back ratio": f(r.ratio_back, 2),
    "pair ratio": f(r.ratio_pair, 2),
    "fwd cpu ratio": f(r.ratio_fwd_cpu, 2),
    "back cpu ratio": f(r.ratio_back_cpu, 2),
    "pair cpu ratio": f(r.ratio_pair_cpu, 2),
    "pair ≤ 0.5 (wall, cpu)": `${r.ratio_pair <= 0.5 ? "yes" : "no"}, ${
      r.ratio_pair_cpu <= 0.5 ? "yes" : "no"
    }`,
    [`stream ×${r.stream}: pair`]: `${f(r.petrel_stream_pair_ms)} / ${f(r.pp_stream_pair_ms)}`,
    "stream ratio (wall, cpu)": `${f(r.ratio_stream_pair, 2)}, ${f(r.ratio_stream_pair_cpu, 2)}`,
  })));
  console.table(rows.map((r) => ({
    case: r.case,
    petrel: r.projector,
    "fwd max rel": r.fwd_max_rel.toExponential(2),
    "fwd mean rel": r.fwd_mean_rel.toExponential(2),
    "back max rel": r.back_max_rel.toExponential(2),
    "back mean rel": r.back_mean_rel.toExponential(2),
    "back max rel w/o border": r.back_inner_max_rel.toExponential(2),
  })));
  console.log(
    "fwd/back/pair columns: petrel / parallelproj. Agreement: petrel's forward of the test image vs " +
      "parallelproj's, and its back projection of parallelproj's sinogram vs parallelproj's; " +
      "max rel = max|Δ| / max|parallelproj|, mean rel = Σ|Δ| / Σ|parallelproj|.",
  );
}

if (import.meta.main) Deno.exit(await main(Deno.args));
