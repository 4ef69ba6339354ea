"""A stand-in for TensorRT and cuda-python, enough to drive ``TensorRTRunner`` on a machine without either.

"Device" memory is host memory (cudaMalloc hands out addresses of NumPy buffers), copies are memmoves, a
captured CUDA graph is the list of enqueues recorded between BeginCapture and EndCapture. The fake plan
computes ``y = 2 * x[:, :2] + x.sum(1)`` for an input ``x`` [batch, 4] float32 (profile batch 1..4). As
TensorRT does, the context refuses (returns False for) an input shape outside the profile and an I/O address
that is not 256-byte aligned; cudaMalloc hands out 256-byte aligned memory, as CUDA does.

Streams other than the runner's hold ``pending`` work (callables) that lands only when an event recorded on
that stream is waited for, so a runner that reads a producer's array without waiting reads stale memory.
``fail_capture`` ("enqueue": execute_async_v3 returns False while capturing; "end": EndCapture reports an
invalidated capture; "invalidated": the enqueue returns True but leaves the capture invalidated, as a
forbidden call inside TensorRT does, so cudaStreamIsCapturing reports it) drives the capture-failure path.
``make_modules(target="tensorrt-rtx")`` returns the ``tensorrt_rtx`` variant (runtime config and runtime
cache).
"""

from __future__ import annotations

import ctypes
import enum
import importlib.machinery
import types

import numpy as np

PLAN_BYTES = b"FAKEPLAN"


# -- cuda-python ------------------------------------------------------------------------------------------
class cudaError_t(enum.IntEnum):  # noqa: N801 (cuda-python's names)
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorInsufficientDriver = 35
    cudaErrorStreamCaptureInvalidated = 901


class cudaMemcpyKind(enum.IntEnum):  # noqa: N801
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2
    cudaMemcpyDeviceToDevice = 3


class cudaStreamCaptureStatus(enum.IntEnum):  # noqa: N801
    cudaStreamCaptureStatusNone = 0
    cudaStreamCaptureStatusActive = 1
    cudaStreamCaptureStatusInvalidated = 2


class cudaStreamCaptureMode(enum.IntEnum):  # noqa: N801
    cudaStreamCaptureModeThreadLocal = 1


class Props:
    name = b"Fake GPU 9000"
    major, minor = 9, 0


