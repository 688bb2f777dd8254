#!/usr/bin/python3
"""Judge the prior the way the reconstruction uses it: noise held-out FDG stacks to t = --t-start,
run the reverse chain with their MR, compare with the truth (PSNR/SSIM); beside samples drawn from
pure noise. Writes a PNG and a JSON of the numbers.

  /usr/bin/python3 scripts/prior/sample.py --ckpt out/prior/ckpt.pt --data out/prior/fdg_test \
      --stacks 2 5 --png docs/figures/prior_samples.png

Sampler (as in docs/ddip.md, DDS-style DDIM without the data step): for t = t_start-1 … 0,
x̂0 = (x_t − √(1−ᾱ_t) ε) / √ᾱ_t,
x_{t−1} = √ᾱ_{t−1} clip(x̂0, 0, 1) + η √(1−ᾱ_{t−1}) u + √(1−η²) √(1−ᾱ_{t−1}) ε, u ~ N(0, I).
From pure noise the same rule runs on --noise-steps evenly spaced steps from T−1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import T_STEPS, UNet, linear_schedule, load_checkpoint  # noqa: E402


def load(ckpt: str, use_ema: bool = True) -> UNet:
    ck = load_checkpoint(ckpt)
    cfg = ck["config"]
    model = UNet(cfg["base"], cfg["mults"], cfg["n_res"], cfg["rank"])
    model.load_state_dict(ck["ema"] if use_ema else ck["model"])
    return model.eval()


@torch.no_grad()
def reverse_chain(model: UNet, x_t: torch.Tensor, mr: torch.Tensor, steps: list, eta: float,
                  gen: torch.Generator) -> torch.Tensor:
    """Run the DDS-style DDIM update over the decreasing timesteps `steps` (ends at t=0)."""
    _, ab = linear_schedule(T_STEPS)
    ab = ab.float()
    x = x_t
    x0 = x
    for i, t in enumerate(steps):
        a = ab[t]
        eps = model(x, torch.full((x.shape[0],), float(t)), mr)
        x0 = ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(0, 1)
        if i == len(steps) - 1:
            break
        ap = ab[steps[i + 1]]
        u = torch.randn(x.shape, generator=gen)
        x = ap.sqrt() * x0 + eta * (1 - ap).sqrt() * u + (1 - eta ** 2) ** 0.5 * (1 - ap).sqrt() * eps
    return x0


def psnr(x: np.ndarray, ref: np.ndarray) -> float:
    rng = float(ref.max() - ref.min())
    mse = float(np.mean((x - ref) ** 2))
    return 10 * np.log10(rng ** 2 / mse)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default="out/prior/ckpt.pt")
    ap.add_argument("--data", default="out/prior/fdg_test", help="held-out petrel-stacks-v1 folder")
    ap.add_argument("--stacks", type=int, nargs="+", default=[2, 5])
    ap.add_argument("--t-start", type=int, default=200)
    ap.add_argument("--eta", type=float, default=0.85)
    ap.add_argument("--noise-steps", type=int, default=50, help="0: no samples from pure noise")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--png", default="docs/figures/prior_samples.png")
    ap.add_argument("--json", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--raw", action="store_true", help="use the raw (not EMA) weights")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from skimage.metrics import structural_similarity

    model = load(args.ckpt, use_ema=not args.raw)
    pet = np.load(os.path.join(args.data, "pet.npy")).astype(np.float32)
    mr = np.load(os.path.join(args.data, "mr.npy")).astype(np.float32)
    gen = torch.Generator().manual_seed(args.seed)
    _, ab = linear_schedule(T_STEPS)
    ab = ab.float()
    rows, results = [], []
    t0 = time.time()
    for s in args.stacks:
        x0 = torch.from_numpy(pet[s:s + 1])
        m = torch.from_numpy(mr[s:s + 1])
        a = ab[args.t_start]
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * torch.randn(x0.shape, generator=gen)
        with torch.no_grad():
            eps = model(x_t, torch.tensor([float(args.t_start)]), m)
            tweedie = ((x_t - (1 - a).sqrt() * eps) / a.sqrt()).clamp(0, 1)
        rec = reverse_chain(model, x_t, m, list(range(args.t_start, -1, -1)), args.eta, gen)
        noise_sample = None
        if args.noise_steps > 0:
            steps = [int(v) for v in np.linspace(T_STEPS - 1, 0, args.noise_steps).round()]
            noise_sample = reverse_chain(model, torch.randn(x0.shape, generator=gen), m, steps,
                                         args.eta, gen)[0, 1].numpy()
        truth = x0[0, 1].numpy()
        r = {"stack": s, "t_start": args.t_start}
        for key, img in (("noisy_x_t_rescaled", (x_t[0, 1] / a.sqrt()).clamp(0, 1).numpy()),
                         ("tweedie_one_step", tweedie[0, 1].numpy()), ("reverse_chain", rec[0, 1].numpy())):
            r[key] = {"psnr": round(psnr(img, truth), 2),
                      "ssim": round(float(structural_similarity(img, truth, data_range=float(truth.max() - truth.min()))), 4)}
        results.append(r)
        rows.append((m[0, 1].numpy(), truth, (x_t[0, 1] / a.sqrt()).numpy(), tweedie[0, 1].numpy(),
                     rec[0, 1].numpy(), noise_sample))
        print(json.dumps(r), flush=True)
    seconds = time.time() - t0

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    titles = ["MR (input)", "true FDG", f"x_{args.t_start}/√ᾱ (noisy)", f"Tweedie x̂0 at t={args.t_start}",
              f"reverse chain {args.t_start}→0", f"from pure noise ({args.noise_steps} steps)"]
    ncol = 6 if args.noise_steps > 0 else 5
    fig, axes = plt.subplots(len(rows), ncol, figsize=(2.4 * ncol, 2.6 * len(rows)), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(ncol):
            ax = axes[i, j]
            ax.imshow(np.flipud(row[j]), cmap="gray" if j == 0 else "magma", vmin=0,
                      vmax=1 if j == 0 else max(1e-6, float(row[1].max())))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j], fontsize=8)
            if j == 4:
                ax.set_xlabel(f"PSNR {results[i]['reverse_chain']['psnr']} dB, "
                              f"SSIM {results[i]['reverse_chain']['ssim']}", fontsize=7)
        axes[i, 0].set_ylabel(f"held-out stack {results[i]['stack']}", fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.png)), exist_ok=True)
    tmp = args.png + ".tmp.png"
    fig.savefig(tmp, dpi=80)
    os.replace(tmp, args.png)
    out_json = args.json or os.path.splitext(args.png)[0] + ".json"
    with open(out_json + ".tmp", "w") as f:
        json.dump({"ckpt": args.ckpt, "data": args.data, "eta": args.eta, "seed": args.seed,
                   "seconds": round(seconds, 1), "results": results}, f, indent=1)
    os.replace(out_json + ".tmp", out_json)
    print(f"wrote {args.png} and {out_json} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
