"""TensorRT backend: a serialized TensorRT or TensorRT-RTX plan, our plugin library, device memory and one stream
through cuda-python.

Thin on purpose, following TensorRT's own Python samples (TensorRT 10.x / 11.x API; TensorRT-RTX 1.x has the
same runtime API under the module ``tensorrt_rtx``, chosen by the sidecar's ``target``):
``trt.Runtime(logger).deserialize_cuda_engine``, ``IExecutionContext.set_input_shape`` /
``set_tensor_address`` / ``execute_async_v3``; ``cuda.bindings.runtime`` (cuda-python) for
``cudaMalloc``, ``cudaMemcpyAsync`` and one non-blocking stream per runner. For a fixed set of input shapes
the enqueue is captured once into a CUDA graph and replayed (host -> device copies stay outside the graph).
Device inputs (CuPy, torch CUDA tensors, Numba, pycuda) are ordered after their producer's work and bound by
address, no copy, and that call runs without the graph; an address TensorRT cannot take (not 256-byte
aligned, or refused) is copied on the device into the runner's buffer instead (runtime/backends/
device_inputs.py). Outputs are copied to new NumPy arrays. A failed capture (the enqueue refused, or the
capture invalidated) is not replayed: the runner runs uncaptured from then on and warns once. Every entry
(activate, infer, deactivate) first makes the runner's device current, so calls from other threads reach the
right GPU.

TensorRT-RTX plans (built ahead of time, possibly without a GPU) are compiled for this GPU when loaded; the
result is kept in a runtime cache beside the plan (``<plan>.rtcache``), read when it matches this GPU and
driver and written back when the runner is deactivated. TensorRT-RTX captures CUDA graphs itself
(``cuda_graph_strategy``), so the manual capture is used for TensorRT only.

Before deserializing, the plan's sidecar (``<plan>.json``) is checked against this TensorRT and GPU, and the
plugin library is resolved and loaded (:mod:`runtime.backends.plan`); each failure says how to fix it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from fgsa import plan_sidecar, plan_targets
from fgsa.errors import InputError
from runtime.backends import device_inputs
from runtime.backends.base import Runner
from runtime.backends.plan import (GpuInfo, check_compatibility, check_plan_bytes, load_plugin_library,
                                   read_sidecar, resolve_plugin_library)
from runtime.errors import EngineError
from runtime.specs import BatchRange, TensorSpec, array_shape, device_pointer

RUNTIME_CACHE_SUFFIX = ".rtcache"


def import_tensorrt(target: str = "tensorrt"):
    """The runtime module of ``target`` ("tensorrt" or "tensorrt-rtx")."""
    if target == "tensorrt-rtx":
        try:
            import tensorrt_rtx
        except ImportError as exc:
            raise EngineError(f"TensorRT-RTX is not importable ({exc}), and this plan was built for it",
                              "pip install tensorrt-rtx-cu12 (or -cu13, matching the driver's CUDA major), or use "
                              "backend='onnxruntime' with the ONNX graph") from None
        return tensorrt_rtx
    try:
        import tensorrt
    except ImportError as exc:  # wheels without libnvinfer fail here too
        raise EngineError(f"TensorRT is not importable ({exc})",
                          "install TensorRT 10.11+ with its libraries (pip install tensorrt), or use "
                          "backend='onnxruntime' with the ONNX graph") from None
    return tensorrt


_LOGGERS: dict = {}


def process_logger(trt):
    """One logger per TensorRT module for the whole process: ``init_libnvinfer_plugins`` and the plugin
    registry keep the logger they were given and may call it after any runner is gone."""
    if trt.__name__ not in _LOGGERS:
        _LOGGERS[trt.__name__] = trt.Logger(trt.Logger.WARNING)
    return _LOGGERS[trt.__name__]


def tensor_dtype(trt_dtype, name: str, path: Path) -> np.dtype:
    """The NumPy dtype of a plan's I/O tensor; EngineError for BF16 / FP8 / INT4 / FP4 I/O."""
    try:
        return np.dtype(plan_targets.dtype_name(trt_dtype, name))
    except InputError as exc:
        raise EngineError(f"{path}: I/O tensor '{name}' is {exc.got}, which NumPy (the runtime's arrays) cannot "
                          "hold", f"rebuild the plan from a graph whose I/O is float32 / float16 / int32 / bool "
                          "(python -m export.onnx writes such graphs)") from None


def import_cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python layout
        except ImportError:
            raise EngineError("cuda-python is not installed", "pip install cuda-python (matching your CUDA major "
                              "version); the TensorRT backend uses it for device memory and streams") from None
    return cudart


