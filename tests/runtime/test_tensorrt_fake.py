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


@pytest.mark.parametrize("failure", ["enqueue", "end"])
def test_failed_capture_is_never_replayed_and_said_once(fake_trt, tmp_path, failure):
    _, cudart = fake_trt
    cudart.fail_capture = failure
    x = np.random.default_rng(2).random((2, 4), dtype=np.float32)
    with TensorRTRunner(_plan(tmp_path)) as runner:
        with pytest.warns(UserWarning, match="CUDA graph capture failed") as caught:
            outs = [runner.infer({"x": x * (i + 1)})["y"] for i in range(5)]
        assert runner._capture_failure and runner.cuda_graphs is False
    assert len([w for w in caught if "capture failed" in str(w.message)]) == 1  # said once, not per call
    for i, y in enumerate(outs):  # every call computed its own inputs: no replay of a previous call
        np.testing.assert_allclose(y, _want(x * (i + 1)), rtol=1e-6)
    assert "graph" not in cudart.calls and cudart.calls.count("enqueue-captured") == 1
    assert "getLastError" in cudart.calls  # the capture's error is cleared, not left for the next call


class ProducedArray:
    """A device array whose producer (another stream) has not finished writing it yet."""

    def __init__(self, cudart, values, stream=555, version=3):
        self.buf = np.zeros_like(values)
        self.__cuda_array_interface__ = {"shape": values.shape, "typestr": "<f4", "data": (self.buf.ctypes.data, False),
                                         "version": version, "strides": None}
        if stream is not None:
            self.__cuda_array_interface__["stream"] = stream
        key = 1 if version < 3 else stream
        cudart.pending.setdefault(key, []).append(lambda: self.buf.__setitem__(..., values))


@pytest.mark.parametrize("stream,version,recorded", [(555, 3, "record555"), (None, 2, "record1")])
def test_zero_copy_inputs_wait_for_their_producer_stream(fake_trt, tmp_path, stream, version, recorded):
    _, cudart = fake_trt
    x = np.random.default_rng(3).random((2, 4), dtype=np.float32)
    with TensorRTRunner(_plan(tmp_path)) as runner:
        cudart.calls.clear()
        arr = ProducedArray(cudart, x, stream, version)
        y = runner.infer({"x": arr})["y"]
    np.testing.assert_allclose(y, _want(x), rtol=1e-6)  # without the wait the kernel reads zeros
    calls = [c for c in cudart.calls if c.startswith(("record", "wait", "enqueue"))]
    assert calls == [recorded, "wait77", "enqueue"]


def test_cai_v3_without_a_stream_needs_no_wait(fake_trt, tmp_path):
    _, cudart = fake_trt
    x = np.ones((1, 4), np.float32)

    class Ready:
        __cuda_array_interface__ = {"shape": x.shape, "typestr": "<f4", "data": (x.ctypes.data, False), "version": 3,
                                    "strides": None, "stream": None}

    with TensorRTRunner(_plan(tmp_path)) as runner:
        cudart.calls.clear()
        np.testing.assert_allclose(runner.infer({"x": Ready()})["y"], _want(x))
    assert not any(c.startswith(("record", "wait")) for c in cudart.calls)


def test_every_call_sets_the_device_on_its_own_thread(fake_trt, tmp_path):
    import threading

    _, cudart = fake_trt
    x = np.ones((1, 4), np.float32)
    with TensorRTRunner(_plan(tmp_path), device=0) as runner:
        worker = threading.Thread(target=lambda: runner.infer({"x": x}))
        worker.start()
        worker.join()
        assert worker.ident in cudart.set_device_threads


def test_the_plugin_logger_outlives_the_runner(fake_trt, tmp_path):
    import gc

    trt, _ = fake_trt
    runner = TensorRTRunner(_plan(tmp_path)).activate()
    runner.deactivate()
    del runner
    gc.collect()
    assert trt.plugin_loggers and all(ref() is not None for ref in trt.plugin_loggers)


def test_bf16_plan_io_is_a_clear_error(fake_trt, tmp_path, monkeypatch):
    monkeypatch.setattr(fake.Engine, "output_dtype", "BF16")
    with pytest.raises(EngineError, match=r"I/O tensor 'y' is bfloat16, which NumPy .* cannot hold.*float32 / float16"):
        TensorRTRunner(_plan(tmp_path)).activate()


