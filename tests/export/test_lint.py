"""The TensorRT lint on tiny hand-built graphs: each rule fires, and a clean graph passes."""

import onnx
from onnx import TensorProto, helper

from export.lint import lint_for_tensorrt


def graph(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("trt.plugins", 1)])


def vi(name, t, shape):
    return helper.make_tensor_value_info(name, t, shape)


def test_clean_graph_passes():
    m = graph([helper.make_node("Relu", ["x"], ["y"])], [vi("x", TensorProto.FLOAT, [1, 4])],
              [vi("y", TensorProto.FLOAT, [1, 4])])
    report = lint_for_tensorrt(m)
    assert report.ok and not report.warnings


def test_unsupported_op_int64_io_and_double():
    m = graph([helper.make_node("Cast", ["x"], ["d"], to=TensorProto.DOUBLE),
               helper.make_node("StringNormalizer", ["s"], ["s2"]),
               helper.make_node("Cast", ["d"], ["y"], to=TensorProto.INT64)],
              [vi("x", TensorProto.FLOAT, [2]), vi("s", TensorProto.STRING, [2])],
              [vi("y", TensorProto.INT64, [2]), vi("s2", TensorProto.STRING, [2])])
    errors = "\n".join(lint_for_tensorrt(m).errors)
    assert "graph output 'y' is INT64" in errors
    assert "StringNormalizer" in errors
    assert "DOUBLE" in errors


def test_plugin_version_namespace_and_index_dtype():
    node = helper.make_node("FGSA_Attention", ["v", "r", "l", "o", "w"], ["y"], domain="trt.plugins",
                            plugin_version="7", plugin_namespace="", spatial_shapes=[2, 2])
    m = graph([node], [vi("v", TensorProto.FLOAT, [1, 4, 8, 4]), vi("r", TensorProto.FLOAT, [1, 3, 2]),
                       vi("l", TensorProto.INT64, [1, 3, 1]), vi("o", TensorProto.FLOAT, [1, 3, 8, 1, 1, 2]),
                       vi("w", TensorProto.FLOAT, [1, 3, 8, 1])], [vi("y", TensorProto.FLOAT, [1, 3, 32])])
    errors = "\n".join(lint_for_tensorrt(m).errors)
    assert "plugin_version='7'" in errors and "'1'" in errors
    assert "input 2 'l' is INT64, the plugin takes INT32" in errors
    assert "graph input 'l' is INT64" in errors


def test_gridsample_warns_and_old_opset_fails():
    m = graph([helper.make_node("GridSample", ["x", "g"], ["y"])],
              [vi("x", TensorProto.FLOAT, [1, 1, 4, 4]), vi("g", TensorProto.FLOAT, [1, 2, 2, 2])],
              [vi("y", TensorProto.FLOAT, [1, 1, 2, 2])], opset=16)
    report = lint_for_tensorrt(m)
    assert any("10.14 to 11.1" in w for w in report.warnings)
    assert any("opset 16 < 17" in e for e in report.errors)
