"""Backends behind :class:`runtime.Engine`, one runner per graph, all with the same lifecycle
(:class:`runtime.backends.base.Runner`), listed once in :data:`REGISTRY`. Backend modules import their heavy
packages only when a runner is activated, so importing this package costs nothing."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from runtime.backends import tensorrt as tensorrt_runner
from runtime.backends.base import Runner
from runtime.backends.onnxruntime import OnnxRuntimeRunner
from runtime.backends.plan import read_sidecar
from runtime.backends.tensorrt import TensorRTRunner


def tensorrt_available(plans=()) -> bool:
    """True when the runtime the plans were built for (their sidecars' ``target``: TensorRT, or TensorRT-RTX) and
    cuda-python both import (a cheap spec check first, then the import). No plans: TensorRT."""
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
        tensorrt_runner.import_cudart()
    except Exception:
        return False
    return True


def _always(files: Iterable[Path] = ()) -> bool:
    return True


@dataclass(frozen=True)
class Backend:
    """One entry of :data:`REGISTRY`: everything the Engine and the CLIs need to know about a backend."""

    name: str
    runner: type[Runner]
    #: file kinds it runs; the first is the suffix of its files in an export folder (model<suffix>, ...)
    suffixes: tuple[str, ...]
    #: the Engine's keyword arguments this runner takes (the others are dropped)
    options: tuple[str, ...]
    #: ``available(files)``: whether it can run those files on this host (cheap; used by backend "auto")
    available: Callable[[Iterable[Path]], bool] = _always


#: every backend of runtime.Engine, by name; a new backend is its runner module plus one entry here
#: (the Engine's suffix mapping and backend "auto", make_runner and the CLIs' --backend choices read it)
REGISTRY: dict[str, Backend] = {b.name: b for b in (
    Backend("onnxruntime", OnnxRuntimeRunner, (".onnx",),
            ("threads", "providers", "spinning", "ort_library")),
    Backend("tensorrt", TensorRTRunner, (".plan", ".engine"),
            ("plugin_library", "device", "cuda_graphs", "check_plugin_sha256"), tensorrt_available),
)}
BACKENDS = tuple(REGISTRY)
#: the CLIs' ``--backend`` choices
CHOICES = ("auto", *BACKENDS)


def backend_of(path: str | Path) -> str | None:
    """The backend that runs a file of this suffix (None: no backend does)."""
    return next((b.name for b in REGISTRY.values() if Path(path).suffix in b.suffixes), None)


def make_runner(path: str | Path, backend: str, **options) -> Runner:
    """A runner for one graph file; ``options`` are the backend's keyword arguments (unknown ones dropped)."""
    entry = REGISTRY.get(backend)
    if entry is None:
        raise ValueError(backend)
    return entry.runner(path, **{k: v for k, v in options.items() if k in entry.options})


__all__ = ["BACKENDS", "CHOICES", "REGISTRY", "Backend", "Runner", "backend_of", "make_runner", "tensorrt_available"]
