"""TensorRTRunner's control flow against a fake TensorRT + cuda-python (tests/runtime/fake_tensorrt.py):
buffers per shape, CUDA graph capture and replay, device inputs by pointer, plan checks before loading.
The real TensorRT path is tested in test_plan_checks.py where TensorRT is importable."""

import json
import sys
import types

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


class DeviceArray:
    """A device array as CuPy / Numba expose it (interface version 3, no stream: ready), over fake device memory
    `offset` bytes past a 256-byte boundary."""

    def __init__(self, values, offset=0):
        self.buf = fake.device_copy(values, offset)
        self.__cuda_array_interface__ = {"shape": values.shape, "typestr": "<f4",
                                         "data": (self.buf.ctypes.data, False), "version": 3, "strides": None}


def test_device_inputs_are_bound_by_pointer_without_copies(fake_trt, tmp_path):
    _, cudart = fake_trt
    x = np.random.default_rng(1).random((2, 4), dtype=np.float32)
    arr = DeviceArray(x)  # "device" memory of the fake is host memory: the pointer is all that matters

    with TensorRTRunner(_plan(tmp_path)) as runner:
        cudart.calls.clear()
        y = runner.infer({"x": arr})["y"]
        np.testing.assert_allclose(y, _want(x), rtol=1e-6)
        assert not any(c.startswith("memcpy") and c != "memcpy2" for c in cudart.calls)  # no input copy at all
        assert runner.stats["device_inputs_bound"] == 1


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


@pytest.mark.parametrize("failure,reason", [
    ("enqueue", "execute_async_v3 returned False while capturing"),
    ("end", "cudaStreamEndCapture: cudaErrorStreamCaptureInvalidated"),
    ("invalidated", "cudaStreamIsCapturing: the enqueue left the capture invalidated")])
def test_failed_capture_is_never_replayed_and_said_once(fake_trt, tmp_path, failure, reason):
    _, cudart = fake_trt
    cudart.fail_capture = failure
    x = np.random.default_rng(2).random((2, 4), dtype=np.float32)
    with TensorRTRunner(_plan(tmp_path)) as runner:
        with pytest.warns(UserWarning, match="CUDA graph capture failed") as caught:
            outs = [runner.infer({"x": x * (i + 1)})["y"] for i in range(5)]
        assert runner._capture_failure.startswith(reason) and runner.cuda_graphs is False
    assert len([w for w in caught if "capture failed" in str(w.message)]) == 1  # said once, not per call
    for i, y in enumerate(outs):  # every call computed its own inputs: no replay of a previous call
        np.testing.assert_allclose(y, _want(x * (i + 1)), rtol=1e-6)
    assert "graph" not in cudart.calls and cudart.calls.count("enqueue-captured") == 1
    # The capture's state comes from the stream; cuda-python's last-error slot is not TensorRT's to clear.
    assert "isCapturing" in cudart.calls and "getLastError" not in cudart.calls


class ProducedArray:
    """A device array whose producer (another stream) has not finished writing it yet."""

    def __init__(self, cudart, values, stream=555, version=3):
        self.buf = fake.device_copy(np.zeros_like(values))
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


@pytest.mark.parametrize("offset,bound", [(0, True), (16, False), (4, False)])
def test_an_address_tensorrt_cannot_take_is_copied_never_left_stale(fake_trt, tmp_path, offset, bound):
    _, cudart = fake_trt
    stale = np.full((2, 4), 7.0, np.float32)
    x = np.random.default_rng(5).random((2, 4), dtype=np.float32)
    with TensorRTRunner(_plan(tmp_path)) as runner:
        runner.infer({"x": stale})  # the runner's own buffer now holds other data
        cudart.calls.clear()
        y = runner.infer({"x": DeviceArray(x, offset)})["y"]
    np.testing.assert_allclose(y, _want(x), rtol=1e-6)  # not the stale 7s
    assert runner.stats == {"device_inputs_bound": int(bound), "device_input_copies": int(not bound)}
    assert ("memcpy3" in cudart.calls) is (not bound) and "memcpy1" not in cudart.calls  # D2D only, never H2D


def test_an_address_tensorrt_refuses_is_copied(fake_trt, tmp_path, monkeypatch):
    _, cudart = fake_trt
    x = np.random.default_rng(6).random((3, 4), dtype=np.float32)
    arr = DeviceArray(x)
    original = fake.Context.set_tensor_address

    def refuse_callers_memory(self, name, ptr):  # aligned, yet refused (as for memory TensorRT cannot use)
        return False if int(ptr) == arr.buf.ctypes.data else original(self, name, ptr)

    monkeypatch.setattr(fake.Context, "set_tensor_address", refuse_callers_memory)
    with TensorRTRunner(_plan(tmp_path)) as runner:
        runner.infer({"x": np.zeros((3, 4), np.float32)})
        y = runner.infer({"x": arr})["y"]
    np.testing.assert_allclose(y, _want(x), rtol=1e-6)  # not the zeros the runner's buffer held
    assert runner.stats == {"device_inputs_bound": 0, "device_input_copies": 1}


