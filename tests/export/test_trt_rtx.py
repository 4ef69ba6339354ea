"""A real TensorRT-family builder in CI: TensorRT-RTX (pip `tensorrt-rtx-cu12`, `make test` installs it) parses
and builds, ahead of time and without a GPU, the graphs this toolkit exports for standard ops.

Graphs are those of the micro config of tests/conftest.py (the smallest the tests use): portable form
FP32 (static, full), INT8 Q/DQ (static, full, from python -m calibration's quantizer), FP16 with a dynamic
batch (full, and split: support encoder + predictor); and the trt-builtin form, whose TensorRT built-in
plugin TensorRT-RTX does not have. The plan is never deserialized here (that needs a GPU)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

from export import trt as T
from export.forms import TRT_MSDA_OP
from export.trt_parse import parse_graphs

rtx = pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed (pip install -e .[rtx]; make test "
                          "installs it)")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graphs(factory, tmp_path_factory) -> dict:
    """{name: (path, precision, dynamic)} of the micro model's graphs (the runtime tests' micro checkpoint:
    random offsets and logits, as the other export tests)."""
    from calibration.qdq import quantize_qdq
    from calibration.ranges import compute_ranges
    from fgsa.model.examples import random_inputs
    from tests.conftest import MICRO

    root = tmp_path_factory.mktemp("rtx_graphs")
    ckpt, model = factory.checkpoint(MICRO, seed=0)

    def export(**kw):
        return factory.export(MICRO, seed=0, **kw).files

    fp32 = export(attention="portable")["full"]
    fp16 = export(attention="portable", precision="fp16", split=True, dynamic_batch=(1, 2, 4))
    builtin = export(attention="trt-builtin")["full"]
    feeds = [{k: v.numpy() for k, v in random_inputs(model.cfg, seed=s).items()} for s in range(2)]
    fp32_model = onnx.load(fp32)
    int8 = root / "int8" / "model.onnx"
    int8.parent.mkdir()
    onnx.save(quantize_qdq(fp32_model, compute_ranges(fp32_model, feeds, "minmax", chunk=2, progress=False)), int8)
    return {"fp32-static-full": (fp32, "fp32", False), "int8-static-full": (int8, "int8", False),
            "fp16-dynamic-full": (fp16["full"], "fp16", True),
            "fp16-dynamic-support_encoder": (fp16["support_encoder"], "fp16", True),
            "fp16-dynamic-predictor": (fp16["predictor"], "fp16", True), "builtin": (builtin, "fp32", False)}


BUILDS = ["fp32-static-full", "int8-static-full", "fp16-dynamic-full", "fp16-dynamic-support_encoder",
          "fp16-dynamic-predictor"]


@pytest.mark.parametrize("name", BUILDS)
def test_real_ahead_of_time_build(graphs, name, tmp_path):
    path, precision, dynamic = graphs[name]
    plan = T.plan_build(path, precision, tmp_path / "model.plan", target="tensorrt-rtx",
                        dynamic_batch="1:2:4" if dynamic else None)
    side = T.build_engine(plan, progress=False)
    data = plan.out.read_bytes()
    print(f"\n{name}: {side['build_seconds']} s, {len(data) / 2**20:.2f} MiB")
    # the network the builder parsed has the graph's I/O: names, NumPy dtype names, shapes, profiles
    assert side["io"] == plan.io()
    assert [io["name"] for io in side["io"] if io["mode"] == "input"] == [t.name for t in plan.info.inputs]
    if dynamic:
        first = side["io"][0]
        assert first["shape"][0] == "batch" and first["profile"]["min"][0] == 1 and first["profile"]["max"][0] == 4
    on_disk = json.loads(T.sidecar_path(plan.out).read_text())
    assert on_disk == side
    assert side["target"] == "tensorrt-rtx" and side["trt_version"] == rtx.__version__ and side["ahead_of_time"]
    assert side["gpu"] is None and side["compute_capabilities"] is None and "8.0 and later" in side["runs_on"]
    assert side["plan_sha256"] == hashlib.sha256(data).hexdigest() and side["precision"] == precision
    assert side["network_flags"] == [] and side["timing_cache"] is None and len(data) > 100_000


def test_compute_capabilities_are_recorded_and_checked(graphs, tmp_path):
    path = graphs["fp32-static-full"][0]
    plan = T.plan_build(path, "fp32", tmp_path / "cc.plan", target="tensorrt-rtx", compute_capabilities="8.6,89")
    side = T.build_engine(plan, progress=False)
    assert side["compute_capabilities"] == ["8.6", "8.9"] and "8.6, 8.9" in side["runs_on"]
    bad = T.plan_build(path, "fp32", tmp_path / "bad.plan", target="tensorrt-rtx", compute_capabilities="9.0")
    with pytest.raises(T.InputError, match=r"--compute-capability.*8\.6.*got 9\.0"):
        T.build_engine(bad, progress=False)
    assert not bad.out.exists() and not T.sidecar_path(bad.out).exists()


def test_cli_builds_ahead_of_time_and_prints_no_cuda_error(graphs, tmp_path):
    path = graphs["fp16-dynamic-support_encoder"][0]  # the quickest build
    out = tmp_path / "model.plan"
    proc = subprocess.run([sys.executable, "-m", "export.trt", "--onnx", str(path), "--fp16", "--target",
                           "tensorrt-rtx", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "built ahead of time (no GPU used)" in proc.stdout and f"wrote {out}" in proc.stdout
    assert "cuda" not in (proc.stdout + proc.stderr).lower()  # no CUDA error from a deserialization attempt
    assert out.is_file() and T.sidecar_path(out).is_file()


def test_trt_builtin_form_parses_except_tensorrts_builtin_plugin(graphs):
    """TensorRT-RTX has no MultiscaleDeformableAttnPlugin_TRT; every other node of the trt-builtin graph parses."""
    path = graphs["builtin"][0]
    model = onnx.load(path)
    msda = [n for n in model.graph.node if n.op_type == TRT_MSDA_OP]
    # the same graph with each built-in plugin node cut out: its output becomes a graph input
    shapes = {v.name: v for v in model.graph.value_info}
    cut = onnx.ModelProto()
    cut.CopyFrom(model)
    del cut.graph.node[:]
    cut.graph.node.extend(n for n in model.graph.node if n.op_type != TRT_MSDA_OP)
    cut.graph.input.extend(shapes[n.output[0]] for n in msda)
    cut_path = path.with_name("cut.onnx")
    onnx.save(cut, cut_path)
    results = parse_graphs([path, cut_path], "tensorrt-rtx")
    whole, rest = results[str(path)], results[str(cut_path)]
    assert len(msda) == 5 and not whole.ok and not whole.crashed
    assert set(whole.error_ops) == {TRT_MSDA_OP} and "Plugin not found" in whole.errors[0]
    assert rest.ok and rest.errors == [] and rest.unsupported == []  # every other node parses
    assert len(cut.graph.node) == len(model.graph.node) - 5


def test_build_refuses_bf16_io_before_the_builder(tmp_path):
    from onnx import TensorProto, helper

    m = helper.make_model(helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.BFLOAT16)], "g",
                                            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                                            [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [1, 4])]),
                          opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(m, tmp_path / "bf16.onnx")
    with pytest.raises(T.InputError, match=r"--onnx.*'y' is bfloat16.*float32 / float16"):
        T.plan_build(tmp_path / "bf16.onnx", "fp32", tmp_path / "m.plan", target="tensorrt-rtx")
    assert np.dtype("float32").name == T.targets.dtype_name(rtx.DataType.FLOAT)


def test_the_unversioned_library_name_is_found_only_in_the_child_environment(tmp_path):
    """The parser dlopens libtensorrt_rtx.so at the first plugin node; the wheel ships only .so.1. The build of a
    plugin graph runs in a child whose loader path has a link of that name (export/trt_rtx.py)."""
    from export import trt_rtx

    probe = [sys.executable, "-c", "import ctypes; ctypes.CDLL('libtensorrt_rtx.so')"]
    assert not trt_rtx.unversioned_on_path({})  # the wheel alone: the name is missing
    assert subprocess.run(probe, env={}, capture_output=True).returncode != 0
    env = trt_rtx.loader_env(tmp_path)
    link = tmp_path / trt_rtx.UNVERSIONED
    assert link.resolve() == trt_rtx.versioned_library().resolve()
    assert env["LD_LIBRARY_PATH"].split(":")[0] == str(tmp_path) and trt_rtx.unversioned_on_path(env)
    assert subprocess.run(probe, env=env, capture_output=True).returncode == 0
    assert not (trt_rtx.versioned_library().parent / trt_rtx.UNVERSIONED).exists()  # the package is untouched
