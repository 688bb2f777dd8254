"""Seeded, deterministic training augmentations of petrel-stacks-v1 samples (NumPy, CPU).

One sample is a stack of 3 adjacent axial slices: `pet` (3, H, W) and `mr` (3, H, W), both scaled to
[0, 1] by their volume maximum, and, when the data set has `fractions.npy`, the partial-volume
fractions `frac` (G, 3, H, W) of the label groups csf, grey, white, extra (background = the rest).

Augmentations (each drawn from its own generator, seeded from the batch generator, so switching one
off does not change the draws of the others):
- tracer: a per-group uptake table between FDG-like and amyloid-like (mix λ ~ U(0, 1), log-normal
  jitter per group) replaces the FDG contrast; the stack's texture, regional pattern and lesions are
  kept as a multiplicative modulation (needs `frac`);
- lesion: 1..max hot (× U(1.5, 3)) or cold (× U(0.2, 0.6)) spheres of radius 2..6 mm in the brain,
  applied to the PET only: the MR does not show them, so the prior learns that PET need not follow MR;
- mr: per-group MR contrast (log-normal, needs `frac`), a gamma, a smooth quadratic bias field and
  Gaussian noise (the MR's maximum is kept);
- rot: an in-plane rotation by U(-deg, deg) (bilinear, the same for PET, MR and fractions);
- flip: left-right (p = 0.5) and slice-order (p = 0.5) flips;
then a random crop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

KINDS = ("tracer", "lesion", "mr", "rot", "flip")
GROUPS = ("csf", "grey", "white", "extra")
# Nominal per-group uptake of the simulator's tracer models (core/sim/tracers.ts; "extra" is a
# round value of its scalp/muscle/fat/bone labels). Only ratios matter: stacks are max-normalised.
FDG_TABLE = np.array([0.0, 128.0, 32.0, 12.0])
AMYLOID_TABLE = np.array([3.0, 40.0, 72.0, 13.0])


@dataclass
class AugmentConfig:
    kinds: Tuple[str, ...] = ()
    p_tracer: float = 0.5
    tracer_jitter: float = 0.15
    p_lesion: float = 0.5
    max_lesions: int = 3
    lesion_radius_mm: Tuple[float, float] = (2.0, 6.0)
    hot: Tuple[float, float] = (1.5, 3.0)
    cold: Tuple[float, float] = (0.2, 0.6)
    p_mr: float = 0.8
    mr_contrast_sd: float = 0.1
    mr_gamma_sd: float = 0.15
    mr_bias_sd: float = 0.1
    mr_noise_max: float = 0.02
    p_rot: float = 0.5
    rot_deg: float = 10.0
    voxel_mm: float = 2.086
    extra: Dict = field(default_factory=dict)

    @staticmethod
    def parse(spec: str, voxel_mm: float = 2.086) -> "AugmentConfig":
        """'all', 'none' or a comma list of KINDS."""
        spec = spec.strip()
        if spec in ("", "none"):
            kinds: Tuple[str, ...] = ()
        elif spec == "all":
            kinds = KINDS
        else:
            kinds = tuple(k.strip() for k in spec.split(",") if k.strip())
            bad = [k for k in kinds if k not in KINDS]
            if bad:
                raise ValueError(f"unknown augmentation(s) {bad}; expected 'all', 'none' or some of {KINDS}")
        return AugmentConfig(kinds=kinds, voxel_mm=voxel_mm)

    def with_lesions(self, p: Optional[float] = None, max_count: Optional[int] = None,
                     radius_mm: Optional[Sequence[float]] = None) -> "AugmentConfig":
        """A copy with other lesion draws (None keeps a field); checked, since they come from flags."""
        out = replace(self)
        if p is not None:
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"lesion probability {p} is not in [0, 1]")
            out.p_lesion = float(p)
        if max_count is not None:
            if max_count < 1:
                raise ValueError(f"at most {max_count} lesions: need at least 1")
            out.max_lesions = int(max_count)
        if radius_mm is not None:
            lo, hi = (float(v) for v in radius_mm)
            if not 0.0 < lo <= hi:
                raise ValueError(f"lesion radius range {lo}..{hi} mm: need 0 < LO <= HI")
            out.lesion_radius_mm = (lo, hi)
        return out


# ---- tracer-like remap ----------------------------------------------------------------------------

def draw_tracer_table(rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    lam = rng.uniform(0.0, 1.0)
    jitter = np.exp(cfg.tracer_jitter * rng.standard_normal(len(GROUPS)))
    return ((1 - lam) * FDG_TABLE + lam * AMYLOID_TABLE) * jitter


def tracer_remap(pet: np.ndarray, frac: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Replace the FDG group contrast of `pet` by `table`, keeping the modulation pet / (FDG model).

    The FDG model Σ_g f_g FDG_g is fitted to `pet` by one least-squares scale; where it is small
    (CSF, background) the modulation is 1; it is clipped to [0.5, 2]. The result keeps the stack's
    maximum.
    """
    model_fdg = np.tensordot(FDG_TABLE, frac, axes=(0, 0))
    model_new = np.tensordot(table, frac, axes=(0, 0))
    denom = float((model_fdg * model_fdg).sum())
    if denom <= 0 or pet.max() <= 0:
        return pet
    s = float((pet * model_fdg).sum()) / denom
    fitted = s * model_fdg
    ok = fitted > 0.05 * fitted.max()
    mod = np.ones_like(pet)
    mod[ok] = np.clip(pet[ok] / fitted[ok], 0.5, 2.0)
    out = model_new * mod
    top = float(out.max())
    return (out * (float(pet.max()) / top)).astype(np.float32) if top > 0 else pet


