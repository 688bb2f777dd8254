"""Read petrel-stacks-v1 training data (a directory, or a pack_dataset.py .npz) with NumPy only."""

from __future__ import annotations

import json
import os
import sys

import numpy as np


def load_stacks(path: str):
    """A petrel-stacks-v1 directory or a pack_dataset.py .npz -> (pet, mr, fractions|None, manifest)."""
    if path.endswith(".npz"):
        if not os.path.exists(path):
            sys.exit(f"{path}: no such file")
        z = np.load(path)
        missing = {"pet_slices", "mr_slices", "stack_slices", "manifest"} - set(z.files)
        if missing:
            sys.exit(f"{path}: not a pack_dataset.py file (missing {sorted(missing)})")
        manifest = json.loads(bytes(z["manifest"]).decode())
        idx = z["stack_slices"]  # (N, 3) rows of the distinct slices
        frac = z["fraction_slices"][idx].transpose(0, 2, 1, 3, 4) if "fraction_slices" in z.files else None
        return (z["pet_slices"][idx], z["mr_slices"][idx],
                None if frac is None else np.ascontiguousarray(frac), manifest)
    mpath = os.path.join(path, "manifest.json")
    if not os.path.exists(mpath):
        sys.exit(f"{path}: no manifest.json (not a petrel-stacks-v1 directory, or still being written)")
    with open(mpath) as f:
        manifest = json.load(f)
    # a few hundred MB at most: keep it in memory (float16 / uint8)
    pet = np.ascontiguousarray(np.load(os.path.join(path, "pet.npy"), mmap_mode="r"))
    mr = np.ascontiguousarray(np.load(os.path.join(path, "mr.npy"), mmap_mode="r"))
    fpath = os.path.join(path, "fractions.npy")
    frac = np.ascontiguousarray(np.load(fpath, mmap_mode="r")) if os.path.exists(fpath) else None
    return pet, mr, frac, manifest
