"""Conditional 2.5D DDPM epsilon-prediction U-Net with LoRA adapters (petrel prior).

Input: 3 noisy PET slices (x_t) + 3 MR slices (conditioning), timestep t (float, 0..T-1).
Output: epsilon for the 3 PET slices.

LoRA layout: every conv and linear inside the residual and attention blocks is a `LoraConv` /
`LoraLinear`. Its effective weight is `W + up @ down` (scale 1, no alpha), where `W` is the frozen
base weight, `down` has shape [r, in, kh, kw] (conv) or [r, in] (linear), `up` has shape
[out, r, 1, 1] (conv) or [out, r] (linear) and is initialised to zero. The layer's bias is an
adaptable parameter too (its initial value is the trained base bias). All other weights (stem,
time MLP, down/up-sampling convs, output head, GroupNorm affine) are frozen.
"""

from __future__ import annotations

import inspect
import math
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

T_STEPS = 1000
BETA_START = 1e-4
BETA_END = 0.02


def linear_schedule(T: int = T_STEPS) -> Tuple[torch.Tensor, torch.Tensor]:
    """Return (betas, alpha_bar) of the linear DDPM schedule in float64."""
    betas = torch.linspace(BETA_START, BETA_END, T, dtype=torch.float64)
    alpha_bar = torch.cumprod(1.0 - betas, dim=0)
    return betas, alpha_bar


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of a float timestep vector [B] -> [B, dim] (cos first, then sin)."""
    half = dim // 2
    dtype = t.dtype if t.is_floating_point() else torch.float32
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=dtype) / half)
    args = t.to(dtype)[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class LoraConv(nn.Module):
    """3x3 / 1x1 convolution with a frozen base weight, LoRA factors and an adaptable bias."""

    def __init__(self, cin: int, cout: int, k: int = 3, rank: int = 4):
        super().__init__()
        self.cin, self.cout, self.k, self.rank = cin, cout, k, rank
        conv = nn.Conv2d(cin, cout, k, padding=k // 2)
        self.weight = nn.Parameter(conv.weight.data.clone())
        self.bias = nn.Parameter(conv.bias.data.clone())
        self.lora_down = nn.Parameter(torch.zeros(rank, cin, k, k))
        self.lora_up = nn.Parameter(torch.zeros(cout, rank, 1, 1))
        self.lora_enabled = False

    def init_lora(self, gen: torch.Generator) -> None:
        """Kaiming-uniform(a=sqrt(5)) down factor, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)); up = 0."""
        bound = 1.0 / math.sqrt(self.cin * self.k * self.k)
        with torch.no_grad():
            self.lora_down.copy_((torch.rand(self.lora_down.shape, generator=gen) * 2 - 1) * bound)
            self.lora_up.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if self.lora_enabled:
            delta = self.lora_up.reshape(self.cout, self.rank) @ self.lora_down.reshape(self.rank, -1)
            w = w + delta.reshape(self.cout, self.cin, self.k, self.k)
        return F.conv2d(x, w, self.bias, padding=self.k // 2)


class LoraLinear(nn.Module):
    """Linear layer with a frozen base weight, LoRA factors and an adaptable bias."""

    def __init__(self, cin: int, cout: int, rank: int = 4):
        super().__init__()
        self.cin, self.cout, self.rank = cin, cout, rank
        lin = nn.Linear(cin, cout)
        self.weight = nn.Parameter(lin.weight.data.clone())
        self.bias = nn.Parameter(lin.bias.data.clone())
        self.lora_down = nn.Parameter(torch.zeros(rank, cin))
        self.lora_up = nn.Parameter(torch.zeros(cout, rank))
        self.lora_enabled = False

    def init_lora(self, gen: torch.Generator) -> None:
        bound = 1.0 / math.sqrt(self.cin)
        with torch.no_grad():
            self.lora_down.copy_((torch.rand(self.lora_down.shape, generator=gen) * 2 - 1) * bound)
            self.lora_up.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if self.lora_enabled:
            w = w + self.lora_up @ self.lora_down
        return F.linear(x, w, self.bias)


def groups_for(ch: int) -> int:
    for g in (8, 4, 2, 1):
        if ch % g == 0 and ch // g >= 2:
            return g
    return 1


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int, rank: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups_for(cin), cin)
        self.conv1 = LoraConv(cin, cout, 3, rank)
        self.emb = LoraLinear(emb_dim, cout, rank)
        self.norm2 = nn.GroupNorm(groups_for(cout), cout)
        self.conv2 = LoraConv(cout, cout, 3, rank)
        self.skip = LoraConv(cin, cout, 1, rank) if cin != cout else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        s = x if self.skip is None else self.skip(x)
        return s + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all pixels (used at the lowest resolution only)."""

    def __init__(self, ch: int, rank: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups_for(ch), ch)
        self.qkv = LoraConv(ch, 3 * ch, 1, rank)
        self.proj = LoraConv(ch, ch, 1, rank)
        self.ch = ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, c, h * w)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
        att = torch.softmax(torch.bmm(q.transpose(1, 2), k) * (c ** -0.5), dim=-1)  # [b, hw, hw]
        out = torch.bmm(v, att.transpose(1, 2)).reshape(b, c, h, w)
        return x + self.proj(out)