# ---- MR-invisible lesions -------------------------------------------------------------------------

def draw_lesions(rng: np.random.Generator, pet: np.ndarray, frac: Optional[np.ndarray],
                 cfg: AugmentConfig) -> List[Dict]:
    """Centres in the brain of the centre slice (grey + white ≥ 0.5, or PET ≥ 0.3 max without frac)."""
    brain = (frac[1, 1] + frac[2, 1] >= 0.5) if frac is not None else (pet[1] >= 0.3 * pet.max())
    ys, xs = np.nonzero(brain)
    n = int(rng.integers(1, cfg.max_lesions + 1))
    out = []
    for _ in range(n):
        if len(ys) == 0:
            break
        k = int(rng.integers(0, len(ys)))
        hot = bool(rng.random() < 0.5)
        lo, hi = cfg.hot if hot else cfg.cold
        out.append({"y": float(ys[k]) + rng.uniform(-0.5, 0.5), "x": float(xs[k]) + rng.uniform(-0.5, 0.5),
                    "z": rng.uniform(-1.0, 1.0) * cfg.voxel_mm,
                    "radius_mm": rng.uniform(*cfg.lesion_radius_mm), "factor": rng.uniform(lo, hi)})
    return out


def lesion_weight(shape: Sequence[int], lesion: Dict, voxel_mm: float) -> np.ndarray:
    """Partial-volume-like weight (3, H, W) of a sphere: clip((r − d)/voxel + 1/2, 0, 1)."""
    _, h, w = shape
    zz = (np.arange(3) - 1.0)[:, None, None] * voxel_mm - lesion["z"]
    yy = (np.arange(h)[None, :, None] - lesion["y"]) * voxel_mm
    xx = (np.arange(w)[None, None, :] - lesion["x"]) * voxel_mm
    d = np.sqrt(zz * zz + yy * yy + xx * xx)
    return np.clip((lesion["radius_mm"] - d) / voxel_mm + 0.5, 0.0, 1.0)


def apply_lesions(pet: np.ndarray, lesions: List[Dict], voxel_mm: float) -> np.ndarray:
    out = pet.astype(np.float32, copy=True)
    for les in lesions:
        out *= (1.0 + (les["factor"] - 1.0) * lesion_weight(pet.shape, les, voxel_mm)).astype(np.float32)
    return out


# ---- MR jitter ------------------------------------------------------------------------------------