class _Cuda:
    """cuda-python calls return (error, *values); this turns errors into EngineError."""

    def __init__(self, cudart):
        self.rt = cudart

    def error_name(self, err) -> str:
        name = self.rt.cudaGetErrorString(err)[1]
        return name.decode() if isinstance(name, bytes) else str(name)

    def __call__(self, result, what: str):
        err, *values = result if isinstance(result, tuple) else (result,)
        if err != self.rt.cudaError_t.cudaSuccess:
            name = self.error_name(err)
            if "driver" in name.lower() and "insufficient" in name.lower():
                raise EngineError(f"CUDA call {what} failed: {name}",
                                  "cuda-python's major version must be the driver's CUDA major (nvidia-smi shows it): "
                                  "pip install 'cuda-python>=12.6,<13' for a CUDA 12 driver (the trt / rtx-gpu "
                                  "extras), 'cuda-python>=13,<14' for CUDA 13 (the -cu13 extras), or update the driver")
            raise EngineError(f"CUDA call {what} failed: {name}",
                              "check the GPU (nvidia-smi), the driver and that no other process holds the device")
        return values[0] if len(values) == 1 else (tuple(values) or None)


def _null(handle) -> bool:
    """A CUDA handle that is None or NULL (cuda-python handles convert to their address with int())."""
    if handle is None:
        return True
    try:
        return int(handle) == 0
    except TypeError:
        return False


def _capture_status(status) -> str:
    """'invalidated' / 'not capturing' from a cudaStreamCaptureStatus."""
    name = getattr(status, "name", str(status))
    return {"cudaStreamCaptureStatusInvalidated": "invalidated",
            "cudaStreamCaptureStatusNone": "not capturing"}.get(name, name)


