"""Run plugin-form and trt-builtin graphs in ONNX Runtime on CPU: natively through libfgsa_ort_ops.so
(kernels/ort/, :mod:`kernels.ort_library`) when it is built, else through the reference implementation.

The fallback: onnxruntime-extensions Python ops run only in the domain ``ai.onnx.contrib`` (docs/MEASURED.md), so
:func:`ort_compatible` returns a copy whose plugin nodes are moved there, with the integer attribute
``spatial_shapes`` carried as a string. The ops call :mod:`fgsa.ops.reference`, the same code the tests and
the kernels are checked against: a parity pass here means the graph around the plugin is right.

An exception escaping a Python op inside ONNX Runtime aborts the process (onnxruntime-extensions turns it into
a C++ exception that nothing catches). So every op catches everything, records the message for the calling
thread and returns a NaN-filled output; :func:`raise_op_error` (called by :func:`cpu_session`'s sessions and
the runtime after each run) turns it into a :class:`ReferenceOpError`. ONNX Runtime runs a session's nodes on
the calling thread in sequential execution (the default, and what every session here uses).
"""

from __future__ import annotations

import copy
import threading
import warnings
from functools import lru_cache

import numpy as np
import onnx
import onnxruntime as ort
import torch

from export.forms import TRT_MSDA_OP
from export.graph_ops import custom_ops, our_ops
from export.precision_rules import FLOAT16, tensor_types
from fgsa.errors import FgsaError, InputError
from fgsa.ops import reference
from kernels.ort_library import BUILD_HINT, find_library
from kernels.spec import ATTENTION_OP, MSDA_OP

CONTRIB = "ai.onnx.contrib"


# the attributes the Python ops declare; ONNX Runtime hands them over as strings
OP_ATTRIBUTES = {MSDA_OP: ("spatial_shapes", "plugin_version", "plugin_namespace"),
                 ATTENTION_OP: ("spatial_shapes", "plugin_version", "plugin_namespace"),
                 TRT_MSDA_OP: ("plugin_version", "plugin_namespace")}
_failures = threading.local()


class ReferenceOpError(FgsaError, RuntimeError):
    """A plugin node failed in its reference op inside ONNX Runtime (attributes that do not fit its inputs)."""


def _shapes(text: str) -> list[tuple[int, int]]:
    v = [int(x) for x in text.split(",")]
    if not v or len(v) % 2 or min(v) < 1:
        raise ValueError(f"spatial_shapes must be (H, W) pairs of positive integers, got [{text}]")
    return [(v[i], v[i + 1]) for i in range(0, len(v), 2)]


def _check_levels(op: str, value: np.ndarray, shapes: list[tuple[int, int]], levels: int) -> None:
    """The checks the plugins make at configure time: the reference would silently read past a level or skip one."""
    length = sum(h * w for h, w in shapes)
    if value.ndim != 4 or value.shape[1] != length:
        raise ValueError(f"{op}: value {list(value.shape)} must be [B, {length}, heads, channels] for spatial_shapes "
                         f"{[list(hw) for hw in shapes]} (sum of H*W = {length})")
    if levels != len(shapes):
        raise ValueError(f"{op}: the sampling inputs have {levels} levels, spatial_shapes {len(shapes)}")


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _guarded(op: str, body, out_shape):
    """``body`` as an op that never raises into ONNX Runtime (see the module docstring)."""

    def run(*inputs, **attrs):
        try:
            return np.ascontiguousarray(body(*inputs, **attrs), dtype=np.float32)
        except BaseException as exc:  # noqa: BLE001 - anything escaping here aborts the interpreter
            if getattr(_failures, "message", None) is None:  # the first failure of the run explains the rest
                given = ", ".join(f"{k}={v!r}" for k, v in sorted(attrs.items()) if k == "spatial_shapes")
                _failures.message = f"{op}({given}): {type(exc).__name__}: {exc}"
            try:
                shape = out_shape(*inputs)
            except BaseException:  # noqa: BLE001
                shape = (0,)
            return np.full(shape, np.nan, np.float32)

    return run


