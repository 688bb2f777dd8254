#!/usr/bin/python3
"""Tests of the prior's training data path: augmentations and exact resume (tiny, CPU, ~30 s).

  /usr/bin/python3 -m unittest discover -s scripts/prior -p 'test_train.py'

Run by tests/diffusion/prior_training_test.ts when /usr/bin/python3 has torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from augment import (FDG_TABLE, AMYLOID_TABLE, AugmentConfig, apply_lesions, augment_sample,  # noqa: E402
                     draw_lesions, lesion_weight, make_batch, rotate, tracer_remap)

VOX = 2.086


def phantom(h: int = 32, w: int = 32, seed: int = 0):
    """A disc head: extra-cerebral ring, grey ring, white core, CSF blob; smooth PV edges; texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2, indexing="ij")
    r = np.sqrt(yy ** 2 + xx ** 2) / (min(h, w) / 2)

    def disc(rad):
        return np.clip((rad - r) * min(h, w) / 2 + 0.5, 0, 1)
    head, brain, white = disc(0.95), disc(0.8), disc(0.5)
    csf = np.clip(1.0 - np.sqrt((yy - 3) ** 2 + (xx + 4) ** 2) / 2.5, 0, 1) * white
    f2 = np.stack([csf, brain - white, white - csf, head - brain])  # csf, grey, white, extra
    frac = np.repeat(f2[:, None], 3, axis=1)  # (4, 3, h, w)
    texture = np.exp(0.05 * rng.standard_normal((3, h, w)))
    pet = np.tensordot(FDG_TABLE, frac, axes=(0, 0)) * texture
    mr = np.tensordot(np.array([0.12, 0.55, 0.85, 0.6]), frac, axes=(0, 0))
    return (pet / pet.max()).astype(np.float32), (mr / mr.max()).astype(np.float32), frac


def only(kind: str, **kw) -> AugmentConfig:
    cfg = AugmentConfig(kinds=(kind,), voxel_mm=VOX)
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


