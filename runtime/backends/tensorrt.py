"""TensorRT backend: a serialized plan, our plugin library, device memory and one stream through cuda-python.

Thin on purpose, following TensorRT's own Python samples (TensorRT 10.x / 11.x API):
``trt.Runtime(logger).deserialize_cuda_engine``, ``IExecutionContext.set_input_shape`` /
``set_tensor_address`` / ``execute_async_v3``; ``cuda.bindings.runtime`` (cuda-python) for
``cudaMalloc``, ``cudaMemcpyAsync`` and one non-blocking stream per runner. For a fixed set of input shapes
the enqueue is captured once into a CUDA graph and replayed (host -> device copies stay outside the graph).
Device inputs (``__cuda_array_interface__``: CuPy, torch CUDA tensors, Numba) are bound by address, no copy,
and that call runs without the graph. Outputs are copied to new NumPy arrays.

Before deserializing, the plan's sidecar (``<plan>.json``) is checked against this TensorRT and GPU, and the
plugin library is resolved and loaded (:mod:`runtime.backends.plan`); each failure says how to fix it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from runtime.backends.base import Runner
from runtime.backends.plan import (GpuInfo, check_compatibility, load_plugin_library, read_sidecar,
                                   resolve_plugin_library)
from runtime.errors import EngineError
from runtime.specs import BatchRange, TensorSpec, array_shape, device_pointer


def import_tensorrt():
    try:
        import tensorrt
    except ImportError as exc:  # wheels without libnvinfer fail here too
        raise EngineError(f"TensorRT is not importable ({exc})",
                          "install TensorRT 10.11+ with its libraries (pip install tensorrt), or use "
                          "backend='onnxruntime' with the ONNX graph") from None
    return tensorrt


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

    def __call__(self, result, what: str):
        err, *values = result if isinstance(result, tuple) else (result,)
        if err != self.rt.cudaError_t.cudaSuccess:
            name = self.rt.cudaGetErrorString(err)[1]
            name = name.decode() if isinstance(name, bytes) else str(name)
            raise EngineError(f"CUDA call {what} failed: {name}",
                              "check the GPU (nvidia-smi), the driver and that no other process holds the device")
        return values[0] if len(values) == 1 else (tuple(values) or None)


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

    # -- lifecycle -------------------------------------------------------------------------------------
    def _activate(self) -> None:
        if not self.path.is_file():
            raise EngineError(f"{self.path}: plan file not found", "build one with python -m export.trt")
        trt = import_tensorrt()
        cuda = _Cuda(import_cudart())
        side = read_sidecar(self.path)
        cuda(cuda.rt.cudaSetDevice(self.device), "cudaSetDevice")
        gpu = current_gpu(cuda, self.device)
        if side is not None:
            check_compatibility(side, self.path, trt.__version__, gpu)
            self.metadata = dict(side.metadata)
        library = resolve_plugin_library(side, self.path, self.plugin_library, self.check_plugin_sha256)
        logger = trt.Logger(trt.Logger.WARNING)
        trt.init_libnvinfer_plugins(logger, "")
        if library is not None:
            self._plugin_handle = load_plugin_library(trt, library)
        engine = trt.Runtime(logger).deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            raise EngineError(
                f"TensorRT {trt.__version__} could not deserialize {self.path} on {gpu.name}"
                + ("" if side else " (no sidecar JSON to check its TensorRT version, GPU and plugin library)"),
                "rebuild the plan on this machine with python -m export.trt, and load libfgsa_trt_plugin.so "
                "(plugin_library=...) if it was exported with --attention plugin")
        self._trt, self._cuda, self._engine = trt, cuda, engine
        self._context = engine.create_execution_context()
        self._stream = cuda(cuda.rt.cudaStreamCreateWithFlags(cuda.rt.cudaStreamNonBlocking), "cudaStreamCreate")
        self._stream_handle = int(self._stream)  # TensorRT takes the raw cudaStream_t as an integer
        self.inputs, self.outputs = [], []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            dims = [int(d) for d in engine.get_tensor_shape(name)]
            shape = [("batch" if axis == 0 else None) if d < 0 else d for axis, d in enumerate(dims)]
            spec = TensorSpec.make(name, shape, np.dtype(trt.nptype(engine.get_tensor_dtype(name))))
            (self.inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else self.outputs).append(spec)
        dynamic = [s for s in self.inputs if s.shape and s.shape[0] == "batch"]
        if dynamic:
            lo, _, hi = engine.get_tensor_profile_shape(dynamic[0].name, 0)
            self.batch = BatchRange(int(lo[0]), int(hi[0]))
        elif self.inputs:
            self.batch = BatchRange(int(self.inputs[0].shape[0]), int(self.inputs[0].shape[0]))

    def _deactivate(self) -> None:
        cuda = self._cuda
        for buf in self._buffers.values():
            self._free(buf)
        self._buffers.clear()
        self._current = None
        cuda(cuda.rt.cudaStreamDestroy(self._stream), "cudaStreamDestroy")
        self._context = self._engine = None

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
            buf = _Buffers()
            for name, shape in key:
                ctx.set_input_shape(name, shape)
            for spec in self.inputs + self.outputs:
                shape = tuple(int(d) for d in ctx.get_tensor_shape(spec.name))
                nbytes = int(np.prod(shape)) * spec.dtype.itemsize
                buf.nbytes[spec.name] = nbytes
                buf.device[spec.name] = cuda(cuda.rt.cudaMalloc(max(nbytes, 1)), "cudaMalloc")
                if spec in self.outputs:
                    buf.host_out[spec.name] = np.empty(shape, dtype=spec.dtype)
            self._buffers[key] = buf
        if self._current != key:
            for name, shape in key:
                ctx.set_input_shape(name, shape)
            for name, ptr in buf.device.items():
                ctx.set_tensor_address(name, ptr)
            for other in self._buffers.values():  # a graph captured for other shapes is stale now
                if other is not buf and other.graph_exec is not None:
                    self._cuda.rt.cudaGraphExecDestroy(other.graph_exec)
                    self._cuda.rt.cudaGraphDestroy(other.graph)
                    other.graph = other.graph_exec = None
                    other.warm = False
            self._current = key
        return buf

    def _enqueue(self, buf: _Buffers) -> None:
        cuda, rt, stream = self._cuda, self._cuda.rt, self._stream
        if buf.graph_exec is not None:
            cuda(rt.cudaGraphLaunch(buf.graph_exec, stream), "cudaGraphLaunch")
            return
        if not self._context.execute_async_v3(self._stream_handle):
            raise EngineError(f"{self.path}: execute_async_v3 failed (see the TensorRT log above)",
                              "check the input shapes against the plan's optimization profile")
        if self.cuda_graphs and buf.warm:  # TensorRT needs one enqueue after a shape change before capture
            try:
                mode = rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
                cuda(rt.cudaStreamBeginCapture(stream, mode), "cudaStreamBeginCapture")
                self._context.execute_async_v3(self._stream_handle)
                buf.graph = cuda(rt.cudaStreamEndCapture(stream), "cudaStreamEndCapture")
                buf.graph_exec = cuda(rt.cudaGraphInstantiate(buf.graph, 0), "cudaGraphInstantiate")
            except EngineError as exc:
                warnings.warn(f"CUDA graph capture failed, running without graphs: {exc}")
                self.cuda_graphs = False
        buf.warm = True

    def _infer(self, arrays: dict[str, Any], symbols: dict[str, int]) -> dict[str, np.ndarray]:
        cuda, rt, stream = self._cuda, self._cuda.rt, self._stream
        buf = self._prepare(arrays)
        device_inputs = {n: a for n, a in arrays.items() if not isinstance(a, np.ndarray)}
        for name, arr in arrays.items():
            if isinstance(arr, np.ndarray) and buf.nbytes[name]:
                cuda(rt.cudaMemcpyAsync(buf.device[name], arr.ctypes.data, buf.nbytes[name],
                                        rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync H2D")
        if device_inputs:  # zero-copy: bind the caller's device memory for this call only, no graph
            for name, arr in device_inputs.items():
                self._context.set_tensor_address(name, device_pointer(arr))
            try:
                if not self._context.execute_async_v3(self._stream_handle):
                    raise EngineError(f"{self.path}: execute_async_v3 failed", "check the inputs")
            finally:
                for name in device_inputs:
                    self._context.set_tensor_address(name, buf.device[name])
        else:
            self._enqueue(buf)
        for name, host in buf.host_out.items():
            if buf.nbytes[name]:
                cuda(rt.cudaMemcpyAsync(host.ctypes.data, buf.device[name], buf.nbytes[name],
                                        rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync D2H")
        cuda(rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")
        return {name: host.copy() for name, host in buf.host_out.items()}