class UNet(nn.Module):
    """2.5D conditional U-Net. `mults` gives the width multipliers per level (len = levels)."""

    def __init__(self, base: int = 32, mults: Sequence[int] = (1, 2, 2), n_res: int = 1,
                 rank: int = 4, pet_ch: int = 3, mr_ch: int = 3):
        super().__init__()
        self.config = dict(base=base, mults=list(mults), n_res=n_res, rank=rank,
                           pet_ch=pet_ch, mr_ch=mr_ch)
        emb_dim = base * 4
        self.base = base
        self.time_mlp = nn.Sequential(nn.Linear(base, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.stem = nn.Conv2d(pet_ch + mr_ch, base, 3, padding=1)
        chans = [base * m for m in mults]
        self.down = nn.ModuleList()
        skips = [base]
        cur = base
        for li, ch in enumerate(chans):
            blocks = nn.ModuleList()
            for _ in range(n_res):
                blocks.append(ResBlock(cur, ch, emb_dim, rank))
                cur = ch
                skips.append(cur)
            down = nn.Conv2d(cur, cur, 3, stride=2, padding=1) if li < len(chans) - 1 else None
            if down is not None:
                skips.append(cur)
            self.down.append(nn.ModuleDict({"res": blocks, **({"ds": down} if down is not None else {})}))
        self.mid1 = ResBlock(cur, cur, emb_dim, rank)
        self.mid_attn = AttnBlock(cur, rank)
        self.mid2 = ResBlock(cur, cur, emb_dim, rank)
        self.up = nn.ModuleList()
        for li, ch in reversed(list(enumerate(chans))):
            blocks = nn.ModuleList()
            for _ in range(n_res + 1):
                blocks.append(ResBlock(cur + skips.pop(), ch, emb_dim, rank))
                cur = ch
            entry = {"res": blocks}
            if li > 0:
                entry["us"] = nn.Conv2d(cur, cur, 3, padding=1)
            self.up.append(nn.ModuleDict(entry))
        self.out_norm = nn.GroupNorm(groups_for(cur), cur)
        self.out_conv = nn.Conv2d(cur, pet_ch, 3, padding=1)
        self.n_levels = len(chans)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, mr: torch.Tensor) -> torch.Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.base))
        h = self.stem(torch.cat([x_t, mr], dim=1))
        hs = [h]
        for level in self.down:
            for blk in level["res"]:
                h = blk(h, emb)
                hs.append(h)
            if "ds" in level:
                h = level["ds"](h)
                hs.append(h)
        h = self.mid1(h, emb)
        h = self.mid_attn(h)
        h = self.mid2(h, emb)
        for level in self.up:
            for blk in level["res"]:
                h = blk(torch.cat([h, hs.pop()], dim=1), emb)
            if "us" in level:
                h = level["us"](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out_conv(F.silu(self.out_norm(h)))

    # ---- LoRA helpers -------------------------------------------------------------------------
    def lora_modules(self) -> List[Tuple[str, nn.Module]]:
        return [(n, m) for n, m in self.named_modules() if isinstance(m, (LoraConv, LoraLinear))]

    def enable_lora(self, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        for _, m in self.lora_modules():
            m.init_lora(gen)
            m.lora_enabled = True

    def adaptable_names(self) -> List[str]:
        """Parameter names (as in state_dict) of the adaptable parameters, in graph-input order."""
        out = []
        for n, _ in self.lora_modules():
            out += [f"{n}.lora_down", f"{n}.lora_up", f"{n}.bias"]
        return out

    def adaptable_params(self) -> Dict[str, torch.Tensor]:
        sd = dict(self.named_parameters())
        return {n: sd[n] for n in self.adaptable_names()}


def load_checkpoint(path: str) -> Dict:
    """torch.load of a train.py checkpoint on the CPU, on torch 1.13 and 2.x alike.

    torch >= 2.6 loads weights only by default; the checkpoint also holds the NumPy RNG state and
    the training record (plain Python values), written by this project, so it is loaded in full.
    """
    kw = {"weights_only": False} if "weights_only" in inspect.signature(torch.load).parameters else {}
    return torch.load(path, map_location="cpu", **kw)


def pad_to_multiple(h: int, levels: int) -> int:
    m = 2 ** (levels - 1)
    return ((h + m - 1) // m) * m
