#!/usr/bin/python3
"""Reference values for petrel's core/metrics from scikit-image and NumPy.

Writes tests/fixtures/metrics/*.json: small seeded arrays (float32 values, stored as float64
JSON numbers, x fastest) and the values scikit-image (0.19) / NumPy give for them. Run from the
repository root with Debian's python3 (apt: python3-skimage):

    /usr/bin/python3 scripts/make_metric_fixtures.py && npx -y deno@2.9.6 fmt tests/fixtures/metrics

Arrays are listed x-fastest: a NumPy array of shape (nz, ny, nx) in C order, flattened, with the
petrel shape [nx, ny, nz] stored beside it. All inputs are cast to float64 before calling
scikit-image (its SSIM computes in the input's float type).
"""
import json
import os

import numpy as np
import skimage
from skimage.metrics import (
    mean_squared_error,
    normalized_root_mse,
    peak_signal_noise_ratio,
    structural_similarity,
)

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "metrics")
rng = np.random.default_rng(20261126)


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def smooth_phantom(nz, ny, nx):
    z, y, x = np.meshgrid(np.linspace(-1, 1, nz), np.linspace(-1, 1, ny), np.linspace(-1, 1, nx),
                          indexing="ij")
    img = 4.0 * ((x**2 + y**2) < 0.7) + 3.0 * (((x - 0.2)**2 + y**2 + z**2) < 0.1)
    img += 0.5 * np.sin(3 * x) * np.cos(2 * y)
    return f32(img)


def flat(a):
    return [float(v) for v in np.ravel(a)]


def image_case(name, truth, test, data_range=None):
    nz, ny, nx = truth.shape
    dr = float(truth.max() - truth.min()) if data_range is None else data_range
    case = {
        "name": name,
        "shape": [nx, ny, nz],
        "truth": flat(truth),
        "test": flat(test),
        "dataRange": dr,
        "mse": float(mean_squared_error(truth, test)),
        "psnr": float(peak_signal_noise_ratio(truth, test, data_range=dr)),
        "nrmse": {
            "euclidean": float(normalized_root_mse(truth, test, normalization="euclidean")),
            "min-max": float(normalized_root_mse(truth, test, normalization="min-max")),
            "mean": float(normalized_root_mse(truth, test, normalization="mean")),
        },
    }
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=dr)
    if min(ny, nx) >= 11:
        per_slice = [float(structural_similarity(truth[k], test[k], **kw)) for k in range(nz)]
        case["ssim2dSlices"] = per_slice
        case["ssim2d"] = float(np.mean(per_slice))
    if min(nz, ny, nx) >= 11:
        case["ssim3d"] = float(structural_similarity(truth, test, **kw))
    return case


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = []
    # 2-D: one slice 24 x 20 with Gaussian noise
    t2 = smooth_phantom(1, 20, 24)
    n2 = f32(t2 + 0.3 * rng.standard_normal(t2.shape))
    cases.append(image_case("2d-noisy", t2, n2))
    # 2-D, different data range and negative values
    t2b = f32(rng.standard_normal((1, 13, 17)))
    n2b = f32(t2b + 0.5 * rng.standard_normal(t2b.shape))
    cases.append(image_case("2d-gaussian-range-2", t2b, n2b, data_range=2.0))
    # 3-D: 14 x 12 x 11
    t3 = smooth_phantom(11, 12, 14)
    n3 = f32(t3 * (1 + 0.1 * rng.standard_normal(t3.shape)) + 0.2 * rng.random(t3.shape))
    cases.append(image_case("3d-noisy", t3, n3))
    # blurred (biased, low noise) 3-D case
    from scipy.ndimage import gaussian_filter
    b3 = f32(gaussian_filter(t3, 1.0))
    cases.append(image_case("3d-blurred", t3, b3))
    with open(os.path.join(OUT, "image_metrics.json"), "w") as f:
        json.dump({"generator": f"scikit-image {skimage.__version__}, numpy {np.__version__}",
                   "ssim": "gaussian_weights=True, sigma=1.5, use_sample_covariance=False",
                   "cases": cases}, f)

    # ROI statistics (NumPy), 3-D 12 x 10 x 4
    nz, ny, nx = 4, 10, 12
    img = f32(10 + rng.standard_normal((nz, ny, nx)))
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    lesion = ((x - 3)**2 + (y - 3)**2 <= 4) & (z >= 1)
    img[lesion] += 15
    img = f32(img)
    background = (x >= 6) & (y >= 2)
    truth = np.full(img.shape, 10.0)
    truth[lesion] = 25.0
    bg_rois = [(x >= 6) & (x < 9) & (y >= 2) & (y < 5), (x >= 9) & (y >= 5),
               (x >= 6) & (x < 9) & (y >= 6), (x < 4) & (y >= 7)]
    roi_means = [float(img[r].mean()) for r in bg_rois]
    a, b = img[lesion].mean(), img[background].mean()
    roi = {
        "shape": [nx, ny, nz],
        "image": flat(img),
        "truth": flat(truth),
        "lesion": [int(v) for v in np.ravel(lesion)],
        "background": [int(v) for v in np.ravel(background)],
        "backgroundRois": [[int(v) for v in np.ravel(r)] for r in bg_rois],
        "lesionMean": float(a),
        "lesionStd": float(img[lesion].std(ddof=1)),
        "backgroundMean": float(b),
        "backgroundStd": float(img[background].std(ddof=1)),
        "backgroundCov": float(img[background].std(ddof=1) / b),
        "crc": float((a / b - 1) / (25.0 / 10.0 - 1)),
        "roiMeans": roi_means,
        "bvStd": float(np.std(roi_means, ddof=1)),
        "bv": float(np.std(roi_means, ddof=1) / np.mean(roi_means)),
        "nemaHotContrastPercent": float(100 * (a / np.mean(roi_means) - 1) / (2.5 - 1)),
        "nemaColdContrastPercent": float(100 * (1 - a / np.mean(roi_means))),
        "nemaBvPercent": float(100 * np.std(roi_means, ddof=1) / np.mean(roi_means)),
    }
    # realisations: 5 noisy copies of a 6 x 5 x 1 truth
    tr = f32(1 + rng.random((1, 5, 6)))
    reals = [f32(tr + 0.2 * rng.standard_normal(tr.shape) + 0.05) for _ in range(5)]
    stack = np.stack(reals)
    mean_img = stack.mean(0)
    std_img = stack.std(0, ddof=1)
    mask = np.zeros(tr.shape, bool)
    mask[0, 1:4, 1:5] = True
    roi["ensemble"] = {
        "shape": [6, 5, 1],
        "truth": flat(tr),
        "realisations": [flat(r) for r in reals],
        "mask": [int(v) for v in np.ravel(mask)],
        "mean": flat(mean_img),
        "std": flat(std_img),
        "biasPercent": float(100 * (mean_img[mask].mean() - tr[mask].mean()) / tr[mask].mean()),
        "absBiasPercent": float(100 * np.abs(mean_img[mask] - tr[mask]).mean() / tr[mask].mean()),
        "stdPercent": float(100 * std_img[mask].mean() / tr[mask].mean()),
        "roiMeanStdPercent": float(100 * np.std([r[mask].mean() for r in stack], ddof=1)
                                   / tr[mask].mean()),
    }
    with open(os.path.join(OUT, "roi_metrics.json"), "w") as f:
        json.dump({"generator": f"numpy {np.__version__}", **roi}, f)


if __name__ == "__main__":
    main()
