"""FP16 graphs for strongly typed TensorRT: a float16 model with FP32 islands, exported straight from PyTorch.

TensorRT 11 takes precision from the graph's types (no FP16 builder flag), so the FP16 graph must carry
float16 tensors everywhere except where the precision policy keeps float32. We export it from a float16
copy of the model traced inside the policy's islands, so every Cast sits where the policy says and the
graph is strongly typed by construction. (``onnxconverter-common`` produced graphs ONNX Runtime refused to
load, see ../shared/design/MEASURED.md, and a converter cannot see which tensors hold coordinates.)

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
import dataclasses
from dataclasses import dataclass

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from fgsa.errors import InputError
from fgsa.model import FMMP
from fgsa.support_state import is_state_name

PRECISIONS = ("fp32", "fp16")
PARTS = ("coords", "softmax", "layernorm", "attention")
# Inputs that are images or features: float16 inside an FP16 graph. Points stay as the policy says.
HALF_INPUTS = ("query", "support")  # and the support state (is_state_name)
FLOAT, FLOAT16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
# the parity tolerance of an FP16 graph is never below the fp32 noise floor
FP16_TOLERANCE_FACTOR = 2.0


@dataclass(frozen=True)
class PrecisionPolicy:
    """Which parts of an FP16 graph stay FP32 (all by default; see the module docstring)."""

    coords: bool = True
    softmax: bool = True
    layernorm: bool = True
    attention: bool = True

    @classmethod
    def parse(cls, text: str | None) -> "PrecisionPolicy":
        """``"coords,softmax,layernorm,attention"`` (the parts kept FP32), ``"all"`` or ``"none"``."""
        if text is None or text.strip() == "all":
            return cls()
        parts = {p.strip() for p in text.split(",") if p.strip() and p.strip() != "none"}
        unknown = sorted(parts - set(PARTS))
        if unknown:
            raise InputError("--keep-fp32", f"a comma list of {', '.join(PARTS)} (or all / none)", text)
        return cls(**{p: p in parts for p in PARTS})

    def model_points(self) -> tuple[str, ...]:
        """The island names :func:`fgsa.model.precision.fp32_islands` takes."""
        return tuple(p for p in ("coords", "softmax") if getattr(self, p))

    def kept(self) -> list[str]:
        return [p for p in PARTS if getattr(self, p)]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


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


# ---- graph checks ----------------------------------------------------------------------------------

def tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every named tensor the graph declares or ONNX shape inference can derive."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in
             list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}
    types.update({t.name: t.data_type for t in model.graph.initializer})
    for node in model.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    types[node.output[0]] = a.t.data_type
    return {k: v for k, v in types.items() if v}


def float16_share(model: onnx.ModelProto) -> float:
    """Fraction of the floating-point weights (initializer elements) stored as float16."""
    counts = {FLOAT: 0, FLOAT16: 0}
    for t in model.graph.initializer:
        if t.data_type in counts:
            counts[t.data_type] += int(np.prod(t.dims)) if t.dims else 1
    total = counts[FLOAT] + counts[FLOAT16]
    return counts[FLOAT16] / total if total else 0.0


def _coord_inputs() -> dict[str, list[int]]:
    """op_type -> positions of coordinate inputs, for our plugins (from the spec) and TensorRT's MSDA."""
    from export.forms import TRT_MSDA_OP
    from kernels.spec import load_plugin_spec

    spec = load_plugin_spec()
    coords = {name: [i for i, x in enumerate(op["inputs"]) if x["role"] == "coord"] for name, op in spec["ops"].items()}
    coords[TRT_MSDA_OP] = [3, 4]
    return coords


def island_violations(model: onnx.ModelProto, policy: PrecisionPolicy) -> list[str]:
    """Where an FP16 graph breaks the policy's FP32 islands or the fp32 I/O contract (empty list = none).

    Checks: float graph inputs / outputs are FLOAT; with ``layernorm`` every LayerNormalization input, with
    ``softmax`` and ``coords`` every Softmax input (self-attention, and in the portable form the sampling
    weights, which ``coords`` keeps: a graph cannot tell the two apart, so a policy with only one of them
    skips this check), with ``coords`` every Sigmoid input and the coordinate inputs of every plugin node,
    with ``attention`` every GridSample input, are FLOAT.
    """
    types = tensor_types(model)
    name = onnx.TensorProto.DataType.Name
    problems = []

    def want_float(tensor: str, what: str) -> None:
        t = types.get(tensor)
        if t is None:
            problems.append(f"{what}: type of '{tensor}' unknown")
        elif t != FLOAT:
            problems.append(f"{what}: '{tensor}' is {name(t)}, the policy keeps it FLOAT")

    for v in list(model.graph.input) + list(model.graph.output):
        t = v.type.tensor_type.elem_type
        if t in (FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE):
            problems.append(f"graph I/O '{v.name}' is {name(t)}; FP16 graphs keep float32 I/O")
    coords = _coord_inputs()
    checks = {"LayerNormalization": policy.layernorm, "Softmax": policy.softmax and policy.coords,
              "Sigmoid": policy.coords, "GridSample": policy.attention}
    for node in model.graph.node:
        if checks.get(node.op_type):
            for i, tensor in enumerate(node.input[:1] if node.op_type != "GridSample" else node.input[:2]):
                want_float(tensor, f"{node.op_type} {node.name} input {i}")
        if policy.coords and node.op_type in coords:
            for i in coords[node.op_type]:
                want_float(node.input[i], f"{node.op_type} {node.name} coordinate input {i}")
    return problems


def fp16_tolerance(ref16: dict, ref32: dict, floor: float) -> dict[str, float]:
    """Per output: ``FP16_TOLERANCE_FACTOR`` x the max abs error of the same-precision PyTorch run (the fp16
    model with the same policy) against fp32, and never below ``floor`` (the fp32 tolerance)."""
    tol = {}
    for k, want in ref32.items():
        err = np.abs(np.asarray(ref16[k], np.float64) - np.asarray(want, np.float64))
        tol[k] = max(floor, FP16_TOLERANCE_FACTOR * float(err.max()) if err.size else 0.0)
    return tol
