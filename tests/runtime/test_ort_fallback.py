"""The ONNX Runtime fallback for plugin-form graphs (onnxruntime-extensions Python ops running the reference):
taken only when the graph's custom ops are exactly ours, and a failing op is an EngineError, never an abort."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from export.graph_ops import custom_ops
from kernels.ort_library import BUILD_HINT, find_library
from kernels.spec import MSDA_OP, load_plugin_spec, onnx_node_attributes
from runtime import EngineError
from runtime.backends.onnxruntime import OnnxRuntimeRunner

REPO = Path(__file__).resolve().parents[2]
SHAPES = [(2, 2), (4, 4)]  # Len_in = 20
F = TensorProto.FLOAT


def _msda_graph(path: Path, extra_nodes=(), spatial_shapes=None) -> Path:
    """value [1, len, 2, 4] (len dynamic), locations [1, 3, 2, 2, 1, 2], weights [1, 3, 2, 2, 1] -> out [1, 3, 8]."""
    spec = load_plugin_spec()
    attrs = onnx_node_attributes(MSDA_OP, SHAPES)
    if spatial_shapes == "missing":
        del attrs["spatial_shapes"]
    elif spatial_shapes is not None:
        attrs["spatial_shapes"] = spatial_shapes
    nodes = [helper.make_node(MSDA_OP, ["value", "loc", "w"], ["out"], name="msda0", domain=spec["onnx_domain"],
                              **attrs), *extra_nodes]
    inputs = [helper.make_tensor_value_info("value", F, [1, "len", 2, 4]),
              helper.make_tensor_value_info("loc", F, [1, 3, 2, 2, 1, 2]),
              helper.make_tensor_value_info("w", F, [1, 3, 2, 2, 1])]
    outputs = [helper.make_tensor_value_info("out", F, [1, 3, 8])]
    if extra_nodes:
        outputs.append(helper.make_tensor_value_info("extra", TensorProto.UINT8, None))
        inputs.append(helper.make_tensor_value_info("blob", TensorProto.UINT8, [None]))
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(spec["onnx_domain"], 1),
                                             helper.make_opsetid("ai.onnx.contrib", 1)])
    onnx.save(model, path)
    return path


def _feed(rng, length=20):
    return {"value": rng.standard_normal((1, length, 2, 4), dtype=np.float32),
            "loc": rng.random((1, 3, 2, 2, 1, 2), dtype=np.float32),
            "w": rng.random((1, 3, 2, 2, 1), dtype=np.float32)}


def test_a_graph_with_a_foreign_custom_op_does_not_fall_back(tmp_path):
    decode = helper.make_node("DecodeImage", ["blob"], ["extra"], domain="ai.onnx.contrib")  # an extensions native op
    mixed = _msda_graph(tmp_path / "mixed.onnx", [decode])
    assert custom_ops(onnx.load(mixed)) == ([f"trt.plugins::{MSDA_OP}"], ["ai.onnx.contrib::DecodeImage"])
    with pytest.raises(EngineError, match=r"not fgsa's: ai\.onnx\.contrib::DecodeImage\..*--attention portable"):
        OnnxRuntimeRunner(mixed).activate()
    # hidden in a subgraph, or our op's name in another domain: foreign too
    hidden = helper.make_node("If", ["cond"], ["extra"], then_branch=helper.make_graph(
        [decode], "then", [], [helper.make_tensor_value_info("extra", TensorProto.UINT8, None)]),
        else_branch=helper.make_graph([decode], "else", [], [helper.make_tensor_value_info("extra", TensorProto.UINT8,
                                                                                           None)]))
    model = onnx.load(mixed)
    model.graph.node[1].CopyFrom(hidden)
    model.graph.input.append(helper.make_tensor_value_info("cond", TensorProto.BOOL, []))
    onnx.save(model, tmp_path / "hidden.onnx")
    with pytest.raises(EngineError, match=r"not fgsa's: ai\.onnx\.contrib::DecodeImage"):
        OnnxRuntimeRunner(tmp_path / "hidden.onnx").activate()
    model = onnx.load(_msda_graph(tmp_path / "renamed.onnx"))
    model.graph.node[0].domain = "ai.onnx.contrib"
    onnx.save(model, tmp_path / "renamed.onnx")
    with pytest.raises(EngineError, match=rf"not fgsa's: ai\.onnx\.contrib::{MSDA_OP}"):
        OnnxRuntimeRunner(tmp_path / "renamed.onnx").activate()


def test_malformed_plugin_attributes_are_refused_when_loading(tmp_path):
    for bad in ([2, 2, 4], [2, 0], "2,x", "missing"):
        path = _msda_graph(tmp_path / "bad.onnx", spatial_shapes=bad)
        with pytest.raises(EngineError, match=r"msda0.*spatial_shapes: expected \(H, W\) pairs of positive"):
            OnnxRuntimeRunner(path).activate()


def _child(folder: str, native: bool = False) -> None:
    """Run in a subprocess: a failing op used to abort the interpreter (SIGABRT), which would kill pytest.
    ``native``: the plugin op runs in libfgsa_ort_ops.so instead of the reference fallback."""
    import torch

    from export.ort_ops import ReferenceOpError, cpu_session
    from fgsa.ops import reference

    path = _msda_graph(Path(folder) / "msda.onnx")
    rng = np.random.default_rng(7)
    report = {"errors": [], "max_abs": []}

    def check(out, feed):
        want = reference.msda(torch.from_numpy(feed["value"]).double(), SHAPES, None,
                              torch.from_numpy(feed["loc"]).double(), torch.from_numpy(feed["w"]).double())
        report["max_abs"].append(float(np.abs(out - want.numpy()).max()))

    with OnnxRuntimeRunner(path, ort_library=None if native else False) as runner:
        assert runner.uses_reference_ops != native
        for length in (20, 19, 20, 21, 20):  # the attributes fit Len_in = 20 only
            feed = _feed(rng, length)
            try:
                check(runner.infer(feed)["out"], feed)
            except EngineError as exc:
                report["errors"].append(str(exc))
    session = cpu_session(onnx.load(path), native=native)  # the export / calibration path
    for length in (19, 20):
        feed = _feed(rng, length)
        try:
            check(session.run(None, feed)[0], feed)
        except ReferenceOpError as exc:
            report["errors"].append(f"cpu_session: {exc}")
        except Exception as exc:  # onnxruntime's own error type: the native op refused the input
            report["errors"].append(f"cpu_session: {exc}")
    print(json.dumps(report))


def test_a_failing_plugin_node_is_an_engine_error_and_the_engine_lives(tmp_path):
    code = f"from tests.runtime.test_ort_fallback import _child; _child({str(tmp_path)!r})"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]  # -6 (SIGABRT) before the ops caught their exceptions
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    errors = report["errors"]
    assert len(errors) == 3, errors
    assert "value [1, 19, 2, 4] must be [B, 20, heads, channels]" in errors[0]
    assert "value [1, 21, 2, 4]" in errors[1]  # the reference alone would silently ignore the extra row
    assert all(f"{MSDA_OP}(spatial_shapes='2,2,4,4')" in e for e in errors)
    assert errors[0].startswith(str(tmp_path)) and "re-export the graph" in errors[0]
    assert errors[2].startswith("cpu_session: ")
    # every good call, including those right after a failure, equals the float64 reference: float32 bilinear
    # sampling of |values| < 5 with a few roundings per output, eps 6e-8 -> errors ~1e-7
    assert len(report["max_abs"]) == 4 and max(report["max_abs"]) < 1e-6, report["max_abs"]


@pytest.mark.skipif(find_library() is None, reason=f"libfgsa_ort_ops.so not built: {BUILD_HINT}")
def test_a_failing_native_plugin_node_is_an_engine_error_and_the_engine_lives(tmp_path):
    """The same bad calls with the op in libfgsa_ort_ops.so: its input check returns an ONNX Runtime error
    status, which the runner turns into an EngineError; the good calls around it still equal the reference."""
    code = f"from tests.runtime.test_ort_fallback import _child; _child({str(tmp_path)!r}, native=True)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    errors = report["errors"]
    assert len(errors) == 3, errors
    assert all(f"{MSDA_OP} input value: expected Len_in = sum of H*W over spatial_shapes = 20" in e for e in errors)
    assert "[1, 19, 2, 4]" in errors[0] and "[1, 21, 2, 4]" in errors[1] and "[1, 19, 2, 4]" in errors[2]
    assert errors[0].startswith(str(tmp_path)) and "re-export the graph" in errors[0]
    assert errors[2].startswith("cpu_session: ")
    assert len(report["max_abs"]) == 4 and max(report["max_abs"]) < 1e-6, report["max_abs"]
