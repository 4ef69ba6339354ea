"""A TensorRT plan's sidecar (``<plan>.json``, written by ``python -m export.trt``; its schema is
:mod:`fgsa.plan_sidecar`, whose names are re-exported here) and the checks that turn
"deserialize_cuda_engine returned None" into an error saying what to do.

Sidecar keys read: ``trt_version``, ``gpu`` (a name, or a dict with ``name`` and ``compute_capability``),
``precision``, ``io``, ``plugin_library`` (path the plan was built with, or null when no plugin op is
used; shown in messages, never loaded), ``plugin_sha256`` (confirms the library the user chose); optional
``version_compatible`` / ``hardware_compatible`` (builder flags that relax the version / GPU checks),
``metadata`` (the ONNX export metadata), ``target`` ("tensorrt", the default for sidecars without it, or
"tensorrt-rtx"), ``compute_capabilities`` (a TensorRT-RTX plan's target GPUs; null: TensorRT-RTX's default
set) and ``plan_sha256`` (the plan the sidecar was written with: a plan
and a sidecar that do not belong together are refused). No TensorRT import here.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from fgsa import plan_targets
from fgsa.plan_sidecar import (PLUGIN_ENV, PLUGIN_NAME, GpuInfo, PlanSidecar, builds_under, file_sha256,
                               gpu_fields, read_dict, sidecar_path)
from runtime.errors import EngineError

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_FIX = ("build it with `make kernels` (CMake with TensorRT headers and libnvinfer; see kernels/README.md), "
             f"then pass plugin_library=PATH (CLI: --plugin-library) or set {PLUGIN_ENV}")


def read_sidecar(plan: str | Path) -> PlanSidecar | None:
    """The parsed ``<plan>.json``, or None when the plan has no sidecar."""
    plan = Path(plan)
    path = sidecar_path(plan)
    if not path.is_file():
        return None
    try:
        raw = read_dict(plan)
    except (OSError, json.JSONDecodeError) as exc:
        raise EngineError(f"{path}: unreadable plan sidecar ({exc})",
                          "rebuild the plan with python -m export.trt, which writes the sidecar") from None
    return PlanSidecar.from_dict(path, raw)


def check_plan_bytes(side: PlanSidecar | None, plan: Path, data: bytes) -> None:
    """EngineError when the sidecar records another plan than ``data`` (an interrupted rebuild, a copied file)."""
    if side is None or not side.plan_sha256:
        return
    digest = hashlib.sha256(data).hexdigest()
    if digest != side.plan_sha256:
        raise EngineError(f"{plan} (sha256 {digest[:12]}…) is not the plan its sidecar {side.path.name} describes "
                          f"(sha256 {side.plan_sha256[:12]}…)",
                          "rebuild the plan with python -m export.trt, which writes the plan and its sidecar together")


def check_compatibility(side: PlanSidecar, plan: Path, trt_version: str, gpu: GpuInfo | None) -> None:
    """EngineError when the plan was built by another TensorRT (-RTX) version or for another GPU."""
    target = plan_targets.TARGETS.get(side.target, plan_targets.TENSORRT)
    title = target.title
    rebuild = (f"rebuild the plan from its ONNX graph (python -m export.trt --onnx MODEL.onnx --target {target.name} "
               f"--out {plan}); plans are tied to the {title} version they were built with"
               + ("" if target is plan_targets.TENSORRT_RTX else " and the GPU"))
    if side.trt_version and not side.version_compatible and _version_key(side.trt_version) != _version_key(trt_version):
        raise EngineError(f"{plan} was built with {title} {side.trt_version}, this host has {title} {trt_version}",
                          f"{rebuild}, or install {title} {side.trt_version}")
    if gpu is None or side.hardware_compatible:
        return
    if target is plan_targets.TENSORRT_RTX:
        if not plan_targets.cc_supported(side.compute_capabilities, gpu.compute_capability):
            raise EngineError(f"{plan} was built by TensorRT-RTX for "
                              f"{plan_targets.runs_on(target, side.compute_capabilities, None)}; this GPU is "
                              f"{gpu.name} (compute capability {gpu.compute_capability})",
                              f"rebuild it for this GPU: python -m export.trt --onnx MODEL.onnx --target tensorrt-rtx "
                              f"--compute-capability {gpu.compute_capability} --out {plan}")
        return
    name, cc = gpu_fields(side.gpu)
    if cc is not None and cc.replace("sm_", "").replace("sm", "") not in (gpu.compute_capability,
                                                                          gpu.compute_capability.replace(".", "")):
        raise EngineError(f"{plan} was built for {name or 'a GPU'} (compute capability {cc}), this GPU is "
                          f"{gpu.name} (compute capability {gpu.compute_capability})", rebuild)
    if cc is None and name and name.strip() != gpu.name.strip():
        raise EngineError(f"{plan} was built for GPU '{name}', this GPU is '{gpu.name}'", rebuild)


def _version_key(v: str) -> tuple:
    """Plans are compatible across identical major.minor.patch (TensorRT's rule for non-lean engines)."""
    parts = str(v).split(".")
    return tuple(parts[:3])


def default_plugin_candidates() -> list[Path]:
    """Plugin builds in this project's own build tree (``build/`` next to its CMakeLists.txt); none for an
    installed package, whose parent folder is not ours."""
    if not (REPO_ROOT / "CMakeLists.txt").is_file():
        return []
    return builds_under(REPO_ROOT / "build")


def resolve_plugin_library(side: PlanSidecar | None, plan: Path, explicit: str | Path | None = None,
                           check_sha256: bool = True) -> Path | None:
    """The plugin library to load for ``plan``, chosen by the user only: ``explicit`` (CLI: --plugin-library) >
    ``$FGSA_PLUGIN_LIBRARY`` > a build in this project's ``build/``. None when the plan uses no plugin.

    Loading a library runs its code, and the sidecar travels with the plan, so its ``plugin_library`` path is
    never loaded (nor anything in the working directory): it only appears in the error message. Its
    ``plugin_sha256`` confirms the chosen library. EngineError when the plan needs a library and none was
    chosen, or the chosen one's SHA-256 differs from the sidecar's.
    """
    needs = side.needs_plugin if side is not None else False
    chosen: Path | None = None
    for candidate, what in ((explicit, "plugin_library"), (os.environ.get(PLUGIN_ENV), PLUGIN_ENV)):
        if candidate:
            p = Path(candidate)
            if not p.is_file():
                raise EngineError(f"plugin library {p} ({what}) not found", BUILD_FIX)
            chosen = p.resolve()  # dlopen searches the system's library paths for a name without a slash
            break
    if chosen is None and needs:
        found = default_plugin_candidates()
        chosen = found[0] if found else None
    if chosen is None:
        if needs:
            recorded = f"; it was built with {side.plugin_library}" if side and side.plugin_library else ""
            raise EngineError(
                f"{plan} uses the fgsa TensorRT plugins and no {PLUGIN_NAME} was chosen (looked at: plugin_library, "
                f"${PLUGIN_ENV}, {REPO_ROOT / 'build' / '**' / PLUGIN_NAME}{recorded}). A plan's sidecar never "
                "chooses the library: loading one runs its code",
                BUILD_FIX)
        return None
    if check_sha256 and side is not None and side.plugin_sha256:
        digest = file_sha256(chosen)
        if digest != side.plugin_sha256:
            raise EngineError(
                f"plugin library {chosen} (sha256 {digest[:12]}…) is not the one {plan} was built with "
                f"(sha256 {side.plugin_sha256[:12]}…)",
                "rebuild the plan with this library (python -m export.trt), point plugin_library / --plugin-library "
                "at the original build, or pass TensorRTRunner(check_plugin_sha256=False) if you know the two are "
                "compatible")
    return chosen


# (id of the TensorRT module, resolved library path) -> (the module, kept so that its id stays its own; handle)
_LOADED_PLUGINS: dict[tuple[int, str], tuple[object, object]] = {}
_LOADED_PLUGINS_LOCK = threading.Lock()


def load_plugin_library(trt, library: Path):
    """Load ``library`` into TensorRT's plugin registry, once per TensorRT module and path in this process:
    the registry keeps the library and its creators for the life of the process, so loading it again at every
    activation only asks TensorRT to register the same creators again. ``load_library`` returns None on
    failure (its reason goes to TensorRT's logger) rather than raising, so both are turned into one EngineError
    here; a failed load is not remembered, so a fixed library loads on the next try."""
    key = (id(trt), str(Path(library).resolve()))
    with _LOADED_PLUGINS_LOCK:  # two runners activated at once on two threads load it once, too
        if key not in _LOADED_PLUGINS:
            _LOADED_PLUGINS[key] = (trt, _load_plugin_library(trt, library))
        return _LOADED_PLUGINS[key][1]


def _load_plugin_library(trt, library: Path):
    fix = (f"check that it loads (ldd {library}: every dependency must resolve), or rebuild it against this "
           "TensorRT version (make kernels) and pass it with plugin_library= / --plugin-library / FGSA_PLUGIN_LIBRARY")
    try:
        handle = trt.get_plugin_registry().load_library(str(library))
    except Exception as exc:
        raise EngineError(f"TensorRT could not load the plugin library {library} ({exc})", fix) from None
    if handle is None:
        raise EngineError(f"TensorRT could not load the plugin library {library} (load_library returned None; "
                          "TensorRT's log above says why)", fix)
    return handle