def raise_op_error() -> None:
    """Raise the failure a reference op recorded on this thread since the last call, if any (and forget it)."""
    message, _failures.message = getattr(_failures, "message", None), None
    if message:
        raise ReferenceOpError(message)


def clear_op_error() -> None:
    _failures.message = None


def _msda(value, locations, weights, spatial_shapes="", **_):
    shapes = _shapes(spatial_shapes)
    _check_levels(MSDA_OP, value, shapes, locations.shape[3])
    return reference.msda(_t(value), shapes, None, _t(locations), _t(weights)).numpy()


def _fgsa(value, ref_points, links, offsets, logits, spatial_shapes="", **_):
    shapes = _shapes(spatial_shapes)
    _check_levels(ATTENTION_OP, value, shapes, offsets.shape[3])
    return reference.fgsa_attention(_t(value), shapes, None, _t(ref_points), _t(links), _t(offsets),
                                    _t(logits)).numpy()


def _trt_msda(value, shapes, starts, locations, weights, **_):
    levels = [tuple(int(v) for v in hw) for hw in np.asarray(shapes).reshape(-1, 2)]
    _check_levels(TRT_MSDA_OP, value, levels, locations.shape[3])
    out = reference.msda(_t(value), levels, None, _t(locations), _t(weights))
    return out.numpy().reshape(value.shape[0], locations.shape[1], value.shape[2], value.shape[3])


@lru_cache(maxsize=1)
def register_reference_ops() -> str:
    """Register the Python ops once per process; returns the extensions library path for SessionOptions.

    That library registers its own native ops along with the Python ops (one entry point, no way to ask for
    the Python ops alone), so a session may use it only for a graph whose custom nodes are all ours
    (:func:`export.graph_ops.custom_ops`; :func:`ort_compatible` moves exactly those nodes)."""
    from onnxruntime_extensions import PyCustomOpDef as T, get_library_path, onnx_op

    def attrs(op):
        return {name: T.dt_string for name in OP_ATTRIBUTES[op]}

    onnx_op(op_type=MSDA_OP, inputs=[T.dt_float] * 3, outputs=[T.dt_float], attrs=attrs(MSDA_OP))(
        _guarded(MSDA_OP, _msda, lambda v, loc, *_: (v.shape[0], loc.shape[1], v.shape[2] * v.shape[3])))
    onnx_op(op_type=ATTENTION_OP, inputs=[T.dt_float, T.dt_float, T.dt_int32, T.dt_float, T.dt_float],
            outputs=[T.dt_float], attrs=attrs(ATTENTION_OP))(
        _guarded(ATTENTION_OP, _fgsa, lambda v, r, k, off, *_: (v.shape[0], off.shape[1], v.shape[2] * v.shape[3])))
    onnx_op(op_type=TRT_MSDA_OP, inputs=[T.dt_float, T.dt_int32, T.dt_int32, T.dt_float, T.dt_float],
            outputs=[T.dt_float], attrs=attrs(TRT_MSDA_OP))(
        _guarded(TRT_MSDA_OP, _trt_msda, lambda v, s, st, loc, *_: (v.shape[0], loc.shape[1], *v.shape[2:4])))
    return get_library_path()


def _ours(node) -> bool:
    return (node.domain, node.op_type) in our_ops()


def has_custom_ops(model: onnx.ModelProto) -> bool:
    return any(_ours(n) for n in model.graph.node)


def _float16_inputs(model: onnx.ModelProto) -> dict[str, bool]:
    """name -> True for the float16 inputs of custom nodes (FP16 graphs, export/precision.py)."""
    wanted = {t for n in model.graph.node if _ours(n) for t in n.input}
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
        if _ours(node) and any(half.get(t) for t in node.input):
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


