"""TensorRTRunner's control flow against a fake TensorRT + cuda-python (tests/runtime/fake_tensorrt.py):
buffers per shape, CUDA graph capture and replay, device inputs by pointer, plan checks before loading.
The real TensorRT path is tested in test_plan_checks.py where TensorRT is importable."""

import json
import sys

import numpy as np
import pytest

from runtime.backends.tensorrt import TensorRTRunner
from runtime.errors import EngineError
from tests.runtime import fake_tensorrt as fake


@pytest.fixture
def fake_trt(monkeypatch):
    trt, cudart = fake.make_modules()
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr("runtime.backends.tensorrt.import_cudart", lambda: cudart)
    return trt, cudart


def _plan(tmp_path, **sidecar):
    plan = tmp_path / "model.plan"
    plan.write_bytes(fake.PLAN_BYTES)
    side = {"trt_version": "10.13.0.35", "gpu": {"name": "Fake GPU 9000", "compute_capability": "9.0"},
            "precision": "fp32", "io": [], "plugin_library": None, "plugin_sha256": None, **sidecar}
    plan.with_name("model.plan.json").write_text(json.dumps(side))
    return plan


def _want(x):
    return 2 * x[:, :2] + x.sum(1, keepdims=True)


def test_runner_buffers_graph_capture_and_replay(fake_trt, tmp_path):
    _, cudart = fake_trt
    x = np.random.default_rng(0).random((3, 4), dtype=np.float32)
    with TensorRTRunner(_plan(tmp_path)) as runner:
        assert [s.name for s in runner.inputs] == ["x"] and (runner.batch.lo, runner.batch.hi) == (1, 4)
        outs = [runner.infer({"x": x * (i + 1)})["y"] for i in range(4)]
        for i, y in enumerate(outs):
            np.testing.assert_allclose(y, _want(x * (i + 1)), rtol=1e-6)
        # 1st call: enqueue (warm-up after the shape change); 2nd: enqueue + capture; then graph replays
        assert [c for c in cudart.calls if c.startswith(("enqueue", "graph"))] == \
            ["enqueue", "enqueue", "enqueue-captured", "graph", "graph"]
        cudart.calls.clear()
        y1 = runner.infer({"x": x[:1]})["y"]  # another shape: new buffers, stale graph dropped
        np.testing.assert_allclose(y1, _want(x[:1]), rtol=1e-6)
        np.testing.assert_allclose(runner.infer({"x": x})["y"], _want(x), rtol=1e-6)
        assert "graph" not in cudart.calls[:3]


def test_device_inputs_are_bound_by_pointer_without_copies(fake_trt, tmp_path):
    _, cudart = fake_trt
    x = np.random.default_rng(1).random((2, 4), dtype=np.float32)

    class DeviceArray:  # "device" memory of the fake is host memory: the pointer is all that matters
        __cuda_array_interface__ = {"shape": x.shape, "typestr": "<f4", "data": (x.ctypes.data, False),
                                    "version": 3, "strides": None}

    with TensorRTRunner(_plan(tmp_path)) as runner:
        cudart.calls.clear()
        y = runner.infer({"x": DeviceArray()})["y"]
        np.testing.assert_allclose(y, _want(x), rtol=1e-6)
        assert "memcpy1" not in cudart.calls  # no host-to-device copy of the input


def test_plan_checks_run_before_deserializing(fake_trt, tmp_path):
    with pytest.raises(EngineError, match=r"TensorRT 10\.12\.0\.1, this host has TensorRT 10\.13\.0\.35"):
        TensorRTRunner(_plan(tmp_path, trt_version="10.12.0.1")).activate()
    with pytest.raises(EngineError, match=r"compute capability 8\.6\), this GPU is Fake GPU 9000"):
        TensorRTRunner(_plan(tmp_path, gpu={"name": "RTX A6000", "compute_capability": "8.6"})).activate()
    # the plugin library itself (dlopen, marker): test_plugin_trust.py
    bad = _plan(tmp_path)
    bad.write_bytes(b"garbage")
    with pytest.raises(EngineError, match="could not deserialize.*rebuild the plan"):
        TensorRTRunner(bad).activate()


def test_engine_picks_tensorrt_for_a_plan_folder(fake_trt, tmp_path):
    from runtime.engine import resolve_files

    _plan(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"")
    assert resolve_files(tmp_path, "auto")[0] == "tensorrt"
    assert resolve_files(tmp_path, "onnxruntime")[0] == "onnxruntime"