def current_gpu(cuda: _Cuda, device: int) -> GpuInfo:
    props = cuda(cuda.rt.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    name = props.name.decode(errors="replace").rstrip("\x00") if isinstance(props.name, bytes) else str(props.name)
    return GpuInfo(name, f"{props.major}.{props.minor}")


class _Buffers:
    """Device buffers, host output arrays and the captured CUDA graph for one set of input shapes."""

    def __init__(self):
        self.device: dict[str, int] = {}
        self.nbytes: dict[str, int] = {}
        self.host_out: dict[str, np.ndarray] = {}
        self.graph = None
        self.graph_exec = None
        self.warm = False


class TensorRTRunner(Runner):
    """One TensorRT plan.

    Args:
        path: the .plan file (its sidecar ``<plan>.json`` next to it).
        plugin_library: libfgsa_trt_plugin.so to load (default: $FGSA_PLUGIN_LIBRARY, else this project's build/;
            never the path in the plan's sidecar, whose SHA-256 only confirms the library chosen).
        device: CUDA device ordinal.
        cuda_graphs: capture and replay the enqueue per input-shape set.
        check_plugin_sha256: refuse a plugin library other than the one the plan was built with.

    ``stats``: ``device_inputs_bound`` (device inputs TensorRT read in place) and ``device_input_copies``
    (device inputs copied on the device first, their address not usable by TensorRT).
    """

    backend = "tensorrt"
    accepts_device_arrays = True

    def __init__(self, path: str | Path, plugin_library: str | Path | None = None, device: int = 0,
                 cuda_graphs: bool = True, check_plugin_sha256: bool = True):
        path = Path(path)
        super().__init__(path.stem)
        self.path, self.plugin_library, self.device = path, plugin_library, device
        self.cuda_graphs, self.check_plugin_sha256 = cuda_graphs, check_plugin_sha256
        self._buffers: dict[tuple, _Buffers] = {}
        self._current: tuple | None = None
        self._capture_failure: str | None = None
        self._runtime_cache = None
        self.target = "tensorrt"  # the sidecar's, once active
        self.stats = {"device_inputs_bound": 0, "device_input_copies": 0}

    # -- lifecycle -------------------------------------------------------------------------------------
    def _activate(self) -> None:
        if not self.path.is_file():
            raise EngineError(f"{self.path}: plan file not found", "build one with python -m export.trt")
        side = read_sidecar(self.path)
        self.target = side.target if side is not None else "tensorrt"
        trt = import_tensorrt(self.target)
        cuda = _Cuda(import_cudart())
        cuda(cuda.rt.cudaSetDevice(self.device), "cudaSetDevice")
        gpu = current_gpu(cuda, self.device)
        if side is not None:
            check_compatibility(side, self.path, trt.__version__, gpu)
            self.metadata = dict(side.metadata)
        plan_bytes = self.path.read_bytes()
        check_plan_bytes(side, self.path, plan_bytes)
        library = resolve_plugin_library(side, self.path, self.plugin_library, self.check_plugin_sha256)
        logger = process_logger(trt)
        if hasattr(trt, "init_libnvinfer_plugins"):
            trt.init_libnvinfer_plugins(logger, "")
        if library is not None:
            self._plugin_handle = load_plugin_library(trt, library)
        engine = trt.Runtime(logger).deserialize_cuda_engine(plan_bytes)
        if engine is None and self._rtx_plugin_plan(side):
            raise EngineError(f"TensorRT-RTX {trt.__version__} refused the plugin-form plan {self.path} on {gpu.name} "
                              f"({plan_sidecar.RTX_PLUGIN_NOT_SHOWN})", plan_sidecar.RTX_PORTABLE_FIX)
        if engine is None:
            raise EngineError(
                f"{plan_targets.TARGETS[self.target].title} {trt.__version__} could not deserialize {self.path} "
                f"on {gpu.name}"
                + ("" if side else " (no sidecar JSON to check its TensorRT version, GPU and plugin library)"),
                "rebuild the plan on this machine with python -m export.trt, and load libfgsa_trt_plugin.so "
                "(plugin_library=...) if it was exported with --attention plugin")
        self._trt, self._cuda, self._engine = trt, cuda, engine
        self._context = self._create_context(trt, engine)
        if self._context is None:  # TensorRT-RTX compiles the plan for this GPU here, and may refuse it here
            if self._rtx_plugin_plan(side):
                raise EngineError(f"TensorRT-RTX {trt.__version__} could not create an execution context for the "
                                  f"plugin-form plan {self.path} on {gpu.name} ({plan_sidecar.RTX_PLUGIN_NOT_SHOWN})",
                                  plan_sidecar.RTX_PORTABLE_FIX)
            raise EngineError(f"{plan_targets.TARGETS[self.target].title} {trt.__version__} could not create an "
                              f"execution context for {self.path} on {gpu.name} (see the log above)",
                              "check free GPU memory (nvidia-smi) and rebuild the plan on this machine with "
                              "python -m export.trt")
        self._stream = cuda(cuda.rt.cudaStreamCreateWithFlags(cuda.rt.cudaStreamNonBlocking), "cudaStreamCreate")
        self._stream_handle = int(self._stream)  # TensorRT takes the raw cudaStream_t as an integer
        self._event = cuda(cuda.rt.cudaEventCreateWithFlags(cuda.rt.cudaEventDisableTiming), "cudaEventCreate")
        self.inputs, self.outputs = [], []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            dims = [int(d) for d in engine.get_tensor_shape(name)]
            shape = [("batch" if axis == 0 else None) if d < 0 else d for axis, d in enumerate(dims)]
            spec = TensorSpec.make(name, shape, tensor_dtype(engine.get_tensor_dtype(name), name, self.path))
            (self.inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else self.outputs).append(spec)
        dynamic = [s for s in self.inputs if s.shape and s.shape[0] == "batch"]
        if dynamic:
            lo, _, hi = engine.get_tensor_profile_shape(dynamic[0].name, 0)
            self.batch = BatchRange(int(lo[0]), int(hi[0]))
        elif self.inputs:
            self.batch = BatchRange(int(self.inputs[0].shape[0]), int(self.inputs[0].shape[0]))

    def _rtx_plugin_plan(self, side) -> bool:
        """A TensorRT-RTX plan built from a plugin-form graph (the sidecar's doubt, or its plugin ops)."""
        return self.target == "tensorrt-rtx" and side is not None and bool(side.not_shown_to_run or side.needs_plugin)

    def _create_context(self, trt, engine):
        """TensorRT: a plain context. TensorRT-RTX: one with the runtime cache beside the plan and, when CUDA
        graphs are on, TensorRT-RTX's own whole-graph capture."""
        if self.target != "tensorrt-rtx":
            return engine.create_execution_context()
        config = engine.create_runtime_config()
        cache = config.create_runtime_cache()
        path = self.runtime_cache_path
        if path.is_file() and not cache.deserialize(path.read_bytes()):
            warnings.warn(f"{path} was written for another GPU, driver or TensorRT-RTX version; compiling anew and "
                          "replacing it when the runner is deactivated")
        config.set_runtime_cache(cache)
        if self.cuda_graphs and hasattr(trt, "CudaGraphStrategy"):
            config.cuda_graph_strategy = trt.CudaGraphStrategy.WHOLE_GRAPH_CAPTURE
        self._runtime_cache, self._runtime_config = cache, config
        return engine.create_execution_context(config)

    @property
    def runtime_cache_path(self) -> Path:
        return self.path.with_name(self.path.name + RUNTIME_CACHE_SUFFIX)

    def _save_runtime_cache(self) -> None:
        if self._runtime_cache is None:
            return
        path, tmp = self.runtime_cache_path, self.runtime_cache_path.with_suffix(".tmp")
        try:
            tmp.write_bytes(bytes(self._runtime_cache.serialize()))
            tmp.replace(path)
        except OSError as exc:  # a read-only model folder: the JIT step simply runs again next time
            warnings.warn(f"runtime cache {path} not written ({exc})")

    def _deactivate(self) -> None:
        cuda = self._cuda
        cuda(cuda.rt.cudaSetDevice(self.device), "cudaSetDevice")
        for buf in self._buffers.values():
            self._free(buf)
        self._buffers.clear()
        self._current = None
        self._save_runtime_cache()
        cuda(cuda.rt.cudaEventDestroy(self._event), "cudaEventDestroy")
        cuda(cuda.rt.cudaStreamDestroy(self._stream), "cudaStreamDestroy")
        self._context = self._engine = self._runtime_cache = None

    def _free(self, buf: _Buffers) -> None:
        rt = self._cuda.rt
        if buf.graph_exec is not None:
            rt.cudaGraphExecDestroy(buf.graph_exec)
            rt.cudaGraphDestroy(buf.graph)
        for ptr in buf.device.values():
            rt.cudaFree(ptr)

    # -- inference -------------------------------------------------------------------------------------
    def _prepare(self, arrays: dict[str, Any]) -> _Buffers:
        """Buffers for these input shapes; the context gets their shapes and addresses when they change."""
        key = tuple((n, array_shape(a)) for n, a in arrays.items())
        buf = self._buffers.get(key)
        cuda, ctx = self._cuda, self._context
        if buf is None:
            self._set_input_shapes(key)
            buf = _Buffers()
            for spec in self.inputs + self.outputs:
                shape = tuple(int(d) for d in ctx.get_tensor_shape(spec.name))
                nbytes = int(np.prod(shape)) * spec.dtype.itemsize
                buf.nbytes[spec.name] = nbytes
                buf.device[spec.name] = cuda(cuda.rt.cudaMalloc(max(nbytes, 1)), "cudaMalloc")
                if spec in self.outputs:
                    buf.host_out[spec.name] = np.empty(shape, dtype=spec.dtype)
            self._buffers[key] = buf
        if self._current != key:
            self._set_input_shapes(key)
            for name, ptr in buf.device.items():
                device_inputs.bind_own(ctx, name, ptr)
            for other in self._buffers.values():  # a graph captured for other shapes is stale now
                if other is not buf and other.graph_exec is not None:
                    self._cuda.rt.cudaGraphExecDestroy(other.graph_exec)
                    self._cuda.rt.cudaGraphDestroy(other.graph)
                    other.graph = other.graph_exec = None
                    other.warm = False
            self._current = key
        return buf

    def _set_input_shapes(self, key: tuple) -> None:
        """TensorRT returns False for a shape outside the optimization profile and leaves the dimensions
        unknown (-1), which would only surface later as a buffer of negative size."""
        self._current = None  # the context's shapes change: its addresses are bound again by the caller
        for name, shape in key:
            if not self._context.set_input_shape(name, shape):
                lo, _, hi = (tuple(int(d) for d in s) for s in self._engine.get_tensor_profile_shape(name, 0))
                raise EngineError(f"{self.path}: input '{name}' has shape {tuple(shape)}, outside the plan's "
                                  f"optimization profile (from {lo} to {hi})",
                                  f"pass '{name}' with a shape between {lo} and {hi}, or rebuild the plan with a "
                                  "profile that covers it (python -m export.trt --dynamic-batch MIN:OPT:MAX)")

    def _enqueue(self, buf: _Buffers) -> None:
        cuda, rt, stream = self._cuda, self._cuda.rt, self._stream
        if buf.graph_exec is not None:
            cuda(rt.cudaGraphLaunch(buf.graph_exec, stream), "cudaGraphLaunch")
            return
        if not self._context.execute_async_v3(self._stream_handle):
            raise EngineError(f"{self.path}: execute_async_v3 failed (see the TensorRT log above)",
                              "check the input shapes against the plan's optimization profile")
        # TensorRT needs one enqueue after a shape change before capture; TensorRT-RTX captures by itself
        if self.cuda_graphs and buf.warm and self.target == "tensorrt":
            self._capture(buf)
        buf.warm = True

    def _capture(self, buf: _Buffers) -> None:
        """Record the enqueue into a CUDA graph; only a complete capture is kept for replay. On failure the
        runner stops capturing and says so once (this call's outputs come from the uncaptured enqueue).

        The capture's state is read from the stream (cudaStreamIsCapturing after the enqueue, then
        cudaStreamEndCapture's result), not from cudaGetLastError: cuda-python's runtime (a reimplementation
        over the driver API, or its own static libcudart in newer releases) keeps its own last-error slot,
        separate from the static CUDA runtime inside libnvinfer, so that call neither sees nor clears an error
        TensorRT met while capturing. The stream's capture state is the driver's, which both share. No
        last-error slot needs clearing here: every cuda-python call of this runner returns its own status, and
        TensorRT reports its own through execute_async_v3."""
        rt, stream = self._cuda.rt, self._stream
        mode = rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        problem = None
        err, = rt.cudaStreamBeginCapture(stream, mode)
        if err != rt.cudaError_t.cudaSuccess:
            problem = f"cudaStreamBeginCapture: {self._cuda.error_name(err)}"
        else:
            enqueued = self._context.execute_async_v3(self._stream_handle)
            err, status = rt.cudaStreamIsCapturing(stream)
            invalidated = (err != rt.cudaError_t.cudaSuccess or
                           status != rt.cudaStreamCaptureStatus.cudaStreamCaptureStatusActive)
            err, graph = rt.cudaStreamEndCapture(stream)  # always ends the capture, even after a failed enqueue
            if not enqueued:
                problem = "execute_async_v3 returned False while capturing"
            elif invalidated:
                problem = (f"cudaStreamIsCapturing: the enqueue left the capture {_capture_status(status)} "
                           "(TensorRT made a call that cannot be captured)")
            elif err != rt.cudaError_t.cudaSuccess or _null(graph):
                problem = f"cudaStreamEndCapture: {self._cuda.error_name(err)} (the capture was invalidated)"
            else:
                err, graph_exec = rt.cudaGraphInstantiate(graph, 0)
                if err != rt.cudaError_t.cudaSuccess:
                    problem = f"cudaGraphInstantiate: {self._cuda.error_name(err)}"
                else:
                    buf.graph, buf.graph_exec = graph, graph_exec
            if problem and not _null(graph):
                rt.cudaGraphDestroy(graph)
        if problem:
            self.cuda_graphs = False
            self._capture_failure = problem
            warnings.warn(f"{self.path}: CUDA graph capture failed ({problem}); this runner runs uncaptured from "
                          "now on", stacklevel=4)

    def _infer(self, arrays: dict[str, Any], symbols: dict[str, int]) -> dict[str, np.ndarray]:
        cuda, rt, stream = self._cuda, self._cuda.rt, self._stream
        cuda(rt.cudaSetDevice(self.device), "cudaSetDevice")  # the calling thread may have another device current
        buf = self._prepare(arrays)
        for name, arr in arrays.items():
            if isinstance(arr, np.ndarray) and buf.nbytes[name]:
                cuda(rt.cudaMemcpyAsync(buf.device[name], arr.ctypes.data, buf.nbytes[name],
                                        rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync H2D")
        bound = []  # inputs the context reads from the caller's memory, for this call only
        for name, arr in arrays.items():
            if isinstance(arr, np.ndarray):
                continue
            device_inputs.order_after_producer(cuda, arr, stream, self._stream_handle, self._event)
            if device_inputs.bind_or_copy(cuda, self._context, name, device_pointer(arr), buf.device[name],
                                          buf.nbytes[name], stream):
                bound.append(name)
                self.stats["device_inputs_bound"] += 1
            else:
                self.stats["device_input_copies"] += 1
        if bound:  # zero-copy: the graph holds the runner's addresses, so this call runs uncaptured
            try:
                if not self._context.execute_async_v3(self._stream_handle):
                    raise EngineError(f"{self.path}: execute_async_v3 failed", "check the inputs")
            finally:
                for name in bound:
                    device_inputs.bind_own(self._context, name, buf.device[name])
        else:
            self._enqueue(buf)
        for name, host in buf.host_out.items():
            if buf.nbytes[name]:
                cuda(rt.cudaMemcpyAsync(host.ctypes.data, buf.device[name], buf.nbytes[name],
                                        rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync D2H")
        cuda(rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")
        return {name: host.copy() for name, host in buf.host_out.items()}
