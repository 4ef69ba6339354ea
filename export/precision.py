"""FP16 graphs for strongly typed TensorRT: a float16 model with FP32 islands, exported straight from PyTorch.

TensorRT 11 takes precision from the graph's types (no FP16 builder flag), so the FP16 graph must carry
float16 tensors everywhere except where the precision policy keeps float32. We export it from a float16
copy of the model traced inside the policy's islands, so every Cast sits where the policy says and the
graph is strongly typed by construction. (``onnxconverter-common`` produced graphs ONNX Runtime refused to
load, see docs/MEASURED.md, and a converter cannot see which tensors hold coordinates.)

The policy (:class:`PrecisionPolicy`, every part on by default) keeps in FP32:

| part | what stays FP32 | where the cast is |
|---|---|---|
| ``coords`` | support points, predicted points, their sigmoid / inverse-sigmoid and logit sums, positional-encoding inputs, the coordinate inputs of the deformable attention (reference points, offsets, logits) | ``fgsa.model.precision`` ("coords") |
| ``softmax`` | self-attention logits and softmax | ``fgsa.model.precision`` ("softmax") |
| ``layernorm`` | LayerNormalization (input, statistics, affine) | :class:`Fp32LayerNorm` swapped in here |
| ``attention`` | deformable-attention sampling and accumulation: inside the plugin always (its kernels widen to FP32); GridSample inputs / outputs for the portable form, the value of TensorRT's built-in op | ``export.forms`` |

Graph I/O keeps its types: float32 images / features / points in, float32 points out. BatchNorm is folded
into the convolutions in float32 before the model is rounded to float16.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from export.precision_rules import (FLOAT, FLOAT16, PARTS, PrecisionPolicy, float16_share,  # noqa: F401 (re-exported)
                                    island_violations, tensor_types)
from fgsa.model import FMMP
from fgsa.support_state import is_state_name

PRECISIONS = ("fp32", "fp16")
# Inputs that are images or features: float16 inside an FP16 graph. Points stay as the policy says.
HALF_INPUTS = ("query", "support")  # and the support state (is_state_name)
# the parity tolerance of an FP16 graph is never below the fp32 noise floor
FP16_TOLERANCE_FACTOR = 2.0


class Fp32LayerNorm(nn.Module):
    """LayerNorm of a 16-bit model computed in float32 (statistics and affine), result in the input's dtype."""

    def __init__(self, norm: nn.LayerNorm):
        super().__init__()
        self.normalized_shape, self.eps = norm.normalized_shape, norm.eps
        self.weight = nn.Parameter(norm.weight.detach().float().clone(), requires_grad=False)
        self.bias = nn.Parameter(norm.bias.detach().float().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.float(), self.normalized_shape, self.weight, self.bias, self.eps)
        return y if y.dtype == x.dtype else y.to(x.dtype)


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every (Conv2d, BatchNorm2d) pair of the backbone into the conv, in place, in the model's dtype.

    Pairs are the ``convN`` / ``bnN`` siblings of a module and consecutive entries of an ``nn.Sequential``
    (the downsample branch). Returns the number of folded pairs. The model must be in eval mode.
    """
    folded = 0
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            items = list(module)
            for i in range(len(items) - 1):
                if isinstance(items[i], nn.Conv2d) and isinstance(items[i + 1], nn.BatchNorm2d):
                    module[i], module[i + 1] = fuse_conv_bn_eval(items[i], items[i + 1]), nn.Identity()
                    folded += 1
            continue
        for name, child in list(module.named_children()):
            if isinstance(child, nn.BatchNorm2d) and name.startswith("bn"):
                conv = getattr(module, "conv" + name[2:], None)
                if isinstance(conv, nn.Conv2d):
                    setattr(module, "conv" + name[2:], fuse_conv_bn_eval(conv, child))
                    setattr(module, name, nn.Identity())
                    folded += 1
    return folded


def half_model(model: FMMP, policy: PrecisionPolicy) -> FMMP:
    """A float16 copy of ``model`` for the FP16 graph: BatchNorm folded in float32 first, LayerNorms swapped
    for :class:`Fp32LayerNorm` when the policy keeps them. Run and trace it inside :func:`islands`."""
    half = copy.deepcopy(model).float().eval()
    fold_batchnorm(half)
    half = half.half()
    if policy.layernorm:
        for module in list(half.modules()):
            for name, child in list(module.named_children()):
                if isinstance(child, nn.LayerNorm):
                    setattr(module, name, Fp32LayerNorm(child))
    if hasattr(model, "checkpoint_sha256"):
        half.checkpoint_sha256 = model.checkpoint_sha256
    return half


class HalfIO(nn.Module):
    """fp32 graph I/O around a float16 graph module: image / support-state inputs are cast to float16 on entry,
    floating outputs to float32 on exit (a no-op for points the policy already keeps in FP32)."""

    def __init__(self, inner: nn.Module, input_names: list[str]):
        super().__init__()
        self.inner = inner
        self.half_positions = [i for i, n in enumerate(input_names) if n in HALF_INPUTS or is_state_name(n)]

    def forward(self, *args):
        args = [a.half() if i in self.half_positions else a for i, a in enumerate(args)]
        out = self.inner(*args)
        outs = out if isinstance(out, tuple) else (out,)
        outs = tuple(o.float() if o.is_floating_point() and o.dtype != torch.float32 else o for o in outs)
        return outs if isinstance(out, tuple) else outs[0]


def fp16_tolerance(ref16: dict, ref32: dict, floor: float) -> dict[str, float]:
    """Per output: ``FP16_TOLERANCE_FACTOR`` x the max abs error of the same-precision PyTorch run (the fp16
    model with the same policy) against fp32, and never below ``floor`` (the fp32 tolerance)."""
    tol = {}
    for k, want in ref32.items():
        err = np.abs(np.asarray(ref16[k], np.float64) - np.asarray(want, np.float64))
        tol[k] = max(floor, FP16_TOLERANCE_FACTOR * float(err.max()) if err.size else 0.0)
    return tol