def mr_jitter(mr: np.ndarray, frac: Optional[np.ndarray], rng: np.random.Generator,
              cfg: AugmentConfig) -> np.ndarray:
    top = float(mr.max())
    if top <= 0:
        return mr
    out = mr.astype(np.float32, copy=True)
    contrast = np.exp(cfg.mr_contrast_sd * rng.standard_normal(len(GROUPS)))
    if frac is not None:
        bg = np.clip(1.0 - frac.sum(axis=0), 0.0, 1.0)
        out *= (bg + np.tensordot(contrast, frac, axes=(0, 0))).astype(np.float32)
    gamma = math.exp(cfg.mr_gamma_sd * rng.standard_normal())
    out = np.float32(top) * np.power(np.maximum(out / np.float32(top), 0.0), np.float32(gamma))
    _, h, w = mr.shape
    y = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None]
    x = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :]
    a = (cfg.mr_bias_sd * rng.standard_normal(5)).astype(np.float32)
    out = out * np.exp(a[0] * x + a[1] * y + a[2] * x * y + a[3] * (x * x - 1 / 3) + a[4] * (y * y - 1 / 3))
    sd = np.float32(rng.uniform(0.0, cfg.mr_noise_max) * top)
    out = np.maximum(out + sd * rng.standard_normal(out.shape, dtype=np.float32), 0.0)
    m = float(out.max())
    return (out * (top / m)).astype(np.float32) if m > 0 else mr


# ---- geometry -------------------------------------------------------------------------------------

