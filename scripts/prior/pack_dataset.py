#!/usr/bin/python3
"""Pack a petrel-stacks-v1 directory into one compressed .npz that train.py reads (--data X.npz).

  /usr/bin/python3 scripts/prior/pack_dataset.py out/datasets/prior_v2 out/datasets/prior_v2.npz

Adjacent stacks share slices (with --stride 1 every slice is in 3 stacks), so each distinct slice
(subject, seed, z) is stored once. Keys: pet_slices, mr_slices (float16 (S, H, W)),
fraction_slices (uint8 (S, G, H, W), when present), stack_slices (int32 (N, 3): the slices of each
stack) and manifest (the manifest JSON as uint8 bytes, its entries and count reduced to the kept
stacks); `stacks_io.load_stacks` rebuilds (N, 3, H, W) arrays from them. Stacks of --exclude-subjects
(default the validation and test subjects 50-53) are left out. This keeps the file small enough to
carry to a GPU machine (64 MiB there). Written to a temporary name, then renamed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="petrel-stacks-v1 directory")
    ap.add_argument("dst", help="output .npz")
    ap.add_argument("--exclude-subjects", default="50,51,52,53")
    args = ap.parse_args()
    if not args.dst.endswith(".npz"):
        sys.exit(f"{args.dst}: the output name must end in .npz")
    mpath = os.path.join(args.src, "manifest.json")
    if not os.path.exists(mpath):
        sys.exit(f"{args.src}: no manifest.json (not a petrel-stacks-v1 directory, or incomplete)")
    with open(mpath) as f:
        manifest = json.load(f)
    pet = np.load(os.path.join(args.src, "pet.npy"), mmap_mode="r")
    mr = np.load(os.path.join(args.src, "mr.npy"), mmap_mode="r")
    fpath = os.path.join(args.src, "fractions.npy")
    frac = np.load(fpath, mmap_mode="r") if os.path.exists(fpath) else None
    excluded = {s.strip() for s in args.exclude_subjects.split(",") if s.strip()}
    keep = [i for i, e in enumerate(manifest["entries"]) if str(e["subject"]) not in excluded]
    if not keep:
        sys.exit(f"{args.src}: no stacks left after excluding {sorted(excluded)}")
    manifest = dict(manifest)
    manifest["entries"] = [manifest["entries"][i] for i in keep]
    manifest["count"] = len(keep)
    manifest["subjects"] = [s for s in manifest["subjects"] if s not in excluded]
    manifest["packed_from"] = {"dir": args.src, "excluded_subjects": sorted(excluded)}
    slot, rows = {}, []  # (subject, seed, z) -> slice row; (stack, channel) of its first use
    stack_slices = np.empty((len(keep), 3), np.int32)
    for k, i in enumerate(keep):
        e = manifest["entries"][k]
        for d in range(3):
            key = (str(e["subject"]), int(e["seed"]), int(e["slice_centre"]) - 1 + d)
            if key not in slot:
                slot[key] = len(rows)
                rows.append((i, d))
            else:  # the same slice of the same study: it must be identical
                i0, d0 = rows[slot[key]]
                if not (np.array_equal(pet[i0, d0], pet[i, d]) and np.array_equal(mr[i0, d0], mr[i, d])):
                    sys.exit(f"{args.src}: stacks {i0} and {i} disagree on slice {key}")
            stack_slices[k, d] = slot[key]
    ri = np.array([r[0] for r in rows])
    rd = np.array([r[1] for r in rows])
    arrays = {"pet_slices": np.asarray(pet[ri, rd]), "mr_slices": np.asarray(mr[ri, rd]),
              "stack_slices": stack_slices,
              "manifest": np.frombuffer(json.dumps(manifest).encode(), np.uint8)}
    if frac is not None:
        arrays["fraction_slices"] = np.asarray(frac[ri, :, rd])
    tmp = args.dst[:-4] + ".tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, args.dst)
    print(f"{args.dst}: {len(keep)} stacks ({len(rows)} distinct slices) of {len(manifest['subjects'])} subjects, "
          f"{os.path.getsize(args.dst) / 2 ** 20:.1f} MiB")


if __name__ == "__main__":
    main()
