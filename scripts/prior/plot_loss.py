#!/usr/bin/python3
"""Plot the training loss CSV of train.py as a PNG.

  /usr/bin/python3 scripts/prior/plot_loss.py out/prior/loss.csv docs/figures/prior_loss.png [TITLE]

TITLE (optional) replaces the default title's "FDG prior training".
"""

from __future__ import annotations

import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    what = sys.argv[3] if len(sys.argv) > 3 else "FDG prior training"
    steps, loss, smooth, secs = [], [], [], []
    with open(src) as f:
        for row in csv.DictReader(f):
            steps.append(int(row["step"]))
            loss.append(float(row["loss"]))
            smooth.append(float(row["loss_smooth"]))
            secs.append(float(row["seconds"]))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, loss, lw=0.6, alpha=0.5, label="loss (batch)")
    ax.plot(steps, smooth, lw=1.5, label="loss (EMA 0.98)")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("ε-MSE")
    hours = secs[-1] / 3600 if secs else 0
    ax.set_title(f"{what}: {steps[-1] if steps else 0} steps, {hours:.2f} h",
                 fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    tmp = dst + ".tmp.png"
    fig.savefig(tmp, dpi=90)
    os.replace(tmp, dst)
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
