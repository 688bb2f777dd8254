#!/usr/bin/python3
"""Export a petrel prior (checkpoint or random weights) to denoiser.onnx + vjp.onnx + lora_init.

Usage:
  export.py --ckpt out/prior/ckpt.pt --out models/fdg_prior [--check-dir out/prior/check]
  export.py --random --base 8 --mults 1 2 --out tests/fixtures/prior --fixtures
  export.py --from-prior models/fdg_prior --out /tmp/fdg_prior_new   (re-export a shipped prior)

--vjp-form split (default) or merged: how the VJP graph computes (onnx_export.py; the same
function up to float rounding, split is faster). --from-prior rebuilds the model from an exported
prior (from_prior.py) and keeps its training and grid metadata.

Writes into --out:
  denoiser.onnx   inputs x_t [B,3,H,W], t [B], mr [B,3,H,W], p.<param>...; output eps [B,3,H,W]
  vjp.onnx        the same inputs + grad_eps [B,3,H,W]; outputs eps, grad.<param>... (fixed shape)
  lora_init.bin   initial adaptable parameters, raw float32 little-endian, concatenated in the order
                  of metadata lora.params (each C order); lora_init.json indexes it (tensor_io format)
The export checks itself: the traced VJP graph against torch autograd (here), and the ONNX files
against PyTorch outputs written as a check bundle (run by scripts/prior/check_onnx.ts with
onnxruntime-web, when Deno is available).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import BETA_END, BETA_START, T_STEPS, UNet, load_checkpoint  # noqa: E402
from onnx_export import (VJP_FORMS, export_denoiser, export_vjp, grad_name, input_name,  # noqa
                         op_histogram, prepare, reference_vjp, trace_vjp)
from tensor_io import write_bundle  # noqa: E402
from from_prior import model_from_prior  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def load_model(args) -> tuple:
    if args.from_prior:
        model, meta = model_from_prior(args.from_prior)
        args.rank = model.config["rank"]
        args.source_meta = meta
        return model, meta["training"]
    if args.random:
        torch.manual_seed(args.seed)
        model = UNet(args.base, args.mults, args.n_res, args.rank)
        return model, {"data": "none (random weights, test model)", "steps": 0}
    ck = load_checkpoint(args.ckpt)
    cfg = ck["config"]
    model = UNet(cfg["base"], cfg["mults"], cfg["n_res"], cfg["rank"])
    sd = ck.get("ema") if (ck.get("ema") is not None and not args.no_ema) else ck["model"]
    model.load_state_dict(sd)
    info = dict(ck.get("train_info", {}))
    if str(info.get("data", "")).startswith(REPO + os.sep):
        info["data"] = os.path.relpath(info["data"], REPO)
    info["steps"] = int(ck.get("step", 0))
    info["weights"] = "EMA" if (ck.get("ema") is not None and not args.no_ema) else "raw"
    return model, info


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", help="training checkpoint (train.py)")
    ap.add_argument("--random", action="store_true", help="random weights (test model)")
    ap.add_argument("--from-prior", default=None,
                    help="rebuild the model from an exported prior folder (denoiser.onnx + lora_init)")
    ap.add_argument("--vjp-form", choices=VJP_FORMS, default="split",
                    help="how the VJP graph computes (onnx_export.py); default split")
    ap.add_argument("--base", type=int, default=8)
    ap.add_argument("--mults", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--n-res", type=int, default=1)
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lora-seed", type=int, default=1234, help="seed of the LoRA down-factor init")
    ap.add_argument("--no-ema", action="store_true")
    ap.add_argument("--vjp-size", type=int, nargs=3, default=[1, 128, 128], metavar=("B", "H", "W"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--fixtures", action="store_true",
                    help="write the check bundle into --out as fixture.json/.bin (test model)")
    ap.add_argument("--check-dir", default=None, help="where to write the check bundle")
    ap.add_argument("--no-deno-check", action="store_true")
    ap.add_argument("--voxel-mm", type=float, default=2.086,
                    help="voxel size of the training data (mm, isotropic), stamped as grid.voxel_mm")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("PETREL_THREADS", "1")))
    t_start = time.time()

    model, train_info = load_model(args)
    if not args.from_prior:  # a rebuilt prior keeps its shipped LoRA initial values
        model.enable_lora(args.lora_seed)
    names = prepare(model)
    init = model.adaptable_params()
    init_list = [init[n].detach().clone() for n in names]
    n_levels = len(model.config["mults"])
    os.makedirs(args.out, exist_ok=True)

    metadata = {
        "format": "petrel-prior-v1",
        "schedule": {"kind": "linear", "T": T_STEPS, "beta_start": BETA_START, "beta_end": BETA_END},
        "prediction": "epsilon",
        "timestep_input": "t as float32 [B], the integer DDPM step 0..T-1",
        "channels": {"pet": 3, "mr": 3},
        "scaling": {"pet": "divided by volume max of activity, ~[0,1]", "mr": "divided by volume max"},
        "architecture": {**model.config, "kind": "unet-2.5d", "norm": "GroupNorm", "act": "SiLU",
                         "attention": "single-head self-attention at the lowest resolution",
                         "spatial_multiple": 2 ** (n_levels - 1),
                         "base_params": int(sum(p.numel() for p in model.parameters()))},
        "inputs": {"denoiser": ["x_t", "t", "mr", "p.*"], "vjp": ["x_t", "t", "mr", "p.*", "grad_eps"]},
        "shapes": {"denoiser": "dynamic B, H, W (H, W multiples of spatial_multiple)",
                   "vjp": {"B": args.vjp_size[0], "H": args.vjp_size[1], "W": args.vjp_size[2]}},
        "lora": {
            "rank": args.rank if args.random else model.config["rank"],
            "scale": 1.0,
            "rule": "W_eff = W + up @ down (conv: up [out,r,1,1], down [r,in,k,k]; linear: up [out,r], "
                    "down [r,in]); bias replaces the layer bias",
            "params": [{"name": input_name(n), "grad": grad_name(n), "shape": list(init[n].shape)}
                       for n in names],
            "init": {"file": "lora_init.bin", "index": "lora_init.json", "dtype": "float32",
                     "byte_order": "little",
                     "layout": "concatenated in lora.params order, each C order, no header",
                     "rule": "down ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (torch.Generator seed "
                             f"{args.lora_seed}), up = 0, bias = trained base bias",
                     "count": int(sum(t.numel() for t in init_list))},
        },
        "training": train_info,
    }
    metadata["export"] = {"vjp_form": args.vjp_form}
    if args.from_prior:
        src = args.source_meta
        metadata["lora"]["init"]["rule"] = src["lora"]["init"]["rule"]
        metadata["export"]["rebuilt_from"] = "an exported prior (scripts/prior/from_prior.py)"
    if args.from_prior and "grid" in args.source_meta:
        metadata["grid"] = args.source_meta["grid"]
    elif not args.random:
        # what the runtime checks a study's grid against (core/diffusion/grid.ts)
        metadata["grid"] = {"voxel_mm": [args.voxel_mm] * 3, "rel_tolerance": 0.05,
                            "note": "voxel size of the training stacks; a study's grid must be within "
                                    "rel_tolerance of it"}

    # initial values
    write_bundle(os.path.join(args.out, "lora_init.json"),
                 [(input_name(n), t.numpy()) for n, t in zip(names, init_list)])
    metadata["lora"]["init"]["sha256"] = sha256(os.path.join(args.out, "lora_init.bin"))

    # example inputs, with non-zero LoRA so every gradient is exercised
    gen = torch.Generator().manual_seed(args.seed + 7)
    B, H, W = args.vjp_size
    x_t = torch.randn(B, 3, H, W, generator=gen)
    t = torch.tensor([137.0] * B)
    mr = torch.rand(B, 3, H, W, generator=gen)
    g = torch.randn(B, 3, H, W, generator=gen)
    ps = []
    for n, p0 in zip(names, init_list):
        if n.endswith("lora_up"):
            ps.append(0.05 * torch.randn(p0.shape, generator=gen))
        else:
            ps.append(p0 + 0.01 * torch.randn(p0.shape, generator=gen))

    print("tracing the VJP ...", flush=True)
    gm = trace_vjp(model, names, [x_t, t, mr, *ps, g], args.vjp_form)
    traced = gm(x_t, t, mr, *ps, g)
    eps_ref, grads_ref = reference_vjp(model, names, x_t, t, mr, ps, g)
    gscale = max(float(gr.abs().max()) for gr in grads_ref)
    err_eps = float((traced[0] - eps_ref).abs().max())
    err_grad = max(float((a - b).abs().max()) for a, b in zip(traced[1:], grads_ref)) / gscale
    print(f"traced VJP vs autograd: eps max abs err {err_eps:.2e}, grads max err / max|grad| {err_grad:.2e}")
    assert err_eps < 1e-4 and err_grad < 1e-4, "traced VJP disagrees with torch autograd"

    den_path = os.path.join(args.out, "denoiser.onnx")
    vjp_path = os.path.join(args.out, "vjp.onnx")
    export_denoiser(model, names, (x_t, t, mr, *ps), metadata, den_path)
    export_vjp(gm, names, [x_t, t, mr, *ps, g], metadata, vjp_path)
    print("denoiser ops:", op_histogram(den_path))
    print("vjp ops:", op_histogram(vjp_path))

    # check bundle: the same inputs, PyTorch outputs; plus a dynamic-shape denoiser case
    m = model.config["mults"]
    mult = 2 ** (len(m) - 1)
    B2, H2, W2 = 2, 4 * mult * 2, 3 * mult * 2
    x2 = torch.randn(B2, 3, H2, W2, generator=gen)
    t2 = torch.tensor([5.0, 190.0])
    mr2 = torch.rand(B2, 3, H2, W2, generator=gen)
    with torch.no_grad():
        from onnx_export import _Denoiser
        den = _Denoiser(model, names)
        eps2 = den(x2, t2, mr2, *ps)
        eps_init = den(x_t, t, mr, *init_list)
    tensors = [("case0.x_t", x_t), ("case0.t", t), ("case0.mr", mr), ("case0.grad_eps", g)]
    tensors += [(f"case0.{input_name(n)}", p) for n, p in zip(names, ps)]
    tensors += [("case0.out.eps", eps_ref)]
    tensors += [(f"case0.out.{grad_name(n)}", gr) for n, gr in zip(names, grads_ref)]
    tensors += [("init.out.eps", eps_init)]
    tensors += [("dyn.x_t", x2), ("dyn.t", t2), ("dyn.mr", mr2), ("dyn.out.eps", eps2)]
    check_dir = args.out if args.fixtures else (args.check_dir or os.path.join(args.out, "check"))
    os.makedirs(check_dir, exist_ok=True)
    desc = {
        "description": "PyTorch reference outputs of the petrel prior in this folder. case0: vjp/denoiser "
                       "inputs (x_t, t, mr, grad_eps, p.*, non-zero LoRA) and PyTorch outputs (eps, "
                       "grad.*). init: eps of the denoiser with case0 x_t/t/mr and the lora_init "
                       "parameters (= the base model). dyn: denoiser with case0 p.* at another batch "
                       "and spatial size (dynamic axes).",
        "model_dir": os.path.relpath(os.path.abspath(args.out), os.path.abspath(check_dir)),
        "tolerance": {"eps_abs": 1e-4, "grad_rel_to_max": 1e-4},
        "grad_scale": gscale,
    }
    write_bundle(os.path.join(check_dir, "fixture.json"),
                 [(k, v.detach().numpy()) for k, v in tensors], desc)

    if not args.no_deno_check:
        deno = shutil.which("deno")
        cmd = ([deno] if deno else ["npx", "-y", "deno@2.9.6"]) + [
            "run", "--allow-read", "--allow-env", os.path.join(REPO, "scripts/prior/check_onnx.ts"),
            os.path.join(check_dir, "fixture.json")]
        print("ONNX check:", " ".join(cmd), flush=True)
        r = subprocess.run(cmd, cwd=REPO)
        if r.returncode != 0:
            sys.exit("ONNX check against PyTorch failed (see above)")
    print(f"export done in {time.time() - t_start:.1f}s -> {args.out}")


if __name__ == "__main__":
    main()
