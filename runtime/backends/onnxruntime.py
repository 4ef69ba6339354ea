"""ONNX Runtime backend: one InferenceSession per graph, outputs preallocated per input shape (IOBinding).

Providers: CUDA first where onnxruntime-gpu offers it, else CPU. Session options: every graph optimization
(ORT_ENABLE_ALL), ``threads`` intra-op threads (0 = ORT's default, one per physical core), sequential
execution. Host inputs are bound in place (no copy); on a CUDA session, CUDA arrays are bound by pointer.

Plugin-form graphs (``--attention plugin`` / ``trt-builtin``) hold custom nodes that stock ONNX Runtime does
not know. They run natively through ``libfgsa_ort_ops.so`` (kernels/ort/, found by
:func:`kernels.ort_library.find_library`: argument > ``$FGSA_ORT_LIBRARY`` > build/), registered into every
session when present: no torch needed. Without it they fall back to the PyTorch reference op
(:mod:`export.ort_ops`, needs torch, onnx and onnxruntime-extensions; slow, for checking), with a warning
that says how to build the library.
"""

from __future__ import annotations

import json
import os
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from export.graph_ops import custom_ops
from kernels.ort_library import BUILD_HINT, LIBRARY_ENV, find_library, register
from runtime.backends.base import Runner
from runtime.errors import EngineError, InputError
from runtime.specs import ORT_TYPES, BatchRange, TensorSpec, array_shape, device_pointer, device_shape_dtype

METADATA_KEY = "fgsa.export"


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise EngineError("onnxruntime is not installed", "pip install onnxruntime (CPU) or onnxruntime-gpu") from None
    return onnxruntime