class AugmentTests(unittest.TestCase):
    def test_none_is_a_plain_crop(self) -> None:
        pet, mr, frac = phantom()
        p, m = augment_sample(pet, mr, (frac * 255).round().astype(np.uint8), [1, 2, 3, 4, 5, 6],
                              AugmentConfig(), 32)
        np.testing.assert_array_equal(p, pet)
        np.testing.assert_array_equal(m, mr)

    def test_flip(self) -> None:
        pet, mr, _ = phantom()
        flips = [lambda a: a, lambda a: a[:, :, ::-1], lambda a: a[::-1], lambda a: a[::-1, :, ::-1]]
        seen = set()
        for s in range(16):
            p, m = augment_sample(pet, mr, None, [0, 0, 0, 0, s, 0], only("flip"), 32)
            hits = [i for i, f in enumerate(flips) if np.array_equal(p, f(pet))]
            self.assertEqual(len(hits), 1, "the output is one flip of the input")
            np.testing.assert_array_equal(m, flips[hits[0]](mr))  # MR flipped with the PET
            seen.add(hits[0])
        self.assertEqual(seen, {0, 1, 2, 3}, "all four flip combinations occur")

    def test_rotation(self) -> None:
        pet, mr, _ = phantom()
        np.testing.assert_allclose(rotate(pet, 0.0), pet, atol=1e-6)
        # bilinear at exact grid points: 90° is a permutation (counter-clockwise in (x, y) = (col, row))
        r90 = rotate(pet, 90.0)
        self.assertTrue(np.allclose(r90, np.rot90(pet, 1, axes=(1, 2)), atol=1e-5)
                        or np.allclose(r90, np.rot90(pet, -1, axes=(1, 2)), atol=1e-5))
        # a linear ramp is reproduced exactly by bilinear sampling: the rotated ramp at interior
        # pixels equals the ramp at the analytically rotated coordinates
        h = 32
        yy, xx = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(h) - (h - 1) / 2, indexing="ij")
        ramp = (3.0 + 0.02 * yy + 0.05 * xx)[None].astype(np.float32)
        th = np.radians(8.0)
        want = 3.0 + 0.02 * (np.cos(th) * yy - np.sin(th) * xx) + 0.05 * (np.sin(th) * yy + np.cos(th) * xx)
        got = rotate(ramp, 8.0)[0]
        inner = (slice(6, 26), slice(6, 26))
        np.testing.assert_allclose(got[inner], want[inner], atol=1e-5)
        # the augmentation rotates PET and MR together: the disc centre stays put, mass is kept
        p, m = augment_sample(pet, mr, None, [0, 0, 0, 3, 0, 0], only("rot", p_rot=1.0), 32)
        self.assertFalse(np.array_equal(p, pet))
        self.assertAlmostEqual(float(p.sum() / pet.sum()), 1.0, delta=0.02)
        self.assertAlmostEqual(float(m.sum() / mr.sum()), 1.0, delta=0.02)

    def test_tracer_remap_keeps_label_structure(self) -> None:
        pet, mr, frac = phantom()
        pure = {g: frac[g] > 0.999 for g in range(4)}
        for lam in (0.0, 1.0):
            table = (1 - lam) * FDG_TABLE + lam * AMYLOID_TABLE
            out = tracer_remap(pet, frac.astype(np.float32), table)
            self.assertAlmostEqual(float(out.max()), float(pet.max()), places=5)
            # in pure voxels of a group, the result is the group's uptake times the input's texture:
            # out / pet is one constant per group, in the ratio table / FDG
            for g in (1, 2):
                ratio = out[pure[g]] / pet[pure[g]]
                self.assertLess(float(ratio.std() / ratio.mean()), 1e-4)
            rg = float((out[pure[1]] / pet[pure[1]]).mean())
            rw = float((out[pure[2]] / pet[pure[2]]).mean())
            self.assertAlmostEqual(rw / rg, (table[2] / FDG_TABLE[2]) / (table[1] / FDG_TABLE[1]), places=3)
            if lam == 0.0:
                # unchanged up to the texture of faint partial-volume edges (modulation 1 there)
                np.testing.assert_allclose(out, pet, rtol=0, atol=0.005)
            else:  # amyloid-like: white matter above grey matter, unlike FDG
                self.assertGreater(float(out[pure[2]].mean()), float(out[pure[1]].mean()))
                self.assertLess(float(pet[pure[2]].mean()), float(pet[pure[1]].mean()))
            # the ranking of voxels inside one group (texture) is kept
            for g in (1, 2):
                np.testing.assert_array_equal(np.argsort(out[pure[g]], kind="stable"),
                                              np.argsort(pet[pure[g]], kind="stable"))

    def test_mr_invisible_lesion_changes_pet_not_mr(self) -> None:
        pet, mr, frac = phantom()
        f8 = (frac * 255).round().astype(np.uint8)
        cfg = only("lesion", p_lesion=1.0)
        seeds = [0, 11, 0, 0, 0, 0]
        p, m = augment_sample(pet, mr, f8, seeds, cfg, 32)
        p0, m0 = augment_sample(pet, mr, f8, seeds, AugmentConfig(voxel_mm=VOX), 32)
        np.testing.assert_array_equal(m, m0)  # the MR does not show it
        self.assertFalse(np.array_equal(p, p0))
        # the change is exactly the drawn spheres: recompute them independently
        g = np.random.default_rng(11)
        g.random()
        les = draw_lesions(g, pet, frac.astype(np.float32), cfg)
        self.assertGreaterEqual(len(les), 1)
        for le in les:
            self.assertGreaterEqual(frac[1, 1][int(round(le["y"])), int(round(le["x"]))]
                                    + frac[2, 1][int(round(le["y"])), int(round(le["x"]))], 0.3)
        np.testing.assert_allclose(p, apply_lesions(pet, les, VOX), rtol=1e-6)
        outside = np.ones(pet.shape, bool)
        for le in les:
            outside &= lesion_weight(pet.shape, le, VOX) == 0
        np.testing.assert_array_equal(p[outside], pet[outside])
        # a sphere's weight sums to about its volume in voxels
        big = {"y": 16.0, "x": 16.0, "z": 0.0, "radius_mm": 3.0, "factor": 2.0}
        wsum = float(lesion_weight((3, 32, 32), big, VOX).sum())
        self.assertAlmostEqual(wsum, 4 / 3 * np.pi * (3.0 / VOX) ** 3, delta=0.25 * wsum)

    def test_lesion_flags_set_the_draws(self) -> None:
        pet, mr, frac = phantom(64, 64)
        cfg = only("lesion").with_lesions(p=1.0, max_count=5, radius_mm=(7.0, 9.0))
        self.assertEqual((cfg.p_lesion, cfg.max_lesions, cfg.lesion_radius_mm), (1.0, 5, (7.0, 9.0)))
        counts = set()
        for seed in range(40):
            les = draw_lesions(np.random.default_rng(seed), pet, frac.astype(np.float32), cfg)
            counts.add(len(les))
            for le in les:
                self.assertTrue(7.0 <= le["radius_mm"] <= 9.0)
        self.assertEqual(counts, {1, 2, 3, 4, 5})
        # None keeps a field; the default config is left as it was
        base = AugmentConfig(voxel_mm=VOX)
        self.assertEqual(base.with_lesions().lesion_radius_mm, (2.0, 6.0))
        self.assertEqual(base.lesion_radius_mm, (2.0, 6.0))
        for bad in ({"p": 1.5}, {"max_count": 0}, {"radius_mm": (5.0, 3.0)}, {"radius_mm": (0.0, 3.0)}):
            with self.assertRaises(ValueError):
                base.with_lesions(**bad)

    def test_mr_jitter_leaves_pet(self) -> None:
        pet, mr, frac = phantom()
        f8 = (frac * 255).round().astype(np.uint8)
        p, m = augment_sample(pet, mr, f8, [0, 0, 5, 0, 0, 0], only("mr", p_mr=1.0), 32)
        np.testing.assert_array_equal(p, pet)
        self.assertFalse(np.array_equal(m, mr))
        self.assertAlmostEqual(float(m.max()), float(mr.max()), places=5)
        self.assertGreater(float(np.corrcoef(m.ravel(), mr.ravel())[0, 1]), 0.9)

    def test_batches_are_seeded_and_independent_per_kind(self) -> None:
        pet, mr, frac = phantom()
        P = np.stack([pet, pet[:, ::-1]]).astype(np.float16)
        M = np.stack([mr, mr[:, ::-1]]).astype(np.float16)
        F = (np.stack([frac, frac[:, :, ::-1]]) * 255).round().astype(np.uint8)
        cfg = AugmentConfig.parse("all", VOX)
        a = make_batch(np.random.default_rng(4), P, M, F, np.arange(2), 3, 16, cfg)
        b = make_batch(np.random.default_rng(4), P, M, F, np.arange(2), 3, 16, cfg)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        c = make_batch(np.random.default_rng(5), P, M, F, np.arange(2), 3, 16, cfg)
        self.assertFalse(np.array_equal(a[0], c[0]))
        # switching the lesions off keeps the MR draws
        no_les = AugmentConfig.parse("tracer,mr,rot,flip", VOX)
        d = make_batch(np.random.default_rng(4), P, M, F, np.arange(2), 3, 16, no_les)
        np.testing.assert_array_equal(a[1], d[1])
        self.assertTrue(np.isfinite(a[0]).all() and np.isfinite(a[1]).all())
        with self.assertRaises(ValueError):
            AugmentConfig.parse("tracer,blur")