class TorchLikeArray:
    """What a torch CUDA tensor written on a side stream offers: ``__cuda_array_interface__`` version 2 with no
    stream (so the interface cannot say where the data comes from), and ``__dlpack__(stream=...)``, which
    makes the consumer's stream wait for torch's current stream (here: the side stream 555)."""

    def __init__(self, cudart, values, side_stream=555):
        self.cudart, self.side_stream = cudart, side_stream
        self.buf = fake.device_copy(np.zeros_like(values))
        self.__cuda_array_interface__ = {"shape": values.shape, "typestr": "<f4",
                                         "data": (self.buf.ctypes.data, False), "version": 2}
        cudart.pending.setdefault(side_stream, []).append(lambda: self.buf.__setitem__(..., values))
        self.dlpack_streams = []

    def __dlpack__(self, *, stream=None):
        self.dlpack_streams.append(stream)
        self.cudart.cudaEventRecord(event := types.SimpleNamespace(work=[]), self.side_stream)
        self.cudart.cudaStreamWaitEvent(stream, event, 0)
        return object()


def test_a_dlpack_producer_orders_its_stream_before_ours(fake_trt, tmp_path):
    _, cudart = fake_trt
    x = np.random.default_rng(7).random((2, 4), dtype=np.float32)
    with TensorRTRunner(_plan(tmp_path)) as runner:
        arr = TorchLikeArray(cudart, x)
        y = runner.infer({"x": arr})["y"]
        ours = runner._stream_handle
    np.testing.assert_allclose(y, _want(x), rtol=1e-6)  # waiting on the legacy stream instead reads zeros
    assert arr.dlpack_streams == [ours]


def test_a_shape_outside_the_profile_names_the_input_and_the_range(fake_trt, tmp_path):
    with TensorRTRunner(_plan(tmp_path)) as runner:
        with pytest.raises(EngineError, match=r"input 'x' has shape \(6, 4\), outside the plan's optimization "
                                              r"profile \(from \(1, 4\) to \(4, 4\)\).*--dynamic-batch"):
            runner._infer({"x": np.ones((6, 4), np.float32)}, {})  # past the batch check of infer()
        x = np.ones((2, 4), np.float32)  # the runner still works with a shape inside it
        np.testing.assert_allclose(runner.infer({"x": x})["y"], _want(x))


@pytest.mark.parametrize("version", [2, 3])
def test_pycuda_gpuarrays_are_bound_zero_copy(fake_trt, tmp_path, version):
    """pycuda.gpuarray.GPUArray's interface: exactly these keys (no stream: pycuda queues on the legacy
    default stream, which a version-2 interface implies and the runner waits for)."""
    _, cudart = fake_trt
    x = np.random.default_rng(8).random((4, 4), dtype=np.float32)
    buf = fake.device_copy(x)

    class GPUArray:
        __cuda_array_interface__ = {"shape": x.shape, "typestr": "<f4", "data": (buf.ctypes.data, False),
                                    "version": version}

    with TensorRTRunner(_plan(tmp_path)) as runner:
        cudart.calls.clear()
        np.testing.assert_allclose(runner.infer({"x": GPUArray()})["y"], _want(x), rtol=1e-6)
        assert runner.stats == {"device_inputs_bound": 1, "device_input_copies": 0}
    assert ("record1" in cudart.calls) is (version == 2) and not any(c.startswith("memcpy1") for c in cudart.calls)


def _rtx_plugin_plan(tmp_path, plan_bytes=fake.PLAN_BYTES):
    from fgsa.plan_sidecar import not_shown_to_run

    plan = _plan(tmp_path, target="tensorrt-rtx", trt_version="1.7.1.116", gpu=None, compute_capabilities=None,
                 metadata={"attention": "plugin"}, plugin_ops=["FGSA_Attention", "FGSA_MSDA"],
                 not_shown_to_run=not_shown_to_run("tensorrt-rtx", ["FGSA_Attention", "FGSA_MSDA"]))
    plan.write_bytes(plan_bytes)
    return plan


@pytest.fixture
def any_shared_library():
    """A file the fake registry can dlopen, standing in for the plugin library (its code is never called)."""
    import _ctypes  # CPython's compiled module: a real shared object

    return _ctypes.__file__


def test_a_refused_rtx_plugin_plan_says_to_use_the_portable_form(fake_rtx, tmp_path, any_shared_library):
    plan = _rtx_plugin_plan(tmp_path, b"not a plan TensorRT-RTX accepts")
    with pytest.raises(EngineError, match=r"TensorRT-RTX 1\.7\.1\.116 refused the plugin-form plan .*porting guide.*"
                                          r"export the portable form \(python -m export\.onnx --attention portable\)"):
        TensorRTRunner(plan, plugin_library=any_shared_library, check_plugin_sha256=False).activate()


def test_an_rtx_plugin_plan_without_a_context_says_to_use_the_portable_form(fake_rtx, tmp_path, monkeypatch,
                                                                            any_shared_library):
    monkeypatch.setattr(fake.Engine, "create_execution_context", lambda self, config=None: None)
    with pytest.raises(EngineError, match=r"could not create an execution context for the plugin-form plan.*"
                                          r"--attention portable"):
        TensorRTRunner(_rtx_plugin_plan(tmp_path), plugin_library=any_shared_library,
                       check_plugin_sha256=False).activate()
    portable = _plan(tmp_path, target="tensorrt-rtx", trt_version="1.7.1.116", gpu=None, compute_capabilities=None)
    with pytest.raises(EngineError, match=r"could not create an execution context for .*model\.plan on Fake GPU "
                                          r"9000.*free GPU memory") as caught:
        TensorRTRunner(portable).activate()
    assert "portable" not in str(caught.value)