def test_a_plan_that_is_not_its_sidecars_is_refused(fake_trt, tmp_path):
    import hashlib

    good = hashlib.sha256(fake.PLAN_BYTES).hexdigest()
    with TensorRTRunner(_plan(tmp_path, plan_sha256=good)) as runner:
        assert runner.is_active
    with pytest.raises(EngineError, match="is not the plan its sidecar model.plan.json describes.*writes the plan and "
                                          "its sidecar together"):
        TensorRTRunner(_plan(tmp_path, plan_sha256="0" * 64)).activate()


@pytest.fixture
def fake_rtx(monkeypatch):
    trt, cudart = fake.make_modules("1.7.1.116", target="tensorrt-rtx")
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", trt)
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # a TensorRT-RTX plan never needs TensorRT
    monkeypatch.setattr("runtime.backends.tensorrt.import_cudart", lambda: cudart)
    return trt, cudart


def test_tensorrt_rtx_plan_runs_with_its_runtime_cache(fake_rtx, tmp_path):
    trt, cudart = fake_rtx
    plan = _plan(tmp_path, target="tensorrt-rtx", trt_version="1.7.1.116", gpu=None, compute_capabilities=None)
    cache = tmp_path / "model.plan.rtcache"
    x = np.random.default_rng(4).random((3, 4), dtype=np.float32)
    with TensorRTRunner(plan) as runner:
        for _ in range(3):
            np.testing.assert_allclose(runner.infer({"x": x})["y"], _want(x), rtol=1e-6)
        config = trt.engines[-1].contexts[-1]
        assert config.cuda_graph_strategy == "WHOLE_GRAPH_CAPTURE"  # TensorRT-RTX captures by itself
    assert "enqueue-captured" not in cudart.calls and cache.read_bytes() == b"compiled-for-fake-gpu"
    with TensorRTRunner(plan):  # the cache is read back: no warning
        assert trt.engines[-1].contexts[-1].cache.blob == b"compiled-for-fake-gpu"
    cache.write_bytes(b"from another GPU")
    with pytest.warns(UserWarning, match="another GPU, driver or TensorRT-RTX version"):
        TensorRTRunner(plan).activate().deactivate()
    assert cache.read_bytes() == b"compiled-for-fake-gpu"


def test_tensorrt_rtx_plan_checks_its_compute_capabilities(fake_rtx, tmp_path):
    plan = _plan(tmp_path, target="tensorrt-rtx", trt_version="1.7.1.116", gpu=None, compute_capabilities=["8.6"])
    with pytest.raises(EngineError, match=r"built by TensorRT-RTX for NVIDIA GPUs of compute capability 8\.6; this "
                                          r"GPU is Fake GPU 9000 \(compute capability 9\.0\).*--compute-capability 9\.0"):
        TensorRTRunner(plan).activate()
    with pytest.raises(EngineError, match=r"built with TensorRT-RTX 1\.6\.0, this host has TensorRT-RTX 1\.7\.1"):
        TensorRTRunner(_plan(tmp_path, target="tensorrt-rtx", trt_version="1.6.0")).activate()


def test_engine_picks_tensorrt_rtx_for_a_tensorrt_rtx_plan_folder(fake_rtx, tmp_path):
    from runtime.engine import resolve_files

    _plan(tmp_path, target="tensorrt-rtx", trt_version="1.7.1.116")
    (tmp_path / "model.onnx").write_bytes(b"")
    assert resolve_files(tmp_path, "auto")[0] == "tensorrt"  # tensorrt itself is not importable here
    (tmp_path / "model.plan.json").write_text(json.dumps({"trt_version": "10.13.0.35"}))  # a TensorRT plan
    assert resolve_files(tmp_path, "auto")[0] == "onnxruntime"


def test_cuda_python_newer_than_the_driver_says_which_to_install(fake_trt, tmp_path, monkeypatch):
    _, cudart = fake_trt
    monkeypatch.setattr(cudart, "cudaSetDevice", lambda device: (fake.cudaError_t.cudaErrorInsufficientDriver,))
    with pytest.raises(EngineError, match=r"driver version is insufficient.*cuda-python>=12\.6,<13'? for a CUDA 12"):
        TensorRTRunner(_plan(tmp_path)).activate()
