/**
 * Time-of-flight and list-mode forward models, built on {@linkcode ForwardModel} so that every
 * algorithm written against {@linkcode PoissonLikelihood} (MLEM, OSEM, MAP-EM, the HQS x-step of
 * DDIP) runs on them unchanged:
 *
 * - {@linkcode tofRingForwardModel}: TOF sinograms `[radial, views, planes, tofBins]`, view
 *   subsets as for non-TOF, multiplicative factors (attenuation, normalisation) shared by the TOF
 *   bins of a LOR;
 * - {@linkcode listModeForwardModel}: one "bin" per event with its own multiplicative and
 *   additive terms, and the sensitivity image of the non-TOF scanner geometry (attenuation and
 *   normalisation included) instead of the back projection of the events;
 * - {@linkcode ListModeLikelihood}: the list-mode Poisson log-likelihood
 *   `Σ_e log ybar_e − sᵀx − Σ_i a_i`;
 * - {@linkcode sampleListMode}: events drawn from an expected (TOF) sinogram.
 *
 * @module
 */

import type { GpuArray, GpuContext, KernelRecorder } from "../gpu/context.ts";
import { axpby, recordSum, scale } from "../gpu/ops.ts";
import { type ImageGrid, imageGrid } from "../geometry/grid.ts";
import type { RingScanner } from "../geometry/scanner.ts";
import { type TofInput, type TofParameters, tofParameters } from "../geometry/tof.ts";
import type { ListModeEvents, ListModeGeometry } from "../io/listmode.ts";
import { listModeGeometry } from "../io/listmode.ts";
import { GaussianFilter } from "../projector/gaussian.ts";
import { JosephProjector } from "../projector/joseph.ts";
import { compose, type LinearOperator } from "../projector/operator.ts";
import { TofListModeProjector, TofSinogramProjector } from "../projector/tof.ts";
import { Rng } from "../random.ts";
import {
  ForwardModel,
  type ForwardModelOptions,
  ringForwardModel,
  type RingModelOptions,
  type SubsetInput,
} from "./forward_model.ts";
import { recordAxpyInPlace } from "./kernels.ts";
import { PoissonLikelihood } from "./likelihood.ts";

/**
 * A non-TOF operator repeated over `bins` TOF bins: `apply` copies `P x` into every bin,
 * `adjoint` sums the bins and back-projects. The geometric projector of a TOF model (attenuation
 * factors are the same for every TOF bin of a LOR).
 *
 * @example
 * ```ts
 * import { defaultContext, JosephProjector, MMR_VOXEL_MM, mmrLike2d, TofReplicate } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const P = new JosephProjector(ctx, scanner.lors(), scanner.imageGrid(128, MMR_VOXEL_MM));
 * const g = new TofReplicate(ctx, P, 13); // the geometric projector of a 13-bin TOF model
 * g.outShape; // [129, 224, 1, 13]
 * ```
 */
export class TofReplicate implements LinearOperator {
  readonly inShape: readonly number[];
  readonly outShape: readonly number[];
  #tmp: GpuArray;
  #acc: GpuArray;
  #n: number;

  constructor(readonly ctx: GpuContext, readonly op: LinearOperator, readonly bins: number) {
    this.inShape = op.inShape;
    this.outShape = [...op.outShape, bins];
    this.#tmp = ctx.array(op.outShape);
    this.#acc = ctx.array(op.outShape);
    this.#n = this.#tmp.length;
  }