def _string_attributes(node) -> None:
    """The node's declared attributes as the strings the Python ops receive, in place: ``spatial_shapes``
    (ints) as "H0,W0,H1,W1,...", a missing one as "" (onnxruntime-extensions fails kernel creation on a
    missing attribute). InputError for a malformed ``spatial_shapes``, before ONNX Runtime sees the graph."""
    present = {a.name: a for a in node.attribute}
    for name in OP_ATTRIBUTES[node.op_type]:
        attr = present.get(name)
        if attr is None:
            node.attribute.append(onnx.helper.make_attribute(name, ""))
            attr = node.attribute[-1]
        elif attr.type in (onnx.AttributeProto.INTS, onnx.AttributeProto.INT):
            values = list(attr.ints) if attr.type == onnx.AttributeProto.INTS else [attr.i]
            attr.CopyFrom(onnx.helper.make_attribute(name, ",".join(str(v) for v in values)))
        elif attr.type != onnx.AttributeProto.STRING:
            raise InputError(f"{node.op_type} node {node.name!r} attribute {name}",
                             "ints or a string", onnx.AttributeProto.AttributeType.Name(attr.type),
                             "re-export the graph with python -m export.onnx")
        if name == "spatial_shapes":
            try:
                _shapes(attr.s.decode())
            except ValueError as exc:
                raise InputError(f"{node.op_type} node {node.name!r} attribute spatial_shapes",
                                 "(H, W) pairs of positive integers", attr.s.decode() or "nothing",
                                 "re-export the graph with python -m export.onnx") from exc


def ort_compatible(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose custom nodes ONNX Runtime runs through :func:`register_reference_ops`
    (float16 inputs of FP16 graphs are widened around them, see :func:`_widen_custom_nodes`).
    InputError when the graph holds another custom op (:func:`check_only_our_ops`)."""
    check_only_our_ops(model)
    model = copy.deepcopy(model)
    _widen_custom_nodes(model)
    for node in model.graph.node:
        if not _ours(node):
            continue
        node.domain = CONTRIB
        _string_attributes(node)
    if not any(op.domain == CONTRIB for op in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(CONTRIB, 1))
    return model


def check_only_our_ops(model: onnx.ModelProto) -> None:
    """InputError naming them when the graph holds custom ops other than ours: the extensions library would
    run its own ops for them (:mod:`export.graph_ops`)."""
    _, foreign = custom_ops(model)
    if foreign:
        raise InputError("graph", "standard ONNX ops and fgsa's plugin ops only", f"custom ops {foreign}",
                         "these ops are not fgsa's; pass a graph written by python -m export.onnx")


class CheckedSession:
    """An InferenceSession whose ``run`` raises :class:`ReferenceOpError` when a reference op failed in it."""

    def __init__(self, session):
        self.session = session

    def __getattr__(self, name):
        return getattr(self.session, name)

    def run(self, *args, **kwargs):
        clear_op_error()
        try:
            out = self.session.run(*args, **kwargs)
        except Exception:
            raise_op_error()  # the op's own message, when its NaN output broke a later node
            raise
        raise_op_error()
        return out


def cpu_session(model: onnx.ModelProto | str, threads: int = 0, basic_optimizations: bool = False,
                native: bool = True):
    """An ONNX Runtime CPU session for any of our graphs: custom ops through libfgsa_ort_ops.so when it is
    found (``native``; :func:`kernels.ort_library.find_library`), else through the reference.

    ``basic_optimizations``: only ONNX Runtime's basic graph rewrites (constant folding, ...). INT8 Q/DQ
    graphs then run as written, float math on dequantized values, which is what TensorRT's INT8 kernels
    compute, instead of ONNX Runtime's own fused integer kernels (u8s8 on AVX2 machines saturates).
    """
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(model)
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if basic_optimizations:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    if not has_custom_ops(model):
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    library = find_library() if native else None
    if library is not None:
        check_only_our_ops(model)
        options.register_custom_ops_library(str(library))
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    if native:
        warnings.warn(f"plugin ops run through the PyTorch reference (slow); {BUILD_HINT}", stacklevel=2)
    model = ort_compatible(model)
    options.register_custom_ops_library(register_reference_ops())
    return CheckedSession(ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"]))