def write_stacks(d: str, n: int = 6, h: int = 32) -> None:
    os.makedirs(d, exist_ok=True)
    pets, mrs, fracs, entries = [], [], [], []
    for i in range(n):
        p, m, f = phantom(h, h, seed=i)
        pets.append(p)
        mrs.append(m)
        fracs.append((f * 255).round().astype(np.uint8))
        entries.append({"subject": ["05", "06", "50"][i % 3], "slice_centre": i, "seed": i, "pet_scale": 1})
    np.save(os.path.join(d, "pet.npy"), np.stack(pets).astype(np.float16))
    np.save(os.path.join(d, "mr.npy"), np.stack(mrs).astype(np.float16))
    np.save(os.path.join(d, "fractions.npy"), np.stack(fracs))
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump({"format": "petrel-stacks-v1", "count": n, "height": h, "width": h,
                   "voxel_mm": [VOX] * 3, "tracer": "fdg", "subjects": ["05", "06", "50"],
                   "entries": entries, "command": "test", "fraction_scale": 255,
                   "fraction_groups": [{"name": g, "labels": []} for g in ("csf", "grey", "white", "extra")]}, f)


class DataTests(unittest.TestCase):
    def test_pack_roundtrip_and_exclusion(self) -> None:
        from stacks_io import load_stacks
        with tempfile.TemporaryDirectory() as tmp:
            d = os.path.join(tmp, "data")
            write_stacks(d, n=6)
            # adjacent stacks of one study share slices: make stacks 0 and 3 (subject 05) neighbours
            with open(os.path.join(d, "manifest.json")) as f:
                man = json.load(f)
            pet = np.load(os.path.join(d, "pet.npy"))
            mr = np.load(os.path.join(d, "mr.npy"))
            fr = np.load(os.path.join(d, "fractions.npy"))
            man["entries"][3].update(seed=0, slice_centre=1)
            man["entries"][0].update(seed=0, slice_centre=0)
            pet[3, :2], mr[3, :2], fr[3, :, :2] = pet[0, 1:], mr[0, 1:], fr[0, :, 1:]
            np.save(os.path.join(d, "pet.npy"), pet)
            np.save(os.path.join(d, "mr.npy"), mr)
            np.save(os.path.join(d, "fractions.npy"), fr)
            with open(os.path.join(d, "manifest.json"), "w") as f:
                json.dump(man, f)
            npz = os.path.join(tmp, "p.npz")
            r = subprocess.run([sys.executable, os.path.join(HERE, "pack_dataset.py"), d, npz],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("4 stacks (10 distinct slices)", r.stdout)  # subject 50 left out, 2 shared
            p2, m2, f2, man2 = load_stacks(npz)
            keep = [i for i, e in enumerate(man["entries"]) if e["subject"] != "50"]
            np.testing.assert_array_equal(p2, pet[keep])
            np.testing.assert_array_equal(m2, mr[keep])
            np.testing.assert_array_equal(f2, fr[keep])
            self.assertEqual(man2["count"], 4)
            self.assertEqual(man2["subjects"], ["05", "06"])
            # a slice that two stacks of one study disagree on is refused
            pet[3, 0] += 1
            np.save(os.path.join(d, "pet.npy"), pet)
            r = subprocess.run([sys.executable, os.path.join(HERE, "pack_dataset.py"), d, npz],
                               capture_output=True, text=True)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("disagree on slice", r.stderr)


class ResumeTests(unittest.TestCase):
    def train(self, data: str, out: str, steps: int, *extra: str) -> str:
        cmd = [sys.executable, os.path.join(HERE, "train.py"), "--data", data, "--out", out,
               "--base", "8", "--mults", "1", "2", "--crop", "16", "--batch", "2", "--warmup", "2",
               "--augment", "all", "--schedule", "cosine", "--total-steps", "6", "--deterministic",
               "--max-steps", str(steps), "--log-every", "1", "--ckpt-every", "100", *extra]
        r = subprocess.run(cmd, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def test_resume_equals_uninterrupted(self) -> None:
        import torch
        from model import load_checkpoint
        with tempfile.TemporaryDirectory() as tmp:
            data = os.path.join(tmp, "data")
            write_stacks(data)
            full = self.train(data, os.path.join(tmp, "full"), 6)
            self.assertIn("4 of 6 stacks", full)  # subject 50 (validation) excluded
            self.assertIn("excluded 50", full)
            # the first half builds its batches in 2 worker processes (with prefetch): same batches
            self.train(data, os.path.join(tmp, "half"), 3, "--workers", "2")
            out = self.train(data, os.path.join(tmp, "half"), 6)
            self.assertIn("resumed from", out)
            a = load_checkpoint(os.path.join(tmp, "full", "ckpt.pt"))
            b = load_checkpoint(os.path.join(tmp, "half", "ckpt.pt"))
            self.assertEqual(a["step"], 6)
            self.assertEqual(b["step"], 6)
            for key in ("model", "ema"):
                for name, t in a[key].items():
                    self.assertTrue(torch.equal(t, b[key][name]), f"{key}.{name} differs")
            self.assertEqual(a["np_rng"], b["np_rng"])
            self.assertTrue(torch.equal(a["torch_rng"], b["torch_rng"]))
            sa, sb = a["opt"]["state"], b["opt"]["state"]
            for k in sa:
                for f in ("exp_avg", "exp_avg_sq"):
                    self.assertTrue(torch.equal(sa[k][f], sb[k][f]))
            # the logged losses of steps 4..6 agree too
            with open(os.path.join(tmp, "full", "loss.csv")) as f:
                la = [r.split(",")[2] for r in f.read().splitlines()[1:]]
            with open(os.path.join(tmp, "half", "loss.csv")) as f:
                lb = [r.split(",")[2] for r in f.read().splitlines()[1:]]
            self.assertEqual(la, lb)
            # a checkpoint of another architecture is refused with a clear message
            r = subprocess.run([sys.executable, os.path.join(HERE, "train.py"), "--data", data, "--out",
                                os.path.join(tmp, "half"), "--base", "16", "--mults", "1", "2",
                                "--max-steps", "7"], capture_output=True, text=True)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("differs from the command line", r.stderr)


FIXTURE_PRIOR = os.path.join(HERE, "..", "..", "tests", "fixtures", "prior")


class InitFromPriorTests(unittest.TestCase):
    """train.py --init-from-prior: the model and EMA start as the shipped prior's graphs.

    With PETREL_INIT_EPS_OUT set, the ε of the initialised model and EMA on the fixture's inputs
    (case0 and the dynamic-shape case) is written there as a tensor bundle, so that
    tests/diffusion/prior_training_test.ts compares it with the ONNX denoiser run by onnxruntime."""

    def run_train(self, data: str, out: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, os.path.join(HERE, "train.py"), "--data", data, "--out", out,
                               "--crop", "16", "--batch", "2", "--warmup", "2", "--augment", "all",
                               "--log-every", "1", *extra], capture_output=True, text=True)

    def test_init_from_prior(self) -> None:
        import torch
        from model import UNet, load_checkpoint
        from tensor_io import read_bundle, write_bundle
        ref = read_bundle(os.path.join(FIXTURE_PRIOR, "fixture.json"))
        with tempfile.TemporaryDirectory() as tmp:
            data = os.path.join(tmp, "data")
            write_stacks(data)
            out = os.path.join(tmp, "run")
            r = self.run_train(data, out, "--base", "8", "--mults", "1", "2", "--max-steps", "0",
                               "--init-from-prior", FIXTURE_PRIOR)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("initialised model and EMA from", r.stdout)
            ck = load_checkpoint(os.path.join(out, "ckpt.pt"))
            self.assertEqual(ck["step"], 0)
            self.assertEqual(ck["train_info"]["init_from"]["prior"], FIXTURE_PRIOR)
            outputs = []
            for key in ("model", "ema"):
                net = UNet(**ck["config"])
                net.load_state_dict(ck[key])
                net.eval()
                with torch.no_grad():
                    for case in ("case0", "dyn"):
                        x, t, mr = (torch.from_numpy(ref[f"{case}.{k}"]) for k in ("x_t", "t", "mr"))
                        outputs.append((f"{key}.{case}.eps", net(x, t, mr).numpy()))
            # PyTorch's own record of the prior before export (the ONNX graphs are checked against it)
            eps = dict(outputs)
            for key in ("model", "ema"):
                np.testing.assert_allclose(eps[f"{key}.case0.eps"], ref["init.out.eps"], rtol=0, atol=1e-5)
            # a random-weight model of the same shape is far from it: the weights were really loaded
            torch.manual_seed(5)
            rand = UNet(**ck["config"])
            with torch.no_grad():
                x, t, mr = (torch.from_numpy(ref[f"case0.{k}"]) for k in ("x_t", "t", "mr"))
                self.assertGreater(float(np.abs(rand(x, t, mr).numpy() - ref["init.out.eps"]).max()), 1e-2)
            dest = os.environ.get("PETREL_INIT_EPS_OUT")
            if dest:
                write_bundle(dest, outputs)
            # training from it moves away from it (the optimiser has the weights), and a resume
            # keeps the checkpoint's weights and the record of the initialisation
            r = self.run_train(data, out, "--base", "8", "--mults", "1", "2", "--max-steps", "2",
                               "--init-from-prior", FIXTURE_PRIOR)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("ignored: resuming from", r.stdout)
            ck2 = load_checkpoint(os.path.join(out, "ckpt.pt"))
            self.assertEqual(ck2["step"], 2)
            self.assertEqual(ck2["train_info"]["init_from"], ck["train_info"]["init_from"])
            self.assertFalse(all(torch.equal(v, ck["model"][k]) for k, v in ck2["model"].items()))
            # an architecture that differs from the prior's is refused, naming both, before training
            bad = os.path.join(tmp, "bad")
            r = self.run_train(data, bad, "--base", "16", "--mults", "1", "2", "--max-steps", "1",
                               "--init-from-prior", FIXTURE_PRIOR)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("--init-from-prior", r.stderr)
            self.assertIn("differs from the command line", r.stderr)
            self.assertFalse(os.path.exists(os.path.join(bad, "ckpt.pt")))
            # a folder without a prior is refused
            r = self.run_train(data, bad, "--base", "8", "--mults", "1", "2", "--max-steps", "1",
                               "--init-from-prior", data)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("no " + os.path.join(data, "denoiser.onnx"), r.stderr)


if __name__ == "__main__":
    unittest.main()
