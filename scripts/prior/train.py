#!/usr/bin/python3
"""Train the petrel prior (conditional 2.5D DDPM, epsilon prediction) on petrel-stacks-v1 data.

  /usr/bin/python3 scripts/prior/train.py --data out/datasets/fdg_train --out out/prior \
      --base 24 --mults 1 2 2 --crop 64 --batch 8 --deadline 16:15
  # the next prior (augmented, step-based cosine schedule; see docs/model_card.md "Next prior"):
  scripts/prior/train.py --data out/datasets/prior_v2 --out out/prior_v2 --augment all \
      --schedule cosine --total-steps 60000 --max-steps 60000 --device auto

Seeded; logs the loss to <out>/loss.csv; checkpoints to <out>/ckpt.pt (atomic) every
--ckpt-every steps, on SIGTERM/SIGINT and at exit, and RESUMES from it when it exists (same command
line; or --resume PATH). The checkpoint holds the model, EMA, optimiser, step and every RNG state,
so an interrupted run continues exactly as an uninterrupted one (bit-identical on CPU).
Timesteps: with probability --p-low uniform in [0, --t-low), else uniform in [0, T); the schedule
stays T = 1000 linear 1e-4..0.02. --augment legacy (default): random crops and left-right flips
(the shipped prior's recipe); --augment all|tracer,lesion,mr,rot,flip: scripts/prior/augment.py.
Stacks of --exclude-subjects (default the validation subject 50 and the test subjects 51-53) are
never trained on. --init-from-prior DIR starts the model and its EMA from a shipped prior's graphs
(rebuilt exactly by from_prior.model_from_prior; the architecture flags must match it), e.g. to
fine-tune models/fdg_prior on the augmented set (docs/model_card.md "prior v3").
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
from augment import AugmentConfig, BatchSource  # noqa: E402
from stacks_io import load_stacks  # noqa: E402
from model import T_STEPS, UNet, linear_schedule, load_checkpoint  # noqa: E402

EXCLUDED_DEFAULT = "50,51,52,53"  # validation subject 50, test subjects 51-53 (docs/results.md)


def lr_at(args, step: int, deadline) -> float:
    """Warm-up, then constant or cosine (to 10 % at --total-steps); optional wall-clock decay."""
    lr = args.lr * min(1.0, (step + 1) / args.warmup)
    if args.schedule == "cosine":
        u = min(1.0, step / max(1, args.total_steps))
        lr *= 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * u))
    if deadline is not None and args.decay_minutes > 0:
        left = (deadline - time.time()) / (60 * args.decay_minutes)
        lr *= 0.1 + 0.9 * min(1.0, max(0.0, left))
    return lr


def init_from_prior(folder: str, model: UNet, ema: UNet) -> dict:
    """Load a shipped prior's weights (its exported EMA) into `model` and `ema`; returns what the
    checkpoint records of it. Exits with a clear message when the architecture differs."""
    from from_prior import model_from_prior  # needs onnx; only imported when asked for
    path = os.path.join(folder, "denoiser.onnx")
    if not os.path.exists(path):
        sys.exit(f"--init-from-prior {folder}: no {path}")
    try:
        prior, meta = model_from_prior(folder)
    except (ValueError, KeyError, OSError) as e:
        sys.exit(f"--init-from-prior {folder}: cannot rebuild the model: {e}")
    if prior.config != model.config:
        sys.exit(f"--init-from-prior {folder}: its architecture {prior.config} differs from the command "
                 f"line's {model.config} (set --base/--mults/--n-res/--rank to the prior's)")
    sd = prior.state_dict()
    model.load_state_dict(sd)
    ema.load_state_dict(sd)
    tr = meta.get("training") or {}
    return {"prior": folder, "steps": tr.get("steps"), "seconds": tr.get("seconds"),
            "data": tr.get("data"), "command": tr.get("command"), "weights": tr.get("weights")}


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
    ap.add_argument("--device", default="cpu", help="torch device (cpu, cuda, auto = cuda when present)")
    ap.add_argument("--augment", default="legacy",
                    help="legacy (crops + left-right flips, the shipped prior), none, all, or a comma list "
                         "of tracer,lesion,mr,rot,flip (scripts/prior/augment.py)")
    ap.add_argument("--lesion-p", type=float, default=None,
                    help="probability of MR-invisible lesions per sample (augment.py default 0.5)")
    ap.add_argument("--lesion-max", type=int, default=None, help="at most this many lesions per sample (default 3)")
    ap.add_argument("--lesion-radius-mm", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                    help="lesion radius range in mm (default 2 6)")
    ap.add_argument("--schedule", choices=["constant", "cosine"], default="constant",
                    help="lr after warm-up: constant, or cosine to 10%% at --total-steps")
    ap.add_argument("--total-steps", type=int, default=0, help="length of the cosine schedule")
    ap.add_argument("--exclude-subjects", default=EXCLUDED_DEFAULT,
                    help="comma list of subjects whose stacks are never trained on ('' for none)")
    ap.add_argument("--init-from-prior", default=None, metavar="DIR",
                    help="start the model and its EMA from a shipped prior (denoiser.onnx + lora_init, "
                         "scripts/prior/from_prior.py) instead of random weights; the architecture flags "
                         "must match it. Ignored when resuming (the checkpoint holds the weights)")
    ap.add_argument("--resume", default="auto",
                    help="auto (<out>/ckpt.pt when it exists), none (start afresh) or a checkpoint path")
    ap.add_argument("--deterministic", action="store_true",
                    help="torch.use_deterministic_algorithms (bit-identical reruns; slower on CUDA)")
    ap.add_argument("--amp", choices=["off", "bf16"], default="off", help="CUDA autocast (bf16)")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes that build augmented batches (0: inline; batches do not depend on it)")
    args = ap.parse_args()
    if args.schedule == "cosine" and args.total_steps <= 0:
        sys.exit("--schedule cosine needs --total-steps > 0")
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.amp != "off" and not args.device.startswith("cuda"):
        sys.exit("--amp bf16 is for CUDA only")
    if args.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    deadline = parse_deadline(args.deadline)

    pet, mr, frac, manifest = load_stacks(args.data)
    n, c, h, w = pet.shape
    if c != 3 or mr.shape != pet.shape:
        sys.exit(f"{args.data}: expected (N,3,H,W) pet and mr, got {pet.shape}, {mr.shape}")
    if frac is not None and (frac.shape[0] != n or frac.shape[2:] != (3, h, w)):
        sys.exit(f"{args.data}: fractions {frac.shape} do not match pet {pet.shape}")
    crop = min(args.crop, h, w)
    excluded = {x.strip() for x in args.exclude_subjects.split(",") if x.strip()}
    entries = manifest.get("entries") or []
    if len(entries) != n:
        sys.exit(f"{args.data}: manifest lists {len(entries)} entries for {n} stacks")
    index = np.array([i for i, e in enumerate(entries) if str(e.get("subject")) not in excluded], np.int64)
    dropped = sorted({str(e.get("subject")) for e in entries} & excluded)
    if len(index) == 0:
        sys.exit(f"{args.data}: no stacks left after excluding subjects {sorted(excluded)}")
    legacy = args.augment == "legacy"
    try:
        aug = AugmentConfig.parse("none" if legacy else args.augment,
                                  float((manifest.get("voxel_mm") or [2.086])[0]))
    except ValueError as e:
        sys.exit(f"--augment: {e}")
    try:
        aug = aug.with_lesions(p=args.lesion_p, max_count=args.lesion_max, radius_mm=args.lesion_radius_mm)
    except ValueError as e:
        sys.exit(f"--lesion-*: {e}")
    if "tracer" in aug.kinds and frac is None:
        sys.exit(f"{args.data}: --augment tracer needs fractions.npy (build it with build_dataset.ts --fractions)")
    pet_t, mr_t = (pet[index], mr[index]) if legacy else (pet, mr)
    print(f"data: {len(index)} of {n} stacks {h}x{w}, subjects {manifest.get('subjects')}"
          f"{', excluded ' + ','.join(dropped) if dropped else ''}; augment {args.augment}; "
          f"device {args.device}", flush=True)

    rng = np.random.default_rng(args.seed)
    # batch workers fork here, before CUDA starts; nothing is drawn before a resume sets rng's state
    source = None if legacy else BatchSource(rng, pet, mr, frac, index, args.batch, crop, aug,
                                             workers=args.workers)
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
    prev_info: dict = {}
    gen = torch.Generator().manual_seed(args.seed + 1)
    resume = (ckpt_path if os.path.exists(ckpt_path) else None) if args.resume == "auto" else (
        None if args.resume == "none" else args.resume)
    if resume is not None:
        if not os.path.exists(resume):
            sys.exit(f"--resume {resume}: no such checkpoint")
        ck = load_checkpoint(resume)
        if ck["config"] != model.config:
            sys.exit(f"{resume}: model {ck['config']} differs from the command line's {model.config}")
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        step, elapsed = ck["step"], ck["train_info"]["seconds"]
        prev_info = ck["train_info"]
        rng.bit_generator.state = ck["np_rng"]
        gen.set_state(ck["torch_rng"])
        print(f"resumed from {resume} at step {step} ({elapsed:.0f} s trained)", flush=True)
    init_from = None
    if resume is not None and args.init_from_prior:
        print(f"--init-from-prior {args.init_from_prior} ignored: resuming from {resume}", flush=True)
    elif args.init_from_prior:
        init_from = init_from_prior(args.init_from_prior, model, ema)
        print(f"initialised model and EMA from {args.init_from_prior} "
              f"({init_from.get('steps')} steps, {init_from.get('seconds')} s trained)", flush=True)
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
                                if args.decay_minutes > 0 else
                                f"warm-up {args.warmup} steps, cosine to 10% at step {args.total_steps}"
                                if args.schedule == "cosine" else f"warm-up {args.warmup} steps, constant"),
                "augment": args.augment, "lesions": {"p": aug.p_lesion, "max": aug.max_lesions,
                                                     "radius_mm": list(aug.lesion_radius_mm)},
                "excluded_subjects": sorted(excluded),
                "trained_stacks": int(len(index)),
                "optimizer": "AdamW", "seconds": round(elapsed, 1),
                "hardware": (f"CPU, torch {torch.__version__}, {args.threads} thread(s), shared 2-core machine"
                             if device.type == "cpu" else
                             f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, amp {args.amp}"),
                "command": command}
        if init_from is not None or "init_from" in prev_info:
            info["init_from"] = init_from if init_from is not None else prev_info["init_from"]
        tmp = ckpt_path + ".tmp"
        torch.save({"config": model.config, "model": model.state_dict(), "ema": ema.state_dict(),
                    "opt": opt.state_dict(), "step": step,
                    "np_rng": rng.bit_generator.state if source is None else source.rng_state(),
                    "torch_rng": gen.get_state(), "train_info": info, "args": vars(args)}, tmp)
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
        if legacy:
            # the shipped prior's recipe, draw for draw (its checkpoints resume unchanged)
            idx = rng.integers(0, len(index), args.batch)
            ys = rng.integers(0, h - crop + 1, args.batch)
            xs = rng.integers(0, w - crop + 1, args.batch)
            flips = rng.random(args.batch) < 0.5
            xb = np.empty((args.batch, 3, crop, crop), np.float32)
            mb = np.empty((args.batch, 3, crop, crop), np.float32)
            for b in range(args.batch):
                sl = (idx[b], slice(None), slice(ys[b], ys[b] + crop), slice(xs[b], xs[b] + crop))
                xb[b], mb[b] = pet_t[sl], mr_t[sl]
                if flips[b]:
                    xb[b], mb[b] = xb[b][..., ::-1], mb[b][..., ::-1]
        else:
            xb, mb = source.next()
        x0 = torch.from_numpy(xb)
        cond = torch.from_numpy(mb)
        low = torch.rand(args.batch, generator=gen) < args.p_low
        t = torch.where(low, torch.randint(0, args.t_low, (args.batch,), generator=gen),
                        torch.randint(0, T_STEPS, (args.batch,), generator=gen))
        noise = torch.randn(x0.shape, generator=gen)
        x_t = sqrt_ab[t].view(-1, 1, 1, 1) * x0 + sqrt_1mab[t].view(-1, 1, 1, 1) * noise
        x_t, t, cond, noise = x_t.to(device), t.to(device), cond.to(device), noise.to(device)
        lr = lr_at(args, step, deadline)
        for group in opt.param_groups:
            group["lr"] = lr
        if args.amp == "bf16":
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                pred = model(x_t, t.float(), cond)
            loss = torch.mean((pred.float() - noise) ** 2)
        else:
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
    if source is not None:
        source.close()
    csv_file.close()
    print(f"saved {ckpt_path} at step {step}, {elapsed:.0f} s", flush=True)


if __name__ == "__main__":
    main()
