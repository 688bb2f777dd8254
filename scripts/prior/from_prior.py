"""Rebuild a petrel prior's PyTorch model from its exported files (no training checkpoint needed).

`denoiser.onnx` keeps every frozen weight as a named initialiser (`model.<param>`), except the
GroupNorm affines, which the exporter folds into the Mul/Add that follow each
InstanceNormalization (taken here in graph order, which is the modules' forward order); the
adaptable parameters (LoRA factors and the biases they replace) are `lora_init`. Re-exporting the
rebuilt model in the merged form reproduces the shipped graphs' outputs bit for bit (checked for
models/fdg_prior, docs/performance.md), so a graph can be re-exported in another form without the
checkpoint.
"""

from __future__ import annotations

import json
import os
from typing import Dict, Tuple

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from model import UNet


def model_from_prior(folder: str) -> Tuple[UNet, Dict]:
    """The UNet of the prior in `folder` (denoiser.onnx + lora_init) and its metadata."""
    proto = onnx.load(os.path.join(folder, "denoiser.onnx"))
    entries = {p.key: p.value for p in proto.metadata_props}
    if "petrel" not in entries:
        raise ValueError(f"{folder}/denoiser.onnx has no petrel metadata")
    meta = json.loads(entries["petrel"])
    a = meta["architecture"]
    model = UNet(a["base"], a["mults"], a["n_res"], a["rank"], a["pet_ch"], a["mr_ch"])
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    for node in proto.graph.node:  # constants as nodes, and Identity copies of repeated values
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            inits.setdefault(node.output[0], numpy_helper.to_array(node.attribute[0].t))
        elif node.op_type == "Identity" and node.input[0] in inits:
            inits.setdefault(node.output[0], inits[node.input[0]])
    sd: Dict[str, torch.Tensor] = {k[len("model."):]: torch.from_numpy(v.copy())
                                   for k, v in inits.items() if k.startswith("model.")}
    consumers: Dict[str, list] = {}
    for node in proto.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    norms = [n for n, m in model.named_modules() if isinstance(m, torch.nn.GroupNorm)]
    inorm = [n for n in proto.graph.node if n.op_type == "InstanceNormalization"]
    if len(inorm) != len(norms):
        raise ValueError(f"{len(inorm)} InstanceNormalization nodes for {len(norms)} GroupNorms")
    for name, node in zip(norms, inorm):
        cur, gamma, beta = node.output[0], None, None
        for _ in range(8):  # InstanceNormalization -> Reshape -> Mul(gamma) -> Add(beta)
            nxt = consumers[cur][0]
            consts = [i for i in nxt.input if i in inits]
            if nxt.op_type == "Mul" and gamma is None and consts:
                gamma = consts[0]
            elif nxt.op_type == "Add" and gamma is not None and consts:
                beta = consts[0]
                break
            cur = nxt.output[0]
        if gamma is None or beta is None:
            raise ValueError(f"no affine found after {node.name} for {name}")
        sd[f"{name}.weight"] = torch.from_numpy(inits[gamma].reshape(-1).copy())
        sd[f"{name}.bias"] = torch.from_numpy(inits[beta].reshape(-1).copy())
    init = meta["lora"]["init"]
    index = json.load(open(os.path.join(folder, init["index"])))
    raw = np.fromfile(os.path.join(folder, init["file"]), dtype="<f4")
    for t in index["tensors"]:
        name = t["name"][2:] if t["name"].startswith("p.") else t["name"]
        n = int(np.prod(t["shape"]))
        sd[name] = torch.from_numpy(raw[t["offset"]:t["offset"] + n].reshape(t["shape"]).copy())
    missing = sorted(set(model.state_dict()) - set(sd))
    if missing:
        raise ValueError(f"{folder}: no value for {len(missing)} parameter(s), first {missing[0]}")
    model.load_state_dict(sd, strict=True)
    return model, meta
