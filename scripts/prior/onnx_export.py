"""Export the petrel prior as two ONNX graphs sharing one parameter layout.

denoiser.onnx: (x_t, t, mr, *adaptable) -> eps                   (dynamic B, H, W)
vjp.onnx:      (x_t, t, mr, *adaptable, grad_eps) -> (eps, *grad) (fixed B, H, W; traced with make_fx)

The VJP graph is traced in the "split" form by default (`vjp_form="split"`): each LoRA convolution
computes `conv(x, W) + conv(conv(x, down), up) + bias` instead of `conv(x, W + up @ down, bias)`
(the same function), so the frozen base weight `W` stays a constant, and the input gradient of a
stride-1 "same" convolution is traced as a convolution with the flipped, transposed kernel instead
of a ConvTranspose. The gradients of `down` and `up` then come from rank-r tensors instead of the
full weight gradient of every LoRA layer, and onnxruntime's CPU provider runs the constant-weight
convolutions in its blocked (NCHWc) layout: 0.79–0.81× the VJP's CPU time on onnxruntime-node and
0.70–0.77× on onnxruntime-web wasm for the 128² fdg prior (docs/performance.md), equal to the
"merged" form up to float rounding. The denoiser keeps the merged form (it is faster there: its weights are
dynamic either way).

Adaptable parameter input names are `p.<module>.lora_down|lora_up|bias`, gradient outputs
`grad.<module>.lora_down|...`. The frozen base weights are baked into the graphs as initialisers.

The VJP graph is traced with `make_fx` over forward + `torch.autograd.grad`, with decompositions
for the backward ops that have no ONNX form (see shared/docs/platform-notes.md).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
from typing import Dict, List, Sequence, Tuple

import onnx
import torch
import torch.nn.functional as F
from torch._decomp import get_decompositions
from torch.fx.experimental.proxy_tensor import make_fx
from torch.nn.utils.stateless import functional_call

from model import LoraConv, UNet

aten = torch.ops.aten
OPSET = 14


# ---- decompositions for backward ops without an ONNX form -----------------------------------
def _conv_backward(grad_out, inp, weight, bias_sizes, stride, padding, dilation, transposed,
                   output_padding, groups, output_mask):
    assert not transposed and groups == 1 and list(dilation) == [1, 1], "only plain convolutions"
    k_h, k_w = weight.shape[2], weight.shape[3]
    g_in = g_w = g_b = None
    if output_mask[0]:
        op_h = inp.shape[2] - ((grad_out.shape[2] - 1) * stride[0] - 2 * padding[0] + k_h)
        op_w = inp.shape[3] - ((grad_out.shape[3] - 1) * stride[1] - 2 * padding[1] + k_w)
        g_in = F.conv_transpose2d(grad_out, weight, None, stride, padding, (op_h, op_w))
    if output_mask[1]:
        gw = F.conv2d(inp.transpose(0, 1), grad_out.transpose(0, 1), None, 1, padding,
                      dilation=stride)
        g_w = gw[:, :, :k_h, :k_w].transpose(0, 1)
    if output_mask[2]:
        g_b = grad_out.sum(dim=(0, 2, 3))
    return g_in, g_w, g_b


def _conv_backward_flipped(grad_out, inp, weight, bias_sizes, stride, padding, dilation,
                           transposed, output_padding, groups, output_mask):
    """As _conv_backward, but the input gradient of a stride-1 "same" convolution (odd kernel,
    padding k // 2) is the convolution of grad_out with the flipped kernel, transposed in its
    channel axes: a Conv, which onnxruntime runs in its fast blocked layout when the kernel is a
    constant, where ConvTranspose has no such path."""
    k_h, k_w = weight.shape[2], weight.shape[3]
    same = (list(stride) == [1, 1] and k_h % 2 == 1 and k_w % 2 == 1
            and list(padding) == [k_h // 2, k_w // 2] and list(dilation) == [1, 1])
    if not (output_mask[0] and same):
        return _conv_backward(grad_out, inp, weight, bias_sizes, stride, padding, dilation,
                              transposed, output_padding, groups, output_mask)
    assert not transposed and groups == 1, "only plain convolutions"
    g_in = F.conv2d(grad_out, weight.flip(2, 3).transpose(0, 1), None, 1, padding)
    _, g_w, g_b = _conv_backward(grad_out, inp, weight, bias_sizes, stride, padding, dilation,
                                 transposed, output_padding, groups,
                                 [False, output_mask[1], output_mask[2]])
    return g_in, g_w, g_b


def _upsample_nearest_backward(grad_out, output_size, input_size, scale_factors=None):
    n, c, h, w = input_size
    fh, fw = grad_out.shape[2] // h, grad_out.shape[3] // w
    return grad_out.reshape(n, c, h, fh, w, fw).sum(dim=(3, 5))


def _slice_backward(grad_out, input_sizes, dim, start, end, step):
    assert step == 1, "slice_backward: step must be 1"
    size = input_sizes[dim]
    start = max(0, start if start >= 0 else start + size)
    end = min(size, end if end >= 0 else end + size)
    pad = [0, 0] * (len(input_sizes) - dim - 1) + [start, size - end]
    return F.pad(grad_out, pad)


def _select_backward(grad_out, input_sizes, dim, index):
    size = input_sizes[dim]
    index = index if index >= 0 else index + size
    pad = [0, 0] * (len(input_sizes) - dim - 1) + [index, size - index - 1]
    return F.pad(grad_out.unsqueeze(dim), pad)


def _softmax_backward(grad_out, out, dim, input_dtype):
    go = grad_out * out
    return go - out * go.sum(dim=dim, keepdim=True)


def _silu_backward(grad_out, x):
    s = torch.sigmoid(x)
    return grad_out * s * (1 + x * (1 - s))


def _group_norm_backward(grad_out, x, mean, rstd, weight, n, c, hxw, group, output_mask):
    # (torch 1.13's own decomposition gave wrong gradients with one channel per group)
    xg = x.reshape(n, group, -1)
    xhat = (xg - mean.reshape(n, group, 1)) * rstd.reshape(n, group, 1)
    g_in = g_w = g_b = None
    if output_mask[0]:
        dyw = grad_out if weight is None else grad_out * weight.reshape(1, c, 1, 1)
        dyw = dyw.reshape(n, group, -1)
        m1 = dyw.mean(dim=2, keepdim=True)
        m2 = (dyw * xhat).mean(dim=2, keepdim=True)
        g_in = ((dyw - m1 - xhat * m2) * rstd.reshape(n, group, 1)).reshape(x.shape)
    if output_mask[1]:
        g_w = (grad_out * xhat.reshape(x.shape)).sum(dim=(0, 2, 3))
    if output_mask[2]:
        g_b = grad_out.sum(dim=(0, 2, 3))
    return g_in, g_w, g_b


def decomposition_table(vjp_form: str = "split") -> Dict:
    table = get_decompositions([aten.native_group_norm.default])
    table.update({
        aten.convolution_backward.default:
            _conv_backward_flipped if vjp_form == "split" else _conv_backward,
        aten.upsample_nearest2d_backward.vec: _upsample_nearest_backward,
        aten.slice_backward.default: _slice_backward,
        aten.select_backward.default: _select_backward,
        aten._softmax_backward_data.default: _softmax_backward,
        aten.silu_backward.default: _silu_backward,
        aten.native_group_norm_backward.default: _group_norm_backward,
    })
    return table


# ---- functional wrappers --------------------------------------------------------------------
# torch >= 2.5 has a dynamo exporter (the default from 2.9); these graphs use the TorchScript one.
_LEGACY = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}


def input_name(param_name: str) -> str:
    return "p." + param_name


def grad_name(param_name: str) -> str:
    return "grad." + param_name


class _Denoiser(torch.nn.Module):
    def __init__(self, model: UNet, names: Sequence[str]):
        super().__init__()
        self.model = model
        self.names = list(names)

    def forward(self, x_t, t, mr, *ps):
        # functional_call refuses to run under the JIT tracer: swap the tensors in by hand
        saved = []
        for name, p in zip(self.names, ps):
            mod_name, attr = name.rsplit(".", 1)
            mod = self.model.get_submodule(mod_name)
            saved.append((mod, attr, mod._parameters[attr]))
            mod._parameters[attr] = p
        try:
            return self.model(x_t, t, mr)
        finally:
            for mod, attr, orig in saved:
                mod._parameters[attr] = orig


def vjp_function(model: UNet, names: Sequence[str]):
    """Return f(x_t, t, mr, *params, grad_eps) -> (eps, *grads)."""
    n = len(names)

    def f(x_t, t, mr, *rest):
        ps, g = list(rest[:n]), rest[n]
        with torch.enable_grad():
            ps = [p.requires_grad_(True) for p in ps]
            eps = functional_call(model, dict(zip(names, ps)), (x_t, t, mr))
            grads = torch.autograd.grad(eps, ps, g)
        return (eps, *grads)

    return f


def reference_vjp(model: UNet, names: Sequence[str], x_t, t, mr, params, g):
    """Plain autograd reference: (eps, grads)."""
    ps = [p.detach().clone().requires_grad_(True) for p in params]
    with torch.enable_grad():
        eps = functional_call(model, dict(zip(names, ps)), (x_t, t, mr))
        grads = torch.autograd.grad(eps, ps, g)
    return eps.detach(), [gr.detach() for gr in grads]


def prepare(model: UNet) -> List[str]:
    model.eval()
    for m in model.modules():
        if hasattr(m, "lora_enabled"):
            m.lora_enabled = True
    for p in model.parameters():
        p.requires_grad_(False)
    return model.adaptable_names()


def _fix_graph(proto: onnx.ModelProto, metadata: Dict) -> onnx.ModelProto:
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key = "petrel"
    entry.value = json.dumps(metadata)
    proto.producer_name = "petrel scripts/prior"
    onnx.checker.check_model(proto)
    return proto


def export_denoiser(model: UNet, names: Sequence[str], example: Tuple, metadata: Dict,
                    path: str) -> None:
    """Export the denoiser with dynamic batch and spatial size."""
    wrapper = _Denoiser(model, names).eval()
    in_names = ["x_t", "t", "mr"] + [input_name(n) for n in names]
    dyn = {"x_t": {0: "B", 2: "H", 3: "W"}, "mr": {0: "B", 2: "H", 3: "W"}, "t": {0: "B"},
           "eps": {0: "B", 2: "H", 3: "W"}}
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(wrapper, tuple(example), buf, input_names=in_names, output_names=["eps"],
                          dynamic_axes=dyn, opset_version=OPSET, do_constant_folding=True, **_LEGACY)
    proto = _fix_graph(onnx.load_from_string(buf.getvalue()), metadata)
    onnx.save(proto, path)


VJP_FORMS = ("split", "merged")


def _split_lora_conv_forward(self, x):
    """LoraConv.forward in the split form: the same function as `conv(x, W + up @ down, bias)`."""
    p = self.k // 2
    y = F.conv2d(x, self.weight, None, padding=p)
    if self.lora_enabled:
        y = y + F.conv2d(F.conv2d(x, self.lora_down, None, padding=p), self.lora_up)
    return y + self.bias.reshape(1, -1, 1, 1)


@contextlib.contextmanager
def lora_conv_form(vjp_form: str):
    """Within the block, LoraConv layers compute in `vjp_form` ("merged": the model's own forward)."""
    if vjp_form not in VJP_FORMS:
        raise ValueError(f"vjp_form must be one of {VJP_FORMS}, got {vjp_form!r}")
    if vjp_form == "merged":
        yield
        return
    saved = LoraConv.forward
    LoraConv.forward = _split_lora_conv_forward
    try:
        yield
    finally:
        LoraConv.forward = saved


def trace_vjp(model: UNet, names: Sequence[str], example: Tuple,
              vjp_form: str = "split") -> torch.fx.GraphModule:
    f = vjp_function(model, names)
    with lora_conv_form(vjp_form):
        gm = make_fx(f, decomposition_table=decomposition_table(vjp_form))(*example)
    # drop no-op nodes that the ONNX exporter does not know
    for node in list(gm.graph.nodes):
        if node.op == "call_function" and node.target in (aten.detach.default, aten.alias.default):
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
        elif node.op == "call_function" and node.target == aten._softmax.default:
            node.target = aten.softmax.int
            node.args = node.args[:2]
        elif node.op == "call_function" and node.target in (aten._reshape_alias.default,
                                                            aten._unsafe_view.default):
            node.target = aten.reshape.default
            node.args = node.args[:2]
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return gm


def export_vjp(gm: torch.fx.GraphModule, names: Sequence[str], example: Tuple, metadata: Dict,
               path: str) -> None:
    in_names = ["x_t", "t", "mr"] + [input_name(n) for n in names] + ["grad_eps"]
    out_names = ["eps"] + [grad_name(n) for n in names]
    buf = io.BytesIO()
    torch.onnx.export(gm, tuple(example), buf, input_names=in_names, output_names=out_names,
                      opset_version=OPSET, do_constant_folding=True, **_LEGACY)
    proto = _fix_graph(onnx.load_from_string(buf.getvalue()), metadata)
    onnx.save(proto, path)


def op_histogram(path: str) -> Dict[str, int]:
    proto = onnx.load(path)
    hist: Dict[str, int] = {}
    for node in proto.graph.node:
        hist[node.op_type] = hist.get(node.op_type, 0) + 1
    return dict(sorted(hist.items(), key=lambda kv: -kv[1]))
