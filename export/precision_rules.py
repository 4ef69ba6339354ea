"""The precision policy as graph facts, torch-free (onnx only): which parts of an FP16 graph stay FP32
(:class:`PrecisionPolicy`), whether an FP16 graph keeps those islands (:func:`island_violations`), and
whether an INT8 Q/DQ graph follows TensorRT's rules as this toolkit applies them (:func:`qdq_violations`).

The export (export.precision), the calibration (calibration.qdq) and the plan build (``python -m export.trt``,
which must not import torch on a GPU build host) all check graphs with these. Input roles of the attention
ops come from the op specification (kernels/spec.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from export.coordinates import GEMMS, coordinate_analysis
from fgsa.errors import InputError
from kernels.spec import GRID_SAMPLE_OP, input_positions, node_ops, plugin_ops

PARTS = ("coords", "softmax", "layernorm", "attention")
FLOAT, FLOAT16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


@dataclass(frozen=True)
class PrecisionPolicy:
    """Which parts of an FP16 graph stay FP32 (all by default; the table in export/precision.py says where)."""

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


# ---- FP16 graphs --------------------------------------------------------------------------------

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
    """op_type -> positions of coordinate inputs of the plugin nodes (ours and TensorRT's MSDA; GridSample's
    inputs fall under ``attention``)."""
    return {op: input_positions(op, "coord") for op in plugin_ops()}


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
              "Sigmoid": policy.coords, GRID_SAMPLE_OP: policy.attention}
    sampled = len(node_ops()[GRID_SAMPLE_OP]["inputs"])  # GridSample: every input (values and grid)
    for node in model.graph.node:
        if checks.get(node.op_type):
            for i, tensor in enumerate(node.input[:1] if node.op_type != GRID_SAMPLE_OP else node.input[:sampled]):
                want_float(tensor, f"{node.op_type} {node.name} input {i}")
        if policy.coords and node.op_type in coords:
            for i in coords[node.op_type]:
                want_float(node.input[i], f"{node.op_type} {node.name} coordinate input {i}")
    return problems


# ---- INT8 Q/DQ graphs ----------------------------------------------------------------------------

def qdq_violations(model: onnx.ModelProto) -> list[str]:
    """Where a Q/DQ graph breaks TensorRT's rules as this toolkit applies them (empty list = none):
    non-zero or non-int8 zero points, per-channel Conv weights not on axis 0, DequantizeLinear feeding
    anything but a Conv / MatMul / Gemm, Q/DQ on a keypoint-coordinate tensor."""
    inits = {t.name: t for t in model.graph.initializer}
    consumers: dict[str, list] = {}
    for n in model.graph.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    coords, _ = coordinate_analysis(model)
    problems = []
    for n in model.graph.node:
        if n.op_type not in QDQ_OPS:
            continue
        if len(n.input) < 3 or n.input[2] not in inits:
            problems.append(f"{n.name}: no int8 zero point (TensorRT needs an explicit symmetric INT8 one)")
        else:
            zp = inits[n.input[2]]
            if zp.data_type != onnx.TensorProto.INT8 or np.any(numpy_helper.to_array(zp) != 0):
                problems.append(f"{n.name}: zero point {numpy_helper.to_array(zp).ravel()[:4]} "
                                f"({onnx.TensorProto.DataType.Name(zp.data_type)}); TensorRT needs INT8 zeros")
        touched = [t for t in list(n.input[:1]) + list(n.output) if t in coords]
        if touched:
            problems.append(f"{n.name}: {n.op_type} on keypoint-coordinate tensor '{touched[0]}'")
        if n.op_type == "DequantizeLinear":
            for c in consumers.get(n.output[0], []):
                if c.op_type not in GEMMS:
                    problems.append(f"{n.name} feeds {c.op_type} {c.name}; Q/DQ belongs on Conv/MatMul/Gemm inputs")
                elif c.op_type == "Conv" and len(c.input) > 1 and c.input[1] == n.output[0]:
                    axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
                    scale = inits.get(n.input[1])
                    per_channel = scale is not None and len(scale.dims) == 1 and scale.dims[0] > 1
                    if not per_channel or axis != 0:
                        problems.append(f"{n.name}: Conv weight quantized {'per tensor' if not per_channel else f'on axis {axis}'}"
                                        "; TensorRT expects per-channel on axis 0")
    return problems
