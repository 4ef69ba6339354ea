"""Run plugin-form and trt-builtin graphs in ONNX Runtime on CPU: natively through libfgsa_ort_ops.so
(kernels/ort/, :mod:`kernels.ort_library`) when it is built, else through the reference implementation.

The fallback: onnxruntime-extensions Python ops run only in the domain ``ai.onnx.contrib`` (MEASURED.md), so
:func:`ort_compatible` returns a copy whose plugin nodes are moved there, with the integer attribute
``spatial_shapes`` carried as a string. The ops call :mod:`fgsa.ops.reference`, the same code the tests and
the kernels are checked against: a parity pass here means the graph around the plugin is right.
"""

from __future__ import annotations

import copy
import warnings
from functools import lru_cache

import numpy as np
import onnx
import torch

from export.forms import TRT_MSDA_OP
from fgsa.ops import reference
from kernels.spec import ATTENTION_OP, MSDA_OP

CONTRIB = "ai.onnx.contrib"
CUSTOM_OPS = (MSDA_OP, ATTENTION_OP, TRT_MSDA_OP)


def _shapes(text: str) -> list[tuple[int, int]]:
    v = [int(x) for x in text.split(",")]
    return [(v[i], v[i + 1]) for i in range(0, len(v), 2)]


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


@lru_cache(maxsize=1)
def register_reference_ops() -> str:
    """Register the Python ops once per process; returns the extensions library path for SessionOptions."""
    from onnxruntime_extensions import PyCustomOpDef as T, get_library_path, onnx_op

    attrs = {"spatial_shapes": T.dt_string, "plugin_version": T.dt_string, "plugin_namespace": T.dt_string}

    @onnx_op(op_type=MSDA_OP, inputs=[T.dt_float] * 3, outputs=[T.dt_float], attrs=attrs)
    def _msda(value, locations, weights, spatial_shapes="", **_):
        return reference.msda(_t(value), _shapes(spatial_shapes), None, _t(locations), _t(weights)).numpy()

    @onnx_op(op_type=ATTENTION_OP, inputs=[T.dt_float, T.dt_float, T.dt_int32, T.dt_float, T.dt_float],
             outputs=[T.dt_float], attrs=attrs)
    def _fgsa(value, ref_points, links, offsets, logits, spatial_shapes="", **_):
        out = reference.fgsa_attention(_t(value), _shapes(spatial_shapes), None, _t(ref_points), _t(links),
                                       _t(offsets), _t(logits))
        return out.numpy()

    @onnx_op(op_type=TRT_MSDA_OP, inputs=[T.dt_float, T.dt_int32, T.dt_int32, T.dt_float, T.dt_float],
             outputs=[T.dt_float], attrs={"plugin_version": T.dt_string, "plugin_namespace": T.dt_string})
    def _trt_msda(value, shapes, starts, locations, weights, **_):
        out = reference.msda(_t(value), shapes.tolist(), None, _t(locations), _t(weights))
        return out.numpy().reshape(value.shape[0], locations.shape[1], value.shape[2], value.shape[3])

    return get_library_path()


def has_custom_ops(model: onnx.ModelProto) -> bool:
    return any(n.op_type in CUSTOM_OPS for n in model.graph.node)


def _float16_inputs(model: onnx.ModelProto) -> dict[str, bool]:
    """name -> True for the float16 inputs of custom nodes (FP16 graphs, export/precision.py)."""
    from export.precision import FLOAT16, tensor_types

    wanted = {t for n in model.graph.node if n.op_type in CUSTOM_OPS for t in n.input}
    casts_to_half = any(n.op_type == "Cast" and any(a.name == "to" and a.i == FLOAT16 for a in n.attribute)
                        for n in model.graph.node)
    if not wanted or not (casts_to_half or any(t.data_type == FLOAT16 for t in model.graph.initializer)):
        return {}  # an fp32 graph: no shape inference needed
    types = tensor_types(model)
    return {t: types.get(t) == FLOAT16 for t in wanted}


def _widen_custom_nodes(model: onnx.ModelProto) -> None:
    """Wrap custom nodes with float16 inputs in Casts, in place: float16 inputs -> float32, and the output
    back to float16 when the value input was float16. The reference ops are registered for float32 only;
    widening is exact, and the plugin kernels compute in float32 and round only their output the same way."""
    half = _float16_inputs(model)
    if not any(half.values()):
        return
    nodes = []
    for node in model.graph.node:
        if node.op_type in CUSTOM_OPS and any(half.get(t) for t in node.input):
            value_half = bool(half.get(node.input[0]))  # the output has the value's type
            for i, t in enumerate(node.input):
                if half.get(t):
                    wide = f"{t}__f32_for_{node.name}"
                    nodes.append(onnx.helper.make_node("Cast", [t], [wide], to=onnx.TensorProto.FLOAT,
                                                       name=f"{node.name}__widen{i}"))
                    node.input[i] = wide
            if value_half:
                out = node.output[0]
                node.output[0] = f"{out}__f32"
                nodes += [node, onnx.helper.make_node("Cast", [node.output[0]], [out], to=onnx.TensorProto.FLOAT16,
                                                      name=f"{node.name}__round")]
                continue
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def ort_compatible(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose custom nodes ONNX Runtime runs through :func:`register_reference_ops`
    (float16 inputs of FP16 graphs are widened around them, see :func:`_widen_custom_nodes`)."""
    model = copy.deepcopy(model)
    _widen_custom_nodes(model)
    for node in model.graph.node:
        if node.op_type not in CUSTOM_OPS:
            continue
        node.domain = CONTRIB
        for attr in node.attribute:
            if attr.name == "spatial_shapes" and attr.type == onnx.AttributeProto.INTS:
                text = ",".join(str(v) for v in attr.ints)
                attr.ClearField("ints")
                attr.type = onnx.AttributeProto.STRING
                attr.s = text.encode()
    if not any(op.domain == CONTRIB for op in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(CONTRIB, 1))
    return model


def cpu_session(model: onnx.ModelProto | str, threads: int = 0, basic_optimizations: bool = False,
                native: bool = True):
    """An ONNX Runtime CPU session for any of our graphs: custom ops through libfgsa_ort_ops.so when it is
    found (``native``; :func:`kernels.ort_library.find_library`), else through the reference.

    ``basic_optimizations``: only ONNX Runtime's basic graph rewrites (constant folding, ...). INT8 Q/DQ
    graphs then run as written, float math on dequantized values, which is what TensorRT's INT8 kernels
    compute, instead of ONNX Runtime's own fused integer kernels (u8s8 on AVX2 machines saturates).
    """
    import onnxruntime as ort

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(model)
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if basic_optimizations:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    if has_custom_ops(model):
        from kernels.ort_library import BUILD_HINT, find_library

        library = find_library() if native else None
        if library is not None:
            options.register_custom_ops_library(str(library))
        else:
            if native:
                warnings.warn(f"plugin ops run through the PyTorch reference (slow); {BUILD_HINT}", stacklevel=2)
            options.register_custom_ops_library(register_reference_ops())
            model = ort_compatible(model)
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
