#!/usr/bin/python3
"""Self-tests of the prior's Python side (tiny model, CPU, ~1 min):

  /usr/bin/python3 -m unittest discover -s scripts/prior -p 'test_*.py'
"""

from __future__ import annotations

import os
import sys
import tempfile
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import UNet, linear_schedule  # noqa: E402
from from_prior import model_from_prior  # noqa: E402
from onnx_export import VJP_FORMS, prepare, reference_vjp, trace_vjp  # noqa: E402
from tensor_io import read_bundle, write_bundle  # noqa: E402

torch.set_num_threads(1)


def tiny() -> tuple:
    torch.manual_seed(0)
    model = UNet(8, (1, 2), 1, 4)
    model.enable_lora(3)
    names = prepare(model)
    gen = torch.Generator().manual_seed(1)
    init = model.adaptable_params()
    ps = [(0.05 * torch.randn(init[n].shape, generator=gen)) if n.endswith("lora_up")
          else init[n].detach().clone() for n in names]
    x = torch.randn(1, 3, 8, 8, generator=gen)
    t = torch.tensor([42.0])
    mr = torch.rand(1, 3, 8, 8, generator=gen)
    g = torch.randn(1, 3, 8, 8, generator=gen)
    return model, names, ps, x, t, mr, g


class PriorTests(unittest.TestCase):
    def test_schedule(self) -> None:
        betas, ab = linear_schedule(1000)
        self.assertAlmostEqual(float(betas[0]), 1e-4)
        self.assertAlmostEqual(float(betas[-1]), 0.02)
        self.assertAlmostEqual(float(ab[0]), 1 - 1e-4)

    def test_zero_lora_is_base(self) -> None:
        model, names, ps, x, t, mr, _ = tiny()
        with torch.no_grad():
            with_lora = model(x, t, mr)  # up = 0 after enable_lora
            for m in model.modules():
                if hasattr(m, "lora_enabled"):
                    m.lora_enabled = False
            base = model(x, t, mr)
        self.assertLess(float((with_lora - base).abs().max()), 1e-6)

    def test_traced_vjp_matches_autograd_and_finite_difference(self) -> None:
        for form in VJP_FORMS:
            with self.subTest(vjp_form=form):
                self._check_traced_vjp(form)

    def _check_traced_vjp(self, form: str) -> None:
        model, names, ps, x, t, mr, g = tiny()
        gm = trace_vjp(model, names, [x, t, mr, *ps, g], form)
        out = gm(x, t, mr, *ps, g)
        eps, grads = reference_vjp(model, names, x, t, mr, ps, g)
        scale = max(float(gr.abs().max()) for gr in grads)
        self.assertLess(float((out[0] - eps).abs().max()), 1e-5)
        for a, b in zip(out[1:], grads):
            self.assertLess(float((a - b).abs().max()) / scale, 1e-5)
        # directional finite difference in float64
        model64 = model.double()
        gen = torch.Generator().manual_seed(5)
        d = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in ps]
        h = 1e-5

        def f(sign: float) -> torch.Tensor:
            from torch.nn.utils.stateless import functional_call
            pp = {n: p.double() + sign * h * dd for n, p, dd in zip(names, ps, d)}
            return functional_call(model64, pp, (x.double(), t.double(), mr.double()))

        with torch.no_grad():
            fd = float(((f(1) - f(-1)) / (2 * h) * g.double()).sum())
        an = float(sum((gr.double() * dd).sum() for gr, dd in zip(out[1:], d)))
        self.assertLess(abs(fd - an) / max(1e-8, abs(fd)), 1e-3)

    def test_model_from_prior_reproduces_the_fixture(self) -> None:
        # the tiny test prior rebuilt from its ONNX files gives PyTorch's recorded outputs
        folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                              "fixtures", "prior")
        model, meta = model_from_prior(folder)
        names = prepare(model)
        self.assertEqual(len(names), len(meta["lora"]["params"]))
        ref = read_bundle(os.path.join(folder, "fixture.json"))
        x, t, mr = (torch.from_numpy(ref[f"case0.{k}"]) for k in ("x_t", "t", "mr"))
        with torch.no_grad():
            init_eps = model(x, t, mr)  # lora_init: up = 0, the base model
        self.assertLess(float((init_eps - torch.from_numpy(ref["init.out.eps"])).abs().max()), 1e-5)
        ps = [torch.from_numpy(ref[f"case0.p.{n}"]) for n in names]
        eps, grads = reference_vjp(model, names, x, t, mr, ps, torch.from_numpy(ref["case0.grad_eps"]))
        self.assertLess(float((eps - torch.from_numpy(ref["case0.out.eps"])).abs().max()), 1e-5)
        for n, gr in zip(names, grads):
            self.assertLess(float((gr - torch.from_numpy(ref[f"case0.out.grad.{n}"])).abs().max()), 1e-4)

    def test_bundle_roundtrip(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            a = np.arange(6, dtype=np.float32).reshape(2, 3)
            b = np.array([1.5], np.float32)
            write_bundle(os.path.join(tmp, "x.json"), [("a", a), ("b", b)])
            back = read_bundle(os.path.join(tmp, "x.json"))
            np.testing.assert_array_equal(back["a"], a)
            np.testing.assert_array_equal(back["b"], b)
            raw = np.fromfile(os.path.join(tmp, "x.bin"), "<f4")
            np.testing.assert_array_equal(raw, np.concatenate([a.ravel(), b]))


if __name__ == "__main__":
    unittest.main()
