"""One-node ONNX graphs of the three ops libfgsa_ort_ops.so runs, and sessions over them.

Graph inputs are declared without shapes, so ONNX Runtime checks nothing and every bad tensor reaches the
library's own validation. Outputs are bound to caller-owned arrays (IOBinding), so a test can poison them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

from kernels.build import BuildError
from kernels.spec import load_plugin_spec

TRT_MSDA_OP = "MultiscaleDeformableAttnPlugin_TRT"
INPUTS = {
    "FGSA_MSDA": ["value", "sampling_locations", "attention_weights"],
    "FGSA_Attention": ["value", "ref_points", "links", "offsets", "logits"],
    TRT_MSDA_OP: ["value", "spatial_shapes", "level_start_index", "sampling_locations", "attention_weights"],
}


def library_or_skip() -> Path:
    """The built library (building it if needed); skips with the reason when no headers can be had."""
    from kernels.ort_library import build_library

    try:
        return build_library()
    except BuildError as e:
        pytest.skip(str(e).splitlines()[0])


def onnx_type(dtype) -> int:
    from onnx import TensorProto

    return {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float16): TensorProto.FLOAT16,
            np.dtype(np.float64): TensorProto.DOUBLE, np.dtype(np.int32): TensorProto.INT32,
            np.dtype(np.int64): TensorProto.INT64}[np.dtype(dtype)]


def node_model(op: str, feed: dict[str, np.ndarray], spatial_shapes: Sequence[tuple[int, int]] | None = None,
               output_dtype=None, attributes: dict | None = None):
    """A graph of one ``op`` node whose inputs have the dtypes of ``feed`` and no declared shapes."""
    from onnx import helper

    spec = load_plugin_spec()
    attrs = {"plugin_version": "2" if op == TRT_MSDA_OP else spec["plugin_version"], "plugin_namespace": ""}
    if spatial_shapes is not None:
        attrs["spatial_shapes"] = [int(v) for hw in spatial_shapes for v in hw]
    attrs.update(attributes or {})
    names = INPUTS[op]
    node = helper.make_node(op, names, ["output"], domain=spec["onnx_domain"], **attrs)
    inputs = [helper.make_tensor_value_info(n, onnx_type(feed[n].dtype), None) for n in names]
    out_type = onnx_type(output_dtype or feed["value"].dtype)
    graph = helper.make_graph([node], op, inputs, [helper.make_tensor_value_info("output", out_type, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid(spec["onnx_domain"], 1)])


def session(library: Path, model, threads: int = 2):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 4  # the tests read the errors from the exceptions
    options.register_custom_ops_library(str(library))
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run_into(sess, feed: dict[str, np.ndarray], out: np.ndarray) -> np.ndarray:
    """Runs with the output bound to ``out`` (poison it first to see that every element is written)."""
    io = sess.io_binding()
    for name, arr in feed.items():
        io.bind_cpu_input(name, np.ascontiguousarray(arr))
    io.bind_output("output", "cpu", 0, out.dtype, list(out.shape), out.ctypes.data)
    sess.run_with_iobinding(io)
    return out


def fgsa_feed(case, float_type=np.float32, coord_type=None) -> dict[str, np.ndarray]:
    coord_type = coord_type or float_type
    return {"value": case.value.numpy().astype(float_type), "ref_points": case.ref_points.numpy().astype(coord_type),
            "links": case.links.numpy(), "offsets": case.offsets.numpy().astype(coord_type),
            "logits": case.logits.numpy().astype(coord_type)}


def msda_feed(case, float_type=np.float32, coord_type=None) -> dict[str, np.ndarray]:
    coord_type = coord_type or float_type
    return {"value": case.value.numpy().astype(float_type),
            "sampling_locations": case.sampling_locations.numpy().astype(coord_type),
            "attention_weights": case.attention_weights.numpy().astype(coord_type)}


def trt_msda_feed(case, float_type=np.float32) -> dict[str, np.ndarray]:
    shapes = np.array(case.spatial_shapes, dtype=np.int32)
    starts = np.concatenate([[0], np.cumsum(shapes.prod(1))[:-1]]).astype(np.int32)
    return {**msda_feed(case, float_type), "spatial_shapes": shapes, "level_start_index": starts}