  /** Records `out[·, t] = P x` for every TOF bin t. */
  apply(rec: KernelRecorder, x: GpuArray, out: GpuArray): void {
    this.op.apply(rec, x, this.#tmp);
    const bytes = this.#n * 4;
    for (let t = 0; t < this.bins; t++) {
      rec.copyRange(this.#tmp.buffer, 0, out.buffer, t * bytes, bytes);
    }
  }

  /** Records `out = Pᵀ Σ_t y[·, t]`. */
  adjoint(rec: KernelRecorder, y: GpuArray, out: GpuArray): void {
    const bytes = this.#n * 4;
    rec.copyRange(y.buffer, 0, this.#acc.buffer, 0, bytes);
    for (let t = 1; t < this.bins; t++) {
      rec.copyRange(y.buffer, t * bytes, this.#tmp.buffer, 0, bytes);
      recordAxpyInPlace(rec, this.#acc, this.#tmp, 1);
    }
    this.op.adjoint(rec, this.#acc, out);
  }

  /** Frees the scratch arrays (not the wrapped operator). */
  destroy(): void {
    this.#tmp.destroy();
    this.#acc.destroy();
  }
}

/** Options of {@linkcode tofRingForwardModel}. */
export interface TofRingModelOptions extends ForwardModelOptions {
  /** Reconstruction grid. */
  grid: ImageGrid;
  /** TOF parameters (bins, bin width, FWHM, truncation, centre offset). */
  tof: TofInput | TofParameters;
  /** Number of ordered subsets of views (default 1). */
  subsets?: number;
  /** Image-space Gaussian resolution model, FWHM in mm per axis (default none). */
  resolutionFwhmMm?: readonly [number, number, number];
  /** Passed to the projectors (tests force chunking with it). */
  maxLorsPerChunk?: number;
}

/** Expands per-LOR values (one non-TOF sinogram) to every TOF bin, scaled by `f`. */
function perTofBin(v: Float32Array, nb: number, nt: number, f: number, what: string): Float32Array {
  if (v.length === nb * nt) return v;
  if (v.length !== nb) {
    throw new RangeError(
      `tofRingForwardModel: ${what} has ${v.length} values, expected ${nb} (non-TOF) or ${
        nb * nt
      } (TOF)`,
    );
  }
  const out = new Float32Array(nb * nt);
  for (let t = 0; t < nt; t++) for (let i = 0; i < nb; i++) out[i + nb * t] = v[i] * f;
  return out;
}

/**
 * The forward model of a ring scanner's TOF sinogram `[radial, views, planes, tofBins]` (TOF bin
 * slowest): one {@linkcode TofSinogramProjector} per subset of views, attenuation `exp(−P μ)`
 * from the non-TOF projector, and multiplicative / additive terms given either per TOF bin or as
 * non-TOF sinograms (a non-TOF multiplicative sinogram is repeated over the TOF bins, a non-TOF
 * additive one is spread evenly, `a/nt` per bin, as for randoms).
 *
 * @example
 * ```ts
 * import { defaultContext, osem, PoissonLikelihood, readImage, readSinogram, tofRingForwardModel } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const { data: tofPrompts, scanner, tof } = await readSinogram("in/tof_prompts.npy"); // [.., .., .., 17]
 * const mu = await readImage("in/mu.nii"); // 1/mm, on the reconstruction grid
 * const model = tofRingForwardModel(ctx, scanner, {
 *   grid: mu.grid,
 *   subsets: 8,
 *   muMap: mu.data,
 *   tof: tof ?? { bins: 17, binWidthMm: 24, fwhmPs: 400 },
 * });
 * const x = await osem(new PoissonLikelihood(model, tofPrompts), { iterations: 4 });
 * ```
 */
export function tofRingForwardModel(
  ctx: GpuContext,
  scanner: RingScanner,
  options: TofRingModelOptions,
): ForwardModel {
  const grid = imageGrid(options.grid);
  scanner.checkGridFits(grid);
  const tof = tofParameters(options.tof, "tofRingForwardModel: tof");
  const nt = tof.bins;
  const nb = scanner.bins;
  const nsub = options.subsets ?? 1;
  const blur = options.resolutionFwhmMm && options.resolutionFwhmMm.some((f) => f > 0)
    ? new GaussianFilter(ctx, grid, options.resolutionFwhmMm)
    : null;
  const inputs: SubsetInput[] = [];
  const owned: { destroy(): void }[] = [];
  for (let k = 0; k < nsub; k++) {
    const views = scanner.subsetViews(k, nsub);
    const lors = scanner.lors(views);
    const chunk = { maxLorsPerChunk: options.maxLorsPerChunk };
    const p = new JosephProjector(ctx, lors, grid, chunk);
    const t = new TofSinogramProjector(ctx, lors, grid, tof, chunk);
    const g = new TofReplicate(ctx, p, nt);
    owned.push(p, t, g);
    const base = scanner.binIndices(views);
    const bins = new Uint32Array(base.length * nt);
    for (let b = 0; b < nt; b++) {
      for (let i = 0; i < base.length; i++) bins[i + base.length * b] = base[i] + nb * b;
    }
    inputs.push({ op: blur ? compose(ctx, t, blur) : t, geometric: g, bins });
  }
  const model = new ForwardModel(ctx, inputs, {
    muMap: options.muMap,
    multiplicative: options.multiplicative &&
      perTofBin(options.multiplicative, nb, nt, 1, "multiplicative"),
    additive: options.additive && perTofBin(options.additive, nb, nt, 1 / nt, "additive"),
    dataShape: [...scanner.sinogramShape, nt],
  });
  for (const o of owned) model.own(o);
  return model;
}

/**
 * The forward model of a ring sinogram as its file describes it: {@linkcode tofRingForwardModel}
 * when `tof` is given (a TOF sinogram), else {@linkcode ringForwardModel}. What the recipes use, so
 * that every reconstruction takes TOF data the same way.
 *
 * @example
 * ```ts
 * import { defaultContext, PoissonLikelihood, readSinogram, sinogramForwardModel } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const prompts = await readSinogram("study/prompts.npy"); // TOF or not: its sidecar says
 * const model = sinogramForwardModel(ctx, prompts.scanner, {
 *   grid: prompts.scanner.imageGrid(128, 2.086),
 *   subsets: 8,
 *   tof: prompts.tof,
 * });
 * const likelihood = new PoissonLikelihood(model, prompts.data);
 * ```
 */
export function sinogramForwardModel(
  ctx: GpuContext,
  scanner: RingScanner,
  options: RingModelOptions & { grid: ImageGrid; tof?: TofInput | TofParameters },
): ForwardModel {
  const { tof, ...rest } = options;
  return tof
    ? tofRingForwardModel(ctx, scanner, { ...rest, tof })
    : ringForwardModel(ctx, scanner, rest);
}

/** Options of {@linkcode listModeForwardModel}. */
export interface ListModeModelOptions {
  /** Reconstruction grid. */
  grid: ImageGrid;
  /** TOF parameters (needed when the events carry TOF; omit for non-TOF list mode). */
  tof?: TofInput | TofParameters;
  /** Number of subsets of events (default 1). */
  subsets?: number;
  /**
   * How events are split into subsets: `"views"` (default for crystal-pair events) by the view of
   * their sinogram bin, matching the sinogram models' view subsets, so subset `k` has the
   * sensitivity of its views; `"order"` (default for end-point events, which have no sinogram
   * bin) every `subsets`-th event, each subset with `1/subsets` of the total sensitivity.
   */
  subsetBy?: "views" | "order";
  /** μ-map on the grid, 1/mm: attenuation of each event and of the sensitivity image. */
  muMap?: Float32Array;
  /** Normalisation factors as a non-TOF sinogram (per LOR; also in the sensitivity image). */
  normalisation?: Float32Array;
  /** Expected additive counts (randoms + scatter) of each event's bin, one value per event ... */
  additive?: Float32Array;
  /**
   * ... or as a sinogram (TOF `[…, tofBins]`, or non-TOF, then `a/nt` per TOF bin for TOF
   * events), gathered at each event's bin; its sum is the `Σ_i a_i` of the log-likelihood.
   */
  additiveSinogram?: Float32Array;
  /** Image-space Gaussian resolution model, FWHM in mm per axis (default none). */
  resolutionFwhmMm?: readonly [number, number, number];
  /** Passed to the projectors (tests force chunking with it). */
  maxLorsPerChunk?: number;
}

/**
 * A list-mode forward model: one bin per event, `ybar_e = m_e (A_e x) + a_e`, whose sensitivity
 * images come from the non-TOF sinogram geometry (`sensitivityModel`), not from the events.
 *
 * @example
 * ```ts
 * import { defaultContext, listModeForwardModel, MMR_VOXEL_MM, readListMode } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const { events, scanner, tof } = await readListMode("in/events.npy");
 * if (!scanner) throw new Error("in/events.json names no scanner");
 * const model = listModeForwardModel(ctx, scanner, events, {
 *   grid: scanner.imageGrid(128, MMR_VOXEL_MM),
 *   tof,
 * });
 * model.droppedEvents; // events outside the sinogram (e.g. radially trimmed)
 * ```
 */
export class ListModeForwardModel extends ForwardModel {
  /** The non-TOF sinogram model whose sensitivities this model reports. */
  readonly sensitivityModel: ForwardModel;
  /** Event index (into the events given) of each model bin. */
  readonly eventIndex: Uint32Array;
  /** Events that were not used because their LOR is not in the sinogram (e.g. radially trimmed). */
  readonly droppedEvents: number;
  /** `Σ_i a_i` over all sinogram bins (0 when only per-event additive values were given). */
  readonly additiveTotal: number;
  /** How the events were split into subsets. */
  readonly subsetBy: "views" | "order";
  #scaled: GpuArray | null = null;

  constructor(
    ctx: GpuContext,
    subsets: readonly SubsetInput[],
    options: ForwardModelOptions & {
      dataShape: readonly number[];
      sensitivityModel: ForwardModel;
      eventIndex: Uint32Array;
      droppedEvents: number;
      additiveTotal: number;
      subsetBy: "views" | "order";
    },
  ) {
    super(ctx, subsets, options);
    this.sensitivityModel = options.sensitivityModel;
    this.eventIndex = options.eventIndex;
    this.droppedEvents = options.droppedEvents;
    this.additiveTotal = options.additiveTotal;
    this.subsetBy = options.subsetBy;
  }

  /**
   * Sensitivity of subset `k`: that of its views in the non-TOF sinogram geometry (`"views"`), or
   * `s / K` (`"order"`).
   */
  override sensitivity(k: number): GpuArray {
    if (this.subsetBy === "views") return this.sensitivityModel.sensitivity(k);
    if (!(k >= 0 && k < this.subsetCount)) {
      throw new RangeError(`subset ${k} is outside 0 … ${this.subsetCount - 1}`);
    }
    if (this.subsetCount === 1) return this.totalSensitivity();
    if (!this.#scaled) {
      const total = this.totalSensitivity();
      const out = this.ctx.array(this.imageShape);
      this.ctx.run((rec) => scale(rec, out, total, 1 / this.subsetCount));
      this.#scaled = out;
    }
    return this.#scaled;
  }

  /** Sensitivity of the whole scanner geometry, `s = Σ_k s_k`. */
  override totalSensitivity(): GpuArray {
    return this.sensitivityModel.totalSensitivity();
  }

  /** Frees the model, its projectors and the sensitivity model. */
  override destroy(): void {
    super.destroy();
    this.#scaled?.destroy();
    this.sensitivityModel.destroy();
  }
}

/**
 * Builds the list-mode forward model of crystal-pair `events` on `scanner`: events are mapped to
 * their sinogram LORs (see `listModeGeometry`), split into view subsets, projected with
 * {@linkcode TofListModeProjector} (TOF) or {@linkcode JosephProjector} (non-TOF), given their
 * attenuation, normalisation and additive terms; the sensitivity images are those of the
 * non-TOF sinogram model with the same attenuation and normalisation. Events outside the
 * sinogram are dropped (`droppedEvents`). Reconstruct with {@linkcode ListModeLikelihood}.
 *
 * @example
 * ```ts
 * import { defaultContext, ListModeLikelihood, listModeForwardModel, osem, readImage, readListMode } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const { events, scanner, tof } = await readListMode("in/events.npy");
 * const mu = await readImage("in/mu.nii"); // 1/mm, on the reconstruction grid
 * if (!scanner) throw new Error("in/events.json names no scanner");
 * const model = listModeForwardModel(ctx, scanner, events, {
 *   grid: mu.grid,
 *   tof,
 *   subsets: 8,
 *   muMap: mu.data,
 * });
 * const x = await osem(new ListModeLikelihood(model), { iterations: 4 });
 * ```
 */
export function listModeForwardModel(
  ctx: GpuContext,
  scanner: RingScanner,
  events: ListModeEvents | ListModeGeometry,
  options: ListModeModelOptions,
): ListModeForwardModel {
  const grid = imageGrid(options.grid);
  scanner.checkGridFits(grid);
  const tof = options.tof ? tofParameters(options.tof, "listModeForwardModel: tof") : undefined;
  const geom = "sinogramBins" in events ? events : listModeGeometry(scanner, events, tof);
  if (geom.tofBins && !tof) {
    throw new RangeError("listModeForwardModel: the events carry TOF; pass options.tof");
  }
  const nsub = options.subsets ?? 1;
  const nb = scanner.bins;
  const nrv = scanner.radialBins * scanner.views;
  const nt = tof && geom.tofBins ? tof.bins : 1;
  if (options.normalisation && options.normalisation.length !== nb) {
    throw new RangeError(
      `listModeForwardModel: normalisation has ${options.normalisation.length} values, expected one per sinogram bin (${nb})`,
    );
  }
  const additiveSino = options.additiveSinogram;
  if (additiveSino && additiveSino.length !== nb && additiveSino.length !== nb * nt) {
    throw new RangeError(
      `listModeForwardModel: additiveSinogram has ${additiveSino.length} values, expected ${nb} or ${
        nb * nt
      }`,
    );
  }
  if (options.additive && additiveSino) {
    throw new RangeError("listModeForwardModel: give additive or additiveSinogram, not both");
  }
  const n = geom.lors.count;
  if (options.additive && options.additive.length !== n) {
    throw new RangeError(
      `listModeForwardModel: additive has ${options.additive.length} values, expected one per event (${n})`,
    );
  }
  // End-point events have no sinogram bins; crystal-pair events outside the sinogram (not in
  // the sensitivity's geometry) and events with TOF outside the bins are dropped.
  const endpointForm = geom.sinogramBins.every((b) => b < 0);
  const subsetBy = options.subsetBy ?? (endpointForm ? "order" : "views");
  if (endpointForm && (options.normalisation || additiveSino || subsetBy === "views")) {
    throw new RangeError(
      'listModeForwardModel: events without sinogram bins (end points) need subsetBy "order" and per-event additive terms (no normalisation or additiveSinogram)',
    );
  }
  const members: number[][] = Array.from({ length: nsub }, () => []);
  let dropped = 0;
  const viewSubset = new Int32Array(scanner.views);
  for (let k = 0; k < nsub; k++) for (const v of scanner.subsetViews(k, nsub)) viewSubset[v] = k;
  let kept = 0;
  for (let e = 0; e < n; e++) {
    const b = geom.sinogramBins[e];
    const t = geom.tofBins ? geom.tofBins[e] : 0;
    if ((!endpointForm && b < 0) || (geom.tofBins && !(t > -1 && t < nt))) {
      dropped++;
      continue;
    }
    const k = subsetBy === "order"
      ? kept % nsub
      : viewSubset[Math.floor((b % nrv) / scanner.radialBins)];
    members[k].push(e);
    kept++;
  }
  members.forEach((m, k) => {
    if (m.length === 0) {
      throw new RangeError(
        `listModeForwardModel: subset ${k} of ${nsub} has no events; use fewer subsets`,
      );
    }
  });
  const eventIndex = Uint32Array.from(members.flat());
  const used = eventIndex.length;
  // Per-event terms, in model-bin order.
  const norm = options.normalisation;
  const multiplicative = norm
    ? Float32Array.from(eventIndex, (e) => norm[geom.sinogramBins[e]])
    : undefined;
  let additive: Float32Array | undefined;
  let additiveTotal = 0;
  if (options.additive) additive = Float32Array.from(eventIndex, (e) => options.additive![e]);
  if (additiveSino) {
    const perBin = additiveSino.length === nb * nt;
    additive = Float32Array.from(eventIndex, (e) => {
      const b = geom.sinogramBins[e];
      return perBin
        ? additiveSino[b + nb * Math.round(geom.tofBins ? geom.tofBins[e] : 0)]
        : additiveSino[b] / nt;
    });
    for (const v of additiveSino) additiveTotal += v;
  }
  const blur = options.resolutionFwhmMm && options.resolutionFwhmMm.some((f) => f > 0)
    ? new GaussianFilter(ctx, grid, options.resolutionFwhmMm)
    : null;
  const chunk = { maxLorsPerChunk: options.maxLorsPerChunk };
  const inputs: SubsetInput[] = [];
  const owned: { destroy(): void }[] = [];
  let pos = 0;
  for (const m of members) {
    const ep = new Float32Array(6 * m.length);
    m.forEach((e, i) => ep.set(geom.lors.endpoints.subarray(6 * e, 6 * e + 6), 6 * i));
    const lors = { count: m.length, endpoints: ep, shape: [m.length] };
    const p = new JosephProjector(ctx, lors, grid, chunk);
    owned.push(p);
    let op: LinearOperator = p;
    if (geom.tofBins) {
      const tp = new TofListModeProjector(
        ctx,
        { lors, tofBins: Float32Array.from(m, (e) => geom.tofBins![e]) },
        grid,
        tof!,
        {
          ...chunk,
          centreOffsetsMm: geom.tofOffsetsMm && Float32Array.from(m, (e) => geom.tofOffsetsMm![e]),
        },
      );
      owned.push(tp);
      op = tp;
    }
    inputs.push({
      op: blur ? compose(ctx, op, blur) : op,
      geometric: p,
      bins: Uint32Array.from({ length: m.length }, (_, i) => pos + i),
    });
    pos += m.length;
  }
  const sensitivityModel = ringForwardModel(ctx, scanner, {
    grid,
    subsets: subsetBy === "views" ? nsub : 1,
    // the same discretisation as the event projectors
    projector: "joseph",
    muMap: options.muMap,
    multiplicative: norm,
    resolutionFwhmMm: options.resolutionFwhmMm,
    maxLorsPerChunk: options.maxLorsPerChunk,
  });
  const model = new ListModeForwardModel(ctx, inputs, {
    muMap: options.muMap,
    multiplicative,
    additive,
    dataShape: [used],
    sensitivityModel,
    eventIndex,
    droppedEvents: dropped,
    additiveTotal,
    subsetBy,
  });
  for (const o of owned) model.own(o);
  return model;
}

/**
 * The list-mode Poisson likelihood `L(x) = Σ_e w_e log ybar_e − sᵀx − Σ_i a_i` (event weights
 * `w_e`, default 1). The EM back projection and the gradient `Σ_e A_eᵀ(m_e w_e / ybar_e) − s`
 * are those of {@linkcode PoissonLikelihood} with the model's geometric sensitivity, so every
 * EM-type algorithm and the HQS x-step accept it as is.
 *
 * @example
 * ```ts
 * import { defaultContext, ListModeLikelihood, listModeForwardModel, MMR_VOXEL_MM, mmrLike2d, osem, sampleListMode } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * // non-TOF events drawn from a flat sinogram of 0.5 expected counts per bin
 * const events = sampleListMode(scanner, new Float32Array(scanner.bins).fill(0.5), { seed: 1 });
 * const lik = new ListModeLikelihood(listModeForwardModel(ctx, scanner, events, { grid }));
 * const x = await osem(lik, { iterations: 3 });
 * console.log(await lik.logLikelihood(x)); // Σ_e log ybar_e − sᵀx
 * ```
 */
export class ListModeLikelihood extends PoissonLikelihood {
  /** `Σ_e (w_e log w_e − w_e) − Σ_i a_i`: add it to the device sum to get `L(x)`. */
  override readonly constant: number;
  readonly #lm: ListModeForwardModel;

  constructor(model: ListModeForwardModel, weights?: ArrayLike<number>) {
    const w = weights ?? new Float32Array(model.binCount).fill(1);
    if (weights && weights.length !== model.binCount) {
      throw new RangeError(
        `ListModeLikelihood: ${weights.length} weights for ${model.binCount} events (in model order)`,
      );
    }
    super(model, w);
    let c = 0;
    for (let i = 0; i < w.length; i++) if (w[i] > 0) c += w[i] * Math.log(w[i]) - w[i];
    this.constant = c - model.additiveTotal;
    this.#lm = model;
  }

  /**
   * Records `out[0] = L(x) − constant`: the event terms of {@linkcode PoissonLikelihood} (which
   * subtract `Σ_e ybar_e`) plus `Σ_e ybar_e − sᵀx`.
   */
  override recordLogLikelihood(rec: KernelRecorder, x: GpuArray, out: GpuArray): void {
    super.recordLogLikelihood(rec, x, out);
    const m = this.#lm;
    const part = rec.temp([1]);
    const next = rec.temp([1]);
    m.subsets.forEach((s, k) => {
      const n = s.bins.length;
      const expected = rec.temp([n]);
      m.recordForward(rec, k, x, { proj: m.scratch(n, 0), expected });
      recordSum(rec, part, expected);
      axpby(rec, next, out, part, { a: 1, b: 1 });
      rec.copy(next, out, 4);
    });
    recordSum(rec, part, m.totalSensitivity(), x);
    axpby(rec, next, out, part, { a: 1, b: -1 });
    rec.copy(next, out, 4);
  }
}

/** Options of {@linkcode sampleListMode}. */
export interface SampleListModeOptions {
  /** Seed of the draws (Poisson counts, orientation, order). */
  seed: number;
  /** TOF parameters when `expected` is a TOF sinogram `[…, tofBins]`. */
  tof?: TofParameters;
  /** Treat `expected` as measured counts (integers): no Poisson draw. */
  counts?: boolean;
  /** Expected delayed coincidences (non-TOF sinogram): drawn as events with `prompt = 0`. */
  delayeds?: ArrayLike<number>;
}

/**
 * Draws list-mode events from an expected (TOF) sinogram of `scanner`: a Poisson count per bin
 * (per TOF bin), each count an event with the bin's crystal pair, recorded from either crystal
 * end at random (the TOF bin mirrored accordingly), in a random order. Deterministic per seed.
 * Histogramming the prompts gives back the Poisson counts exactly.
 *
 * @example
 * ```ts
 * import { defaultContext, MMR_VOXEL_MM, mmrLike2d, nemaIecPhantom, sampleListMode, simulateCounts, tofParameters, tofRingForwardModel } from "@petrel/petrel";
 * const ctx = await defaultContext();
 * const scanner = mmrLike2d();
 * const grid = scanner.imageGrid(128, MMR_VOXEL_MM);
 * const tof = tofParameters({ bins: 17, binWidthMm: 24, fwhmPs: 400 });
 * const model = tofRingForwardModel(ctx, scanner, { grid, tof });
 * const truth = ctx.array(grid.shape, nemaIecPhantom(grid).activity);
 * // the expected TOF sinogram of 1e5 trues, then one event per Poisson count
 * const { expected } = await simulateCounts(model, truth, { trueCounts: 1e5, seed: 1, noiseFree: true });
 * const events = sampleListMode(scanner, expected, { seed: 2, tof });
 * events.count; // ≈ 1e5
 * ```
 */
export function sampleListMode(
  scanner: RingScanner,
  expected: ArrayLike<number>,
  options: SampleListModeOptions,
): ListModeEvents {
  const nb = scanner.bins;
  const nt = options.tof ? options.tof.bins : 1;
  if (expected.length !== nb * nt) {
    throw new RangeError(
      `sampleListMode: expected has ${expected.length} values, expected ${nb * nt} (${
        options.tof ? "TOF" : "non-TOF"
      } sinogram of "${scanner.spec.name}")`,
    );
  }
  if (options.delayeds && options.delayeds.length !== nb) {
    throw new RangeError(`sampleListMode: delayeds must be a non-TOF sinogram of ${nb} values`);
  }
  const rng = new Rng(options.seed);
  const draw = (lambda: number): number => {
    if (!(lambda >= 0) || !Number.isFinite(lambda)) {
      throw new RangeError(`sampleListMode: expected value ${lambda} is not finite and ≥ 0`);
    }
    if (!options.counts) return rng.poisson(lambda);
    if (!Number.isInteger(lambda)) {
      throw new RangeError(`sampleListMode: counts must be integers, got ${lambda}`);
    }
    return lambda;
  };
  const binOf: number[] = [];
  const tofOf: number[] = [];
  const promptOf: number[] = [];
  for (let t = 0; t < nt; t++) {
    for (let b = 0; b < nb; b++) {
      const k = draw(expected[b + nb * t]);
      for (let i = 0; i < k; i++) {
        binOf.push(b);
        tofOf.push(t);
        promptOf.push(1);
      }
    }
  }
  if (options.delayeds) {
    for (let b = 0; b < nb; b++) {
      const k = draw(options.delayeds[b]);
      for (let i = 0; i < k; i++) {
        binOf.push(b);
        tofOf.push(Math.min(nt - 1, Math.floor(rng.uniform() * nt)));
        promptOf.push(0);
      }
    }
  }
  const n = binOf.length;
  // Fisher–Yates: events in random (acquisition-like) order.
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(rng.uniform() * (i + 1)));
    const tmp = order[i];
    order[i] = order[j];
    order[j] = tmp;
  }
  const nrad = scanner.radialBins, nv = scanner.views;
  // Reversing an event mirrors its TOF bin; that is exact only without a centre offset.
  const canReverse = !options.tof || options.tof.centreOffsetMm === 0;
  const ev = {
    crystal1: new Int32Array(n),
    ring1: new Int32Array(n),
    crystal2: new Int32Array(n),
    ring2: new Int32Array(n),
  };
  const tofBin = options.tof ? new Int32Array(n) : undefined;
  const prompt = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const e = order[i];
    const b = binOf[e];
    const r = b % nrad, v = Math.floor(b / nrad) % nv, p = Math.floor(b / (nrad * nv));
    const [a, c] = scanner.crystalPair(r, v);
    const plane = scanner.planes[p];
    const rev = canReverse && rng.uniform() < 0.5;
    ev.crystal1[i] = rev ? c : a;
    ev.ring1[i] = rev ? plane.ring2 : plane.ring1;
    ev.crystal2[i] = rev ? a : c;
    ev.ring2[i] = rev ? plane.ring1 : plane.ring2;
    if (tofBin) tofBin[i] = rev ? nt - 1 - tofOf[e] : tofOf[e];
    prompt[i] = promptOf[e];
  }
  return {
    count: n,
    crystals: ev,
    ...(tofBin ? { tofBin } : {}),
    ...(options.delayeds ? { prompt } : {}),
  };
}
