"""Raw float32 tensor bundles: one little-endian `.bin` plus a JSON index.

Index format (`<name>.json`):
  {"format": "petrel-tensors-v1", "file": "<name>.bin", "dtype": "float32", "byte_order": "little",
   "tensors": [{"name": str, "shape": [int, ...] (C order, slowest axis first, as in PyTorch/ONNX),
                "offset": int (in float32 elements from the start of the file)}]}
Tensors are stored back to back, C order, in the listed order, without padding or header.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Sequence, Tuple

import numpy as np


def write_bundle(path_json: str, tensors: Sequence[Tuple[str, np.ndarray]], extra: Dict = None) -> Dict:
    """Write tensors as `<stem>.bin` + `<stem>.json` (atomically: temp name, then rename)."""
    stem = os.path.splitext(path_json)[0]
    bin_path = stem + ".bin"
    index: List[Dict] = []
    offset = 0
    parts = []
    for name, arr in tensors:
        a = np.ascontiguousarray(np.asarray(arr, dtype="<f4"))
        index.append({"name": name, "shape": list(a.shape), "offset": offset})
        offset += a.size
        parts.append(a.reshape(-1))
    data = np.concatenate(parts) if parts else np.zeros(0, "<f4")
    doc = {"format": "petrel-tensors-v1", "file": os.path.basename(bin_path), "dtype": "float32",
           "byte_order": "little", "count": int(offset), "tensors": index}
    if extra:
        doc.update(extra)
    tmp = bin_path + ".tmp"
    data.astype("<f4").tofile(tmp)
    os.replace(tmp, bin_path)
    tmp = path_json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, path_json)
    return doc


def read_bundle(path_json: str) -> Dict[str, np.ndarray]:
    with open(path_json) as f:
        doc = json.load(f)
    data = np.fromfile(os.path.join(os.path.dirname(path_json), doc["file"]), dtype="<f4")
    out = {}
    for t in doc["tensors"]:
        n = int(np.prod(t["shape"])) if t["shape"] else 1
        out[t["name"]] = data[t["offset"]:t["offset"] + n].reshape(t["shape"])
    return out


def write_raw(path: str, arrays: Sequence[np.ndarray]) -> None:
    """Concatenate arrays as raw little-endian float32 (no header), atomically."""
    tmp = path + ".tmp"
    np.concatenate([np.asarray(a, "<f4").reshape(-1) for a in arrays]).astype("<f4").tofile(tmp)
    os.replace(tmp, path)
