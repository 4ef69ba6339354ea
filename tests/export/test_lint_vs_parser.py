"""export.lint against a real TensorRT-family parser (TensorRT-RTX's, in a child process): the same deliberately
broken graphs go to both, and they must agree, except where the lint is stricter on purpose (this toolkit's
I/O contract), each with its reason. Where they disagreed, the lint learned from the parser (export/lint.py)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper as h

from export.lint import lint_for_tensorrt
from export.trt_parse import parse_graphs

pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed (pip install -e .[rtx]; make test "
                    "installs it)")


def vi(name, t, shape):
    return h.make_tensor_value_info(name, t, shape)


def model(nodes, inputs, outputs, inits=(), opset=17):
    return h.make_model(h.make_graph(nodes, "g", inputs, outputs, list(inits)),
                        opset_imports=[h.make_opsetid("", opset)])


def _f(name, shape):
    return vi(name, TP.FLOAT, shape)


ONES = h.make_tensor("w", TP.FLOAT, [5, 3], np.ones(15))
# name -> (graph, None when lint and parser must agree | why the lint is stricter than the parser)
CASES = {
    "clean": (model([h.make_node("Relu", ["x"], ["y"])], [_f("x", [1, 4])], [_f("y", [1, 4])]), None),
    "gridsample": (model([h.make_node("GridSample", ["x", "g"], ["y"])], [_f("x", [1, 1, 4, 4]), _f("g", [1, 2, 2, 2])],
                         [_f("y", [1, 1, 2, 2])]), None),
    "unknown_op": (model([h.make_node("FooBar", ["x"], ["y"])], [_f("x", [1, 4])], [_f("y", [1, 4])]), None),
    "uint16_cast": (model([h.make_node("Cast", ["x"], ["u"], to=TP.UINT16), h.make_node("Cast", ["u"], ["y"], to=TP.FLOAT)],
                          [_f("x", [1, 4])], [_f("y", [1, 4])]), None),
    # learned: the parser refuses these; the lint passed them before
    "matmul_sizes": (model([h.make_node("MatMul", ["x", "w"], ["y"])], [_f("x", [1, 4])], [_f("y", [1, 3])], [ONES]),
                     None),
    "undefined_input": (model([h.make_node("Add", ["x", "nope"], ["y"])], [_f("x", [1, 4])], [_f("y", [1, 4])]), None),
    "bernoulli": (model([h.make_node("Bernoulli", ["x"], ["y"])], [_f("x", [1, 4])], [_f("y", [1, 4])]), None),
    "roialign": (model([h.make_node("Cast", ["i32"], ["i"], to=TP.INT64), h.make_node("RoiAlign", ["x", "r", "i"], ["y"])],
                       [_f("x", [1, 1, 8, 8]), _f("r", [2, 4]), vi("i32", TP.INT32, [2])], [_f("y", [2, 1, 1, 1])]), None),
    "deformconv": (model([h.make_node("DeformConv", ["x", "k", "o"], ["y"], kernel_shape=[1, 1])],
                         [_f("x", [1, 1, 4, 4]), _f("o", [1, 2, 4, 4])], [_f("y", [1, 1, 4, 4])],
                         [h.make_tensor("k", TP.FLOAT, [1, 1, 1, 1], [1.0])], opset=19), None),
    # stricter on purpose
    "int64_output": (model([h.make_node("Cast", ["x"], ["y"], to=TP.INT64)], [_f("x", [1, 4])],
                           [vi("y", TP.INT64, [1, 4])]), "this toolkit's graph I/O is int32 / float"),
    "bf16_output": (model([h.make_node("Cast", ["x"], ["y"], to=TP.BFLOAT16)], [_f("x", [1, 4])],
                          [vi("y", TP.BFLOAT16, [1, 4])]), "NumPy (the runtime's arrays) has no bfloat16"),
    "double_inside": (model([h.make_node("Cast", ["x"], ["d"], to=TP.DOUBLE), h.make_node("Cast", ["d"], ["y"], to=TP.FLOAT)],
                            [_f("x", [1, 4])], [_f("y", [1, 4])]),
                      "TensorRT has no double type; the parser computes it in float, not what the graph says"),
    "opset16": (model([h.make_node("Relu", ["x"], ["y"])], [_f("x", [1, 4])], [_f("y", [1, 4])], opset=16),
                "the toolkit's graphs use LayerNormalization (opset 17)"),
}


def test_lint_and_the_real_parser_agree(tmp_path):
    paths = {}
    for name, (m, _) in CASES.items():
        paths[name] = tmp_path / f"{name}.onnx"
        onnx.save(m, paths[name])
    parsed = parse_graphs(list(paths.values()), "tensorrt-rtx")
    table = []
    for name, (m, stricter) in CASES.items():
        result = parsed[str(paths[name])]
        lint = lint_for_tensorrt(m, target="tensorrt-rtx")
        table.append((name, lint.ok, result.ok, lint.errors[:1], result.errors[:1]))
        assert not result.crashed, (name, result.errors)
        if stricter:
            assert not lint.ok and result.ok, (name, stricter, lint.errors, result.errors)
        else:
            assert lint.ok == result.ok, (name, lint.errors, result.errors)
    assert sum(ok for _, ok, _, _, _ in table) == 2  # clean and gridsample: the cases are really broken


def test_tensorrt_target_keeps_ops_tensorrt_has():
    """The TensorRT-RTX-only rules do not leak into the TensorRT lint (TensorRT ships those plugins)."""
    m = CASES["deformconv"][0]
    assert lint_for_tensorrt(m, target="tensorrt").ok
    assert "no DeformConv plugin" in " ".join(lint_for_tensorrt(m, target="tensorrt-rtx").errors)
