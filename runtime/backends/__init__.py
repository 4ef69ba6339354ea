"""Backends behind :class:`runtime.Engine`, one runner per graph, all with the same lifecycle
(:class:`runtime.backends.base.Runner`). Backend modules import their heavy packages only when a runner
is activated, so importing this package costs nothing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from runtime.backends.base import Runner

BACKENDS = ("onnxruntime", "tensorrt")


def tensorrt_available(plans=()) -> bool:
    """True when the runtime the plans were built for (their sidecars' ``target``: TensorRT, or TensorRT-RTX) and
    cuda-python both import (a cheap spec check first, then the import). No plans: TensorRT."""
    from runtime.backends.plan import read_sidecar

    module = "tensorrt"
    for plan in plans:
        try:
            side = read_sidecar(plan)
        except Exception:  # an unreadable sidecar is reported by the runner itself
            side = None
        if side is not None and side.target == "tensorrt-rtx":
            module = "tensorrt_rtx"
    if importlib.util.find_spec(module) is None:
        return False
    try:
        importlib.import_module(module)  # (wheels without their libraries fail here)
        from runtime.backends.tensorrt import import_cudart
        import_cudart()
    except Exception:
        return False
    return True


def make_runner(path: str | Path, backend: str, **options) -> Runner:
    """A runner for one graph file; ``options`` are the backend's keyword arguments (unknown ones dropped)."""
    if backend == "onnxruntime":
        from runtime.backends.onnxruntime import OnnxRuntimeRunner

        keys = ("threads", "providers", "spinning", "ort_library")
        return OnnxRuntimeRunner(path, **{k: v for k, v in options.items() if k in keys})
    if backend == "tensorrt":
        from runtime.backends.tensorrt import TensorRTRunner

        keys = ("plugin_library", "device", "cuda_graphs", "check_plugin_sha256")
        return TensorRTRunner(path, **{k: v for k, v in options.items() if k in keys})
    raise ValueError(backend)


__all__ = ["BACKENDS", "Runner", "make_runner", "tensorrt_available"]