class FakeCudart(types.ModuleType):
    cudaError_t = cudaError_t
    cudaMemcpyKind = cudaMemcpyKind
    cudaStreamCaptureMode = cudaStreamCaptureMode
    cudaStreamCaptureStatus = cudaStreamCaptureStatus
    cudaStreamNonBlocking = 1
    cudaEventDisableTiming = 2

    def __init__(self):
        super().__init__("cudart")
        self.memory: dict[int, np.ndarray] = {}
        self.capturing: list | None = None
        self.capture_invalidated = False
        self.calls: list[str] = []
        self.pending: dict[int, list] = {}  # producer stream -> work not yet done
        self.fail_capture: str | None = None
        self.set_device_threads: list[int] = []

    def cudaGetErrorString(self, err):
        if err == cudaError_t.cudaErrorInsufficientDriver:  # the real runtime's text
            return cudaError_t.cudaSuccess, b"CUDA driver version is insufficient for CUDA runtime version"
        return cudaError_t.cudaSuccess, str(cudaError_t(err).name).encode()

    def cudaSetDevice(self, device):
        import threading

        self.set_device_threads.append(threading.get_ident())
        return (cudaError_t.cudaSuccess,)

    def cudaGetLastError(self):
        self.calls.append("getLastError")
        return (cudaError_t.cudaSuccess,)

    def cudaEventCreateWithFlags(self, flags):
        return cudaError_t.cudaSuccess, types.SimpleNamespace(work=[])

    def cudaEventDestroy(self, event):
        return (cudaError_t.cudaSuccess,)

    def cudaEventRecord(self, event, stream):
        self.calls.append(f"record{int(stream)}")
        event.work = self.pending.pop(int(stream), [])
        return (cudaError_t.cudaSuccess,)

    def cudaStreamWaitEvent(self, stream, event, flags):
        self.calls.append(f"wait{int(stream)}")
        for fn in event.work:
            fn()
        event.work = []
        return (cudaError_t.cudaSuccess,)

    def cudaGetDeviceProperties(self, device):
        return cudaError_t.cudaSuccess, Props()

    def cudaStreamCreateWithFlags(self, flags):
        return cudaError_t.cudaSuccess, 77

    def cudaStreamDestroy(self, stream):
        return (cudaError_t.cudaSuccess,)

    def cudaMalloc(self, nbytes):
        buf = aligned_zeros(nbytes)
        self.memory[buf.ctypes.data] = buf
        return cudaError_t.cudaSuccess, buf.ctypes.data

    def cudaFree(self, ptr):
        self.memory.pop(ptr, None)
        return (cudaError_t.cudaSuccess,)

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream):
        self.calls.append(f"memcpy{int(kind)}")
        ctypes.memmove(dst, src, nbytes)
        return (cudaError_t.cudaSuccess,)

    def cudaStreamSynchronize(self, stream):
        return (cudaError_t.cudaSuccess,)

    def cudaStreamBeginCapture(self, stream, mode):
        self.capturing = []
        self.capture_invalidated = False
        return (cudaError_t.cudaSuccess,)

    def cudaStreamIsCapturing(self, stream):
        self.calls.append("isCapturing")
        if self.capturing is None:
            return cudaError_t.cudaSuccess, cudaStreamCaptureStatus.cudaStreamCaptureStatusNone
        if self.capture_invalidated:
            return cudaError_t.cudaSuccess, cudaStreamCaptureStatus.cudaStreamCaptureStatusInvalidated
        return cudaError_t.cudaSuccess, cudaStreamCaptureStatus.cudaStreamCaptureStatusActive

    def cudaStreamEndCapture(self, stream):
        graph, self.capturing = self.capturing, None
        if self.fail_capture == "end" or self.capture_invalidated:
            return cudaError_t.cudaErrorStreamCaptureInvalidated, None
        return cudaError_t.cudaSuccess, graph

    def cudaGraphInstantiate(self, graph, flags):
        return cudaError_t.cudaSuccess, list(graph)

    def cudaGraphLaunch(self, graph_exec, stream):
        self.calls.append("graph")
        for fn in graph_exec:
            fn()
        return (cudaError_t.cudaSuccess,)

    def cudaGraphExecDestroy(self, g):
        return (cudaError_t.cudaSuccess,)

    def cudaGraphDestroy(self, g):
        return (cudaError_t.cudaSuccess,)


def aligned_zeros(nbytes: int, alignment: int = 256, offset: int = 0) -> np.ndarray:
    """nbytes zero bytes starting `offset` bytes past an `alignment`-byte boundary (fake device memory)."""
    raw = np.zeros(nbytes + alignment + offset, np.uint8)
    start = (-raw.ctypes.data) % alignment + offset
    return raw[start:start + nbytes]


def device_copy(values: np.ndarray, offset: int = 0) -> np.ndarray:
    """A copy of `values` in memory `offset` bytes past a 256-byte boundary (0: as cudaMalloc returns)."""
    out = aligned_zeros(values.nbytes, offset=offset).view(values.dtype).reshape(values.shape)
    out[...] = values
    return out


# -- tensorrt ---------------------------------------------------------------------------------------------
PROFILE = [(1, 4), (2, 4), (4, 4)]  # min, opt, max shape of x
IO_ALIGNMENT = 256


class TensorIOMode(enum.Enum):
    INPUT = 1
    OUTPUT = 2


