#!/usr/bin/python3
"""Train the petrel FDG prior (conditional 2.5D DDPM, epsilon prediction) on petrel-stacks-v1 data.

  /usr/bin/python3 scripts/prior/train.py --data out/datasets/fdg_train --out out/prior \
      --base 24 --mults 1 2 2 --crop 64 --batch 8 --deadline 16:15

Seeded; logs the loss to <out>/loss.csv; checkpoints to <out>/ckpt.pt (atomic) every
--ckpt-every steps and at exit, and RESUMES from it when it exists (same command line).
Timesteps: with probability --p-low uniform in [0, --t-low), else uniform in [0, T); the schedule
stays T = 1000 linear 1e-4..0.02. Random crops (--crop) of the stacks, random left-right flips.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import signal
import sys
import time
from datetime import datetime, timezone

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import T_STEPS, UNet, linear_schedule  # noqa: E402


def parse_deadline(s: str | None) -> float | None:
    """'HH:MM' (UTC, today) or seconds since the epoch -> epoch seconds."""
    if not s:
        return None
    if ":" in s:
        h, m = (int(v) for v in s.split(":"))
        now = datetime.now(timezone.utc)
        return now.replace(hour=h, minute=m, second=0, microsecond=0).timestamp()
    return float(s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="petrel-stacks-v1 directory (pet.npy, mr.npy, manifest.json)")
    ap.add_argument("--out", default="out/prior")
    ap.add_argument("--base", type=int, default=24)
    ap.add_argument("--mults", type=int, nargs="+", default=[1, 2, 2])
    ap.add_argument("--n-res", type=int, default=1)
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--t-low", type=int, default=300)
    ap.add_argument("--p-low", type=float, default=0.9)
    ap.add_argument("--max-steps", type=int, default=10 ** 9)
    ap.add_argument("--deadline", default=None, help="stop at HH:MM UTC (or epoch seconds)")
    ap.add_argument("--decay-minutes", type=float, default=0.0,
                    help="decay the lr linearly to 10%% over the last N minutes before --deadline")
    ap.add_argument("--ckpt-every", type=int, default=250)
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    deadline = parse_deadline(args.deadline)

    with open(os.path.join(args.data, "manifest.json")) as f:
        manifest = json.load(f)
    pet = np.load(os.path.join(args.data, "pet.npy"), mmap_mode="r")
    mr = np.load(os.path.join(args.data, "mr.npy"), mmap_mode="r")
    pet = np.ascontiguousarray(pet)  # a few tens of MB: keep it in memory as float16
    mr = np.ascontiguousarray(mr)
    n, c, h, w = pet.shape
    assert c == 3 and mr.shape == pet.shape, f"expected (N,3,H,W) pet and mr, got {pet.shape}, {mr.shape}"
    crop = min(args.crop, h, w)
    print(f"data: {n} stacks {h}x{w}, subjects {manifest.get('subjects')}", flush=True)

    torch.manual_seed(args.seed)
    model = UNet(args.base, args.mults, args.n_res, args.rank)
    ema = UNet(args.base, args.mults, args.n_res, args.rank)
    ema.load_state_dict(model.state_dict())
    for p in ema.parameters():
        p.requires_grad_(False)
    device = torch.device(args.device)
    model.to(device)
    ema.to(device)
    # LoRA factors are not trained here (lora_enabled is False): exclude them from the optimiser
    train_params = [p for name, p in model.named_parameters() if "lora_" not in name]
    opt = torch.optim.AdamW(train_params, lr=args.lr, weight_decay=args.weight_decay)
    _, alpha_bar = linear_schedule(T_STEPS)
    sqrt_ab = alpha_bar.sqrt().float()
    sqrt_1mab = (1 - alpha_bar).sqrt().float()

    ckpt_path = os.path.join(args.out, "ckpt.pt")
    csv_path = os.path.join(args.out, "loss.csv")
    step, elapsed = 0, 0.0
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location="cpu")
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        step, elapsed = ck["step"], ck["train_info"]["seconds"]
        rng.bit_generator.state = ck["np_rng"]
        gen.set_state(ck["torch_rng"])
        print(f"resumed from {ckpt_path} at step {step} ({elapsed:.0f} s trained)", flush=True)
    new_csv = not os.path.exists(csv_path) or step == 0
    csv_file = open(csv_path, "w" if new_csv else "a", newline="")
    writer = csv.writer(csv_file)
    if new_csv:
        writer.writerow(["step", "seconds", "loss", "loss_smooth", "lr", "utc"])

    command = "/usr/bin/python3 " + " ".join(sys.argv)

    def save() -> None:
        info = {"data": args.data, "data_format": manifest.get("format"),
                "data_command": manifest.get("command"), "stacks": int(n),
                "subjects": manifest.get("subjects"), "tracer": manifest.get("tracer"),
                "t_range": f"p={args.p_low} uniform [0,{args.t_low}), else uniform [0,{T_STEPS})",
                "crop": crop, "batch": args.batch, "lr": args.lr, "ema": args.ema,
                "lr_schedule": (f"warm-up {args.warmup} steps, constant, then linear decay to 10% over "
                                f"the last {args.decay_minutes} min before the deadline (wall clock)"
                                if args.decay_minutes > 0 else f"warm-up {args.warmup} steps, constant"),
                "optimizer": "AdamW", "seconds": round(elapsed, 1),
                "hardware": (f"CPU, torch {torch.__version__}, {args.threads} thread(s), shared 2-core machine"
                             if device.type == "cpu" else f"{device}, torch {torch.__version__}"),
                "command": command}
        tmp = ckpt_path + ".tmp"
        torch.save({"config": model.config, "model": model.state_dict(), "ema": ema.state_dict(),
                    "opt": opt.state_dict(), "step": step, "np_rng": rng.bit_generator.state,
                    "torch_rng": gen.get_state(), "train_info": info}, tmp)
        os.replace(tmp, ckpt_path)
        csv_file.flush()

    stop = {"flag": False}

    def on_signal(signum, frame):  # noqa: ARG001
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    smooth = None
    model.train()
    t_last = time.time()
    while step < args.max_steps and not stop["flag"]:
        if deadline is not None and time.time() >= deadline:
            print("deadline reached", flush=True)
            break
        idx = rng.integers(0, n, args.batch)
        ys = rng.integers(0, h - crop + 1, args.batch)
        xs = rng.integers(0, w - crop + 1, args.batch)
        flips = rng.random(args.batch) < 0.5
        xb = np.empty((args.batch, 3, crop, crop), np.float32)
        mb = np.empty((args.batch, 3, crop, crop), np.float32)
        for b in range(args.batch):
            sl = (idx[b], slice(None), slice(ys[b], ys[b] + crop), slice(xs[b], xs[b] + crop))
            xb[b], mb[b] = pet[sl], mr[sl]
            if flips[b]:
                xb[b], mb[b] = xb[b][..., ::-1], mb[b][..., ::-1]
        x0 = torch.from_numpy(xb)
        cond = torch.from_numpy(mb)
        low = torch.rand(args.batch, generator=gen) < args.p_low
        t = torch.where(low, torch.randint(0, args.t_low, (args.batch,), generator=gen),
                        torch.randint(0, T_STEPS, (args.batch,), generator=gen))
        noise = torch.randn(x0.shape, generator=gen)
        x_t = sqrt_ab[t].view(-1, 1, 1, 1) * x0 + sqrt_1mab[t].view(-1, 1, 1, 1) * noise
        x_t, t, cond, noise = x_t.to(device), t.to(device), cond.to(device), noise.to(device)
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        if deadline is not None and args.decay_minutes > 0:
            left = (deadline - time.time()) / (60 * args.decay_minutes)
            lr *= 0.1 + 0.9 * min(1.0, max(0.0, left))
        for group in opt.param_groups:
            group["lr"] = lr
        loss = torch.mean((model(x_t, t.float(), cond) - noise) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(train_params, 1.0)
        opt.step()
        step += 1
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)
        now = time.time()
        elapsed += now - t_last
        t_last = now
        lv = float(loss)
        smooth = lv if smooth is None else 0.98 * smooth + 0.02 * lv
        if not math.isfinite(lv):
            sys.exit(f"loss is {lv} at step {step}: stopping")
        if step % args.log_every == 0:
            utc = datetime.now(timezone.utc).strftime("%H:%M:%S")
            writer.writerow([step, round(elapsed, 1), f"{lv:.6f}", f"{smooth:.6f}", f"{lr:.2e}", utc])
            csv_file.flush()
            print(f"step {step} loss {lv:.5f} smooth {smooth:.5f} {elapsed:.0f}s", flush=True)
        if step % args.ckpt_every == 0:
            save()
    save()
    csv_file.close()
    print(f"saved {ckpt_path} at step {step}, {elapsed:.0f} s", flush=True)


if __name__ == "__main__":
    main()