def rotate(arr: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate (..., H, W) about the image centre, bilinear, zero outside."""
    h, w = arr.shape[-2:]
    th = math.radians(degrees)
    c, s = math.cos(th), math.sin(th)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy, xx = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
    # inverse map: output (y, x) samples input at R(-θ)(y, x)
    sy = c * yy - s * xx + cy
    sx = s * yy + c * xx + cx
    y0 = np.floor(sy).astype(np.int64)
    x0 = np.floor(sx).astype(np.int64)
    fy = (sy - y0).astype(np.float32)
    fx = (sx - x0).astype(np.float32)
    out = np.zeros(arr.shape, np.float32)
    flat = arr.reshape(-1, h, w).astype(np.float32, copy=False)
    res = out.reshape(-1, h, w)
    for dy, dx, wt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)),
                       (1, 1, fy * fx)):
        yi, xi = y0 + dy, x0 + dx
        inside = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        yi_c, xi_c = np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)
        res += flat[:, yi_c, xi_c] * (wt * inside)[None]
    # exact grid rotations (0°) stay exact; tiny negative round-off is clipped
    return np.clip(out, 0.0, None) if arr.min() >= 0 else out


# ---- one sample, one batch ------------------------------------------------------------------------

N_SEEDS = 6  # tracer, lesion, mr, rot, flip, crop


def augment_sample(pet: np.ndarray, mr: np.ndarray, frac: Optional[np.ndarray], seeds: Sequence[int],
                   cfg: AugmentConfig, crop: int) -> Tuple[np.ndarray, np.ndarray]:
    """Augment one stack (float32 copies) and crop it to `crop` × `crop`."""
    g = [np.random.default_rng(int(s)) for s in seeds]
    pet = pet.astype(np.float32)
    mr = mr.astype(np.float32)
    frac = frac.astype(np.float32) / 255.0 if frac is not None else None
    k = cfg.kinds
    if "tracer" in k and frac is not None and g[0].random() < cfg.p_tracer:
        pet = tracer_remap(pet, frac, draw_tracer_table(g[0], cfg))
    if "lesion" in k and g[1].random() < cfg.p_lesion:
        pet = apply_lesions(pet, draw_lesions(g[1], pet, frac, cfg), cfg.voxel_mm)
    if "mr" in k and g[2].random() < cfg.p_mr:
        mr = mr_jitter(mr, frac, g[2], cfg)
    if "rot" in k and g[3].random() < cfg.p_rot:
        ang = g[3].uniform(-cfg.rot_deg, cfg.rot_deg)
        both = rotate(np.concatenate([pet, mr]), ang)  # one set of sample coordinates
        pet, mr = both[:3], both[3:]
    if "flip" in k:
        lr, z = g[4].random(2) < 0.5
        if lr:
            pet, mr = pet[..., ::-1], mr[..., ::-1]
        if z:
            pet, mr = pet[::-1], mr[::-1]
    h, w = pet.shape[-2:]
    y = int(g[5].integers(0, h - crop + 1))
    x = int(g[5].integers(0, w - crop + 1))
    return (np.ascontiguousarray(pet[:, y:y + crop, x:x + crop]),
            np.ascontiguousarray(mr[:, y:y + crop, x:x + crop]))


def draw_batch(rng: np.random.Generator, index: np.ndarray, batch: int) -> Tuple[np.ndarray, np.ndarray]:
    """The batch's stack rows (from `index`) and per-sample augmentation seeds."""
    rows = index[rng.integers(0, len(index), batch)]
    seeds = rng.integers(0, 2 ** 62, (batch, N_SEEDS))
    return rows, seeds


def build_batch(rows: np.ndarray, seeds: np.ndarray, pet: np.ndarray, mr: np.ndarray,
                frac: Optional[np.ndarray], crop: int, cfg: AugmentConfig) -> Tuple[np.ndarray, np.ndarray]:
    """Augment the drawn stacks: a pure function of its inputs (so it can run in a worker)."""
    batch = len(rows)
    xb = np.empty((batch, 3, crop, crop), np.float32)
    mb = np.empty((batch, 3, crop, crop), np.float32)
    for b, r in enumerate(rows):
        xb[b], mb[b] = augment_sample(pet[r], mr[r], None if frac is None else frac[r], seeds[b], cfg, crop)
    return xb, mb


def make_batch(rng: np.random.Generator, pet: np.ndarray, mr: np.ndarray, frac: Optional[np.ndarray],
               index: np.ndarray, batch: int, crop: int, cfg: AugmentConfig) -> Tuple[np.ndarray, np.ndarray]:
    """Draw `batch` stacks from the rows `index` of the arrays and augment them."""
    rows, seeds = draw_batch(rng, index, batch)
    return build_batch(rows, seeds, pet, mr, frac, crop, cfg)


class BatchSource:
    """Augmented batches in draw order, built inline or by `workers` forked processes.

    The draws (rows, seeds) are made here, in order, from `rng`; workers only build them, so the
    batches do not depend on the number of workers. `rng_state()` is the generator's state before
    the next batch that `next()` will return (prefetched draws are not counted), which a checkpoint
    stores to resume exactly.
    """

    def __init__(self, rng: np.random.Generator, pet: np.ndarray, mr: np.ndarray,
                 frac: Optional[np.ndarray], index: np.ndarray, batch: int, crop: int,
                 cfg: AugmentConfig, workers: int = 0, prefetch: int = 0):
        self.rng, self.index, self.batch, self.crop, self.cfg = rng, index, batch, crop, cfg
        self.arrays = (pet, mr, frac)
        self.pending: List = []  # (rng state before the draw, future or (rows, seeds))
        self.pool = None
        self.prefetch = max(prefetch, 2 * workers) if workers > 0 else 0
        if workers > 0:
            import multiprocessing as mp
            global _WORKER_ARRAYS
            _WORKER_ARRAYS = self.arrays  # inherited by the forked workers, not pickled
            # forks now: create the source before CUDA is initialised (the workers use NumPy only)
            self.pool = mp.get_context("fork").Pool(workers)

    def _draw(self) -> None:
        state = self.rng.bit_generator.state
        rows, seeds = draw_batch(self.rng, self.index, self.batch)
        job = (self.pool.apply_async(_build_in_worker, (rows, seeds, self.crop, self.cfg))
               if self.pool is not None else (rows, seeds))
        self.pending.append((state, job))

    def next(self) -> Tuple[np.ndarray, np.ndarray]:
        while len(self.pending) < max(1, self.prefetch):
            self._draw()
        _, job = self.pending.pop(0)
        if self.pool is not None:
            return job.get()
        return build_batch(job[0], job[1], *self.arrays, self.crop, self.cfg)

    def rng_state(self) -> Dict:
        return self.pending[0][0] if self.pending else self.rng.bit_generator.state

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None


_WORKER_ARRAYS: Tuple = ()


def _build_in_worker(rows, seeds, crop, cfg):
    return build_batch(rows, seeds, *_WORKER_ARRAYS, crop, cfg)