class Context:
    def __init__(self, cudart: FakeCudart):
        self.cudart = cudart
        self.shapes: dict[str, tuple] = {}
        self.addresses: dict[str, int] = {}

    def set_input_shape(self, name, shape):
        lo, _, hi = PROFILE
        if len(shape) != 2 or not all(a <= d <= b for a, d, b in zip(lo, shape, hi)):
            self.shapes[name] = tuple(-1 for _ in shape)  # TensorRT leaves the dimensions unknown
            return False
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        b = self.shapes["x"][0]
        return (b, 4) if name == "x" else (b, 2)

    def set_tensor_address(self, name, ptr):
        self.cudart.calls.append(f"address-{name}")
        if int(ptr) % IO_ALIGNMENT:
            return False  # refused: the context keeps the address it had
        self.addresses[name] = int(ptr)
        return True

    def execute_async_v3(self, stream):
        assert isinstance(stream, int)
        shape = self.shapes["x"]
        xa, ya = self.addresses["x"], self.addresses["y"]

        def run():
            n = int(np.prod(shape))
            x = np.ctypeslib.as_array((ctypes.c_float * n).from_address(xa)).reshape(shape)
            y = np.ctypeslib.as_array((ctypes.c_float * (shape[0] * 2)).from_address(ya)).reshape(shape[0], 2)
            y[:] = 2 * x[:, :2] + x.sum(1, keepdims=True)

        self.cudart.calls.append("enqueue" + ("-captured" if self.cudart.capturing is not None else ""))
        if self.cudart.capturing is not None and self.cudart.fail_capture == "enqueue":
            return False
        if self.cudart.capturing is not None and self.cudart.fail_capture == "invalidated":
            self.cudart.capture_invalidated = True
            return True
        if self.cudart.capturing is not None:
            self.cudart.capturing.append(run)
        else:
            run()
        return True


class Engine:
    num_io_tensors = 2
    output_dtype = "float32"

    def __init__(self, cudart):
        self.cudart = cudart
        self.contexts = []

    def get_tensor_name(self, i):
        return ["x", "y"][i]

    def get_tensor_shape(self, name):
        return (-1, 4) if name == "x" else (-1, 2)

    def get_tensor_dtype(self, name):
        return "float32" if name == "x" else self.output_dtype

    def get_tensor_mode(self, name):
        return TensorIOMode.INPUT if name == "x" else TensorIOMode.OUTPUT

    def get_tensor_profile_shape(self, name, profile):
        return list(PROFILE)

    def create_execution_context(self, runtime_config=None):
        self.contexts.append(runtime_config)
        return Context(self.cudart)

    def create_runtime_config(self):
        return RuntimeConfig()


class RuntimeCache:
    """TensorRT-RTX's runtime cache: accepts only blobs it wrote ("compiled-for-fake-gpu")."""

    def __init__(self):
        self.blob = b""

    def deserialize(self, blob):
        if bytes(blob) != b"compiled-for-fake-gpu":
            return False
        self.blob = bytes(blob)
        return True

    def serialize(self):
        return b"compiled-for-fake-gpu"


class RuntimeConfig:
    cuda_graph_strategy = "DISABLED"

    def create_runtime_cache(self):
        return RuntimeCache()

    def set_runtime_cache(self, cache):
        self.cache = cache
        return True


def make_modules(version: str = "10.13.0.35", target: str = "tensorrt") -> tuple[types.ModuleType, FakeCudart]:
    cudart = FakeCudart()
    module = "tensorrt_rtx" if target == "tensorrt-rtx" else "tensorrt"
    trt = types.ModuleType(module)
    trt.__spec__ = importlib.machinery.ModuleSpec(module, None)
    trt.__version__ = version
    trt.TensorIOMode = TensorIOMode
    trt.loaded_libraries = []
    trt.plugin_loggers = []  # weak references to the loggers init_libnvinfer_plugins was given
    trt.engines = []
    if target == "tensorrt-rtx":
        trt.CudaGraphStrategy = types.SimpleNamespace(DISABLED="DISABLED", WHOLE_GRAPH_CAPTURE="WHOLE_GRAPH_CAPTURE")

    class Logger:
        WARNING = 2

        def __init__(self, level):
            self.level = level

    class Registry:
        def load_library(self, path):
            try:  # a real dlopen, running the library's constructors, as TensorRT's loadLibrary does
                handle = ctypes.CDLL(path)
            except OSError:
                return None  # TensorRT logs the reason and returns None; it does not raise
            trt.loaded_libraries.append(path)
            return handle

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            engine = Engine(cudart) if data == PLAN_BYTES else None
            trt.engines.append(engine)
            return engine

    def init_libnvinfer_plugins(logger, namespace):
        import weakref

        trt.plugin_loggers.append(weakref.ref(logger))
        return True

    trt.Logger, trt.Runtime = Logger, Runtime
    trt.init_libnvinfer_plugins = init_libnvinfer_plugins
    trt.get_plugin_registry = lambda: Registry()
    trt.nptype = lambda dtype: np.dtype(dtype).type
    return trt, cudart