def default_providers(ort) -> list[str]:
    available = ort.get_available_providers()
    return (["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []) + ["CPUExecutionProvider"]


def session_options(ort, threads: int | None, spinning: bool = True):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = int(threads or 0)
    options.inter_op_num_threads = 1
    if not spinning:  # idle worker threads sleep instead of spinning: kinder to other work on a shared CPU
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def native_ops_library(ort, options, library: str | Path | bool | None = None) -> Path | None:
    """Registers libfgsa_ort_ops.so into ``options`` when it is found; its path, or None (``library=False``:
    never). An explicit path (argument or $FGSA_ORT_LIBRARY) that is missing or fails to load is an error; a
    library found under build/ that fails to load (an onnxruntime older than 1.21) only warns."""
    if library is False:
        return None
    explicit = bool(library or os.environ.get(LIBRARY_ENV))
    try:
        found = find_library(library or None)
    except InputError as exc:
        raise EngineError(str(exc), BUILD_HINT) from None
    if found is None:
        return None
    try:
        register(options, found)
    except Exception as exc:  # onnxruntime's own exception classes
        if explicit:
            raise EngineError(f"ONNX Runtime {ort.__version__} cannot load {found} ({_first_line(exc)})",
                              "install onnxruntime >= 1.21, or rebuild the library (make ort-ops)") from None
        warnings.warn(f"{found} not loaded ({_first_line(exc)}); plugin ops fall back to the PyTorch reference")
        return None
    return found


def reference_session(ort, path: Path, options, providers, load_error: Exception):
    """A session for a plugin-form graph, its custom nodes running :mod:`fgsa.ops.reference` (needs torch)."""
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is None:
        raise EngineError(f"{path}: ONNX Runtime cannot load this graph ({_first_line(load_error)})",
                          "if it is a plugin-form export, install onnx, torch and onnxruntime-extensions to run "
                          "it through the reference op, or re-export with --attention portable") from None
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError and friends: not an ONNX file at all
        raise EngineError(f"{path}: ONNX Runtime cannot load this graph ({_first_line(load_error)}); onnx cannot "
                          f"parse it either ({_first_line(exc)})",
                          "pass a complete .onnx file written by python -m export.onnx") from None

    custom, foreign = custom_ops(model)
    if foreign:  # the fallback registers a library of many ops: only a graph with ours alone may use it
        raise EngineError(f"{path}: ONNX Runtime cannot load this graph ({_first_line(load_error)}); it holds "
                          f"custom ops that are not fgsa's: {', '.join(foreign)}",
                          "pass a graph written by python -m export.onnx (--attention portable runs on ONNX "
                          "Runtime alone)") from None
    if not custom:
        raise EngineError(f"{path}: ONNX Runtime cannot load this graph ({_first_line(load_error)})",
                          "check that the file is a complete graph written by python -m export.onnx") from None
    try:
        from export import ort_ops
    except ImportError as exc:
        raise EngineError(
            f"{path}: the graph holds plugin ops {custom}, which ONNX Runtime runs only through the PyTorch "
            f"reference op, and that needs a package that is missing ({exc})",
            "install torch and onnxruntime-extensions (pip install '.[cpu,export]'), or re-export with "
            "--attention portable for torch-free ONNX Runtime, or run the TensorRT plan with "
            "libfgsa_trt_plugin.so") from None
    try:
        compatible = ort_ops.ort_compatible(model)
    except InputError as exc:
        raise EngineError(f"{path}: {exc}", "re-export the graph with python -m export.onnx") from None
    options.register_custom_ops_library(ort_ops.register_reference_ops())
    # the reference ops run on the calling thread only in sequential execution (export/ort_ops.py)
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(compatible.SerializeToString(), options, providers=providers)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


class _Binding:
    """An IOBinding with output arrays preallocated for one set of input shapes."""

    def __init__(self, ort, session, outputs: list[TensorSpec], symbols: dict[str, int]):
        self.io = session.io_binding()
        self.arrays: dict[str, np.ndarray | None] = {}
        for spec in outputs:
            shape = spec.resolve(symbols)
            if shape is None:  # an axis we cannot infer from the inputs: ORT allocates it each call
                self.io.bind_output(spec.name, "cpu")
                self.arrays[spec.name] = None
            else:
                arr = np.empty(shape, dtype=spec.dtype)
                self.io.bind_output(spec.name, "cpu", 0, arr.dtype, list(arr.shape), arr.ctypes.data)
                self.arrays[spec.name] = arr


class OnnxRuntimeRunner(Runner):
    """One ONNX graph in ONNX Runtime.

    Args:
        path: the .onnx file.
        threads: intra-op threads (None/0 = ONNX Runtime's default).
        providers: execution providers (default: CUDA if available, then CPU).
        spinning: let idle intra-op threads spin (fastest; set False on a CPU shared with other work).
        max_shapes: how many input-shape sets keep preallocated outputs (least recently used dropped).
        ort_library: libfgsa_ort_ops.so for plugin-form graphs (default: $FGSA_ORT_LIBRARY, then build/;
            False: never load it, plugin ops run through the PyTorch reference).
    """

    backend = "onnxruntime"

    def __init__(self, path: str | Path, threads: int | None = None, providers: list[str] | None = None,
                 spinning: bool = True, max_shapes: int = 8, ort_library: str | Path | bool | None = None):
        path = Path(path)
        super().__init__(path.stem)
        self.path, self.threads, self.providers, self.spinning = path, threads, providers, spinning
        self.max_shapes = max_shapes
        self.uses_reference_ops = False
        self.ort_library = ort_library
        self.native_ops: Path | None = None  # the libfgsa_ort_ops.so registered into the session, if any
        self._session = None
        self._bindings: OrderedDict[tuple, _Binding] = OrderedDict()

    def _activate(self) -> None:
        ort = import_onnxruntime()
        if not self.path.is_file():
            raise EngineError(f"{self.path}: ONNX file not found", "pass the path written by python -m export.onnx")
        providers = self.providers or default_providers(ort)
        options = session_options(ort, self.threads, self.spinning)
        self.native_ops = native_ops_library(ort, options, self.ort_library)
        try:
            session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/NotImplemented classes
            session = reference_session(ort, self.path, session_options(ort, self.threads, self.spinning),
                                        providers, exc)
            self.uses_reference_ops = True
            if self.native_ops is None and self.ort_library is not False:
                warnings.warn(f"{self.path.name}: plugin ops run through the PyTorch reference (slow, needs torch); "
                              f"{BUILD_HINT}", stacklevel=2)
        self._ort, self._session = ort, session
        self.active_providers = session.get_providers()
        self.accepts_device_arrays = "CUDAExecutionProvider" in self.active_providers
        self.inputs = [TensorSpec.make(i.name, i.shape, ORT_TYPES[i.type]) for i in session.get_inputs()]
        self.outputs = [TensorSpec.make(o.name, o.shape, ORT_TYPES[o.type]) for o in session.get_outputs()]
        raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        self.metadata = json.loads(raw) if raw else {}
        if self.metadata.get("attention") == "portable":
            self.native_ops = None  # registered, but a standard-op graph runs nothing of it
        batch = self.metadata.get("batch") or {}
        if batch.get("dynamic"):
            self.batch = BatchRange(int(batch.get("min", 1)), int(batch["max"]) if batch.get("max") else None)
        elif "size" in batch:
            self.batch = BatchRange(int(batch["size"]), int(batch["size"]))

    def _deactivate(self) -> None:
        self._bindings.clear()
        self._session = None

    def _binding(self, arrays: dict[str, Any], symbols: dict[str, int]) -> _Binding:
        key = tuple((n, array_shape(a)) for n, a in arrays.items())
        binding = self._bindings.get(key)
        if binding is None:
            binding = _Binding(self._ort, self._session, self.outputs, symbols)
            self._bindings[key] = binding
            while len(self._bindings) > self.max_shapes:
                self._bindings.popitem(last=False)
        else:
            self._bindings.move_to_end(key)
        return binding

    def _run(self, binding: _Binding) -> None:
        if not self.uses_reference_ops:
            try:
                self._session.run_with_iobinding(binding.io)
            except Exception as exc:  # onnxruntime's own error types, e.g. a native plugin op refusing an input
                raise EngineError(f"{self.path}: ONNX Runtime could not run the graph ({_first_line(exc)})",
                                  "check the inputs against the export (python -m export.onnx writes "
                                  "export.json), or re-export the graph") from None
            return
        from export import ort_ops  # imported when the session was made

        ort_ops.clear_op_error()
        try:
            try:
                self._session.run_with_iobinding(binding.io)
            except Exception:
                ort_ops.raise_op_error()  # the op's own message, when its NaN output broke a later node
                raise
            ort_ops.raise_op_error()
        except ort_ops.ReferenceOpError as exc:
            raise EngineError(f"{self.path}: a plugin node failed in its reference op ({exc})",
                              "its attributes do not fit its inputs: re-export the graph with python -m "
                              "export.onnx, or check the input shapes against the export") from None

    def _infer(self, arrays: dict[str, Any], symbols: dict[str, int]) -> dict[str, np.ndarray]:
        binding = self._binding(arrays, symbols)
        for name, arr in arrays.items():
            if isinstance(arr, np.ndarray):  # an OrtValue over the array's own memory: no copy
                binding.io.bind_ortvalue_input(name, self._ort.OrtValue.ortvalue_from_numpy(arr))
            else:
                shape, dtype = device_shape_dtype(arr)
                binding.io.bind_input(name, "cuda", 0, dtype, list(shape), device_pointer(arr))
        try:
            self._run(binding)
        finally:
            binding.io.clear_binding_inputs()  # do not keep the caller's arrays alive until the next call
        allocated = None
        out = {}
        for i, (name, arr) in enumerate(binding.arrays.items()):
            if arr is None:
                allocated = allocated or binding.io.copy_outputs_to_cpu()
                out[name] = allocated[i]
            else:
                out[name] = arr.copy()  # the preallocated buffer is reused by the next call
        return out
