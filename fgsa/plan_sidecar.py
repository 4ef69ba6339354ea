"""A TensorRT plan's sidecar, ``<plan>.json``: the one definition of what ``python -m export.trt`` writes and
``runtime.Engine`` reads. Torch-free, imports nothing heavy.

The sidecar holds what a host must check before it loads a plan: the target family and its version, the GPU
the plan was built on (TensorRT) or its target compute capabilities (TensorRT-RTX), precision, I/O, the plugin
library the plan was built with and its SHA-256, and the plan's own SHA-256. It is written atomically with
its plan (:func:`write`): a plan never stands without its sidecar.

The plugin library is chosen by whoever loads the plan (``--plugin`` for the build, ``plugin_library=`` for
the runtime), then ``$FGSA_PLUGIN_LIBRARY``, then a build in this project's ``build/`` (:func:`builds_under`).
The sidecar's ``plugin_library`` path is a record for messages, never a path to load.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "fgsa-trt-plan"
VERSION = 1
PLUGIN_ENV = "FGSA_PLUGIN_LIBRARY"
PLUGIN_NAME = "libfgsa_trt_plugin.so"  # kernels/plugin/fgsa_plugins.json "library"
REPO_ROOT = Path(__file__).resolve().parents[1]

# A plugin-form graph builds ahead of time in TensorRT-RTX, but NVIDIA's TensorRT-RTX porting guide says plugins
# are not supported at run time: such a plan is written, warned about and marked, never refused.
RTX_PLUGIN_NOT_SHOWN = ("a plugin-form plan for TensorRT-RTX has not been shown to run: NVIDIA's TensorRT-RTX "
                        "porting guide says plugins are not supported at run time (this plan builds ahead of time "
                        "all the same)")
RTX_PORTABLE_FIX = ("for TensorRT-RTX, export the portable form (python -m export.onnx --attention portable) and "
                    "build the plan from it")


def not_shown_to_run(target: str, plugin_ops: list[str]) -> str | None:
    """Why a plan of ``target`` with these plugin ops has not been shown to run, or None (no such doubt)."""
    return f"{RTX_PLUGIN_NOT_SHOWN}; {RTX_PORTABLE_FIX}" if target == "tensorrt-rtx" and plugin_ops else None


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: str  # "9.0"

    def to_dict(self) -> dict:
        """The sidecar's ``gpu`` entry."""
        return {"name": self.name, "compute_capability": self.compute_capability}


def gpu_fields(gpu: Any) -> tuple[str | None, str | None]:
    """(name, compute capability) of a sidecar's ``gpu``: a dict as :meth:`GpuInfo.to_dict` writes it (older
    sidecars say ``sm``), a bare name, or None."""
    if isinstance(gpu, dict):
        cc = gpu.get("compute_capability") or gpu.get("sm")
        return gpu.get("name"), (None if cc is None else str(cc))
    return (None if gpu is None else str(gpu)), None


def sidecar_path(plan: Path) -> Path:
    return plan.with_name(plan.name + ".json")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def builds_under(build: Path) -> list[Path]:
    """Every plugin library under the build folder ``build`` (none when it does not exist), sorted."""
    return sorted(build.glob(f"**/{PLUGIN_NAME}")) if build.is_dir() else []


def make(*, plan_name: str, plan_sha256: str | None, onnx: Path, target: str, trt_version: str, gpu: dict | None,
         compute_capabilities: list[str] | None, ahead_of_time: bool, runs_on: str, precision: str,
         network_flags: list[str], builder_flags: list[str], workspace_mib: int | None, timing_cache: Path | None,
         io: list[dict], plugin: Path | None, plugin_ops: list[str], metadata: dict, graph_warnings: list[str],
         build_warnings: list[str], build_seconds: float | None) -> dict:
    """The sidecar dict, every key in the order it is written (hashes of the graph and plugin library included)."""
    return {
        "format": FORMAT, "version": VERSION,
        "plan": plan_name, "plan_sha256": plan_sha256,
        "onnx": str(onnx), "onnx_sha256": file_sha256(onnx),
        "target": target, "trt_version": trt_version, "gpu": gpu,
        "compute_capabilities": compute_capabilities, "ahead_of_time": ahead_of_time, "runs_on": runs_on,
        "precision": precision, "strongly_typed": True,
        "network_flags": network_flags, "builder_flags": builder_flags,
        "workspace_mib": workspace_mib, "timing_cache": str(timing_cache) if timing_cache else None,
        "io": io, "plugin_library": str(plugin) if plugin else None,
        "plugin_sha256": file_sha256(plugin) if plugin else None,
        "plugin_ops": plugin_ops, "not_shown_to_run": not_shown_to_run(target, plugin_ops),
        "version_compatible": False, "hardware_compatible": False,
        "metadata": metadata, "graph_warnings": graph_warnings, "build_warnings": build_warnings,
        "build_seconds": None if build_seconds is None else round(build_seconds, 1),
    }


def write(out: Path, data: bytes, side: dict) -> None:
    """Write the pair so that a plan never exists without its sidecar: both go to temporary files first, then
    the sidecar replaces the old one and the plan replaces the old plan. A failure before the last step leaves
    the old pair (or, between the two renames, the old plan beside a sidecar whose ``plan_sha256`` names the
    new plan: runtime.Engine refuses that pair and says to rebuild)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    side_path = sidecar_path(out)
    tmp_plan, tmp_side = (p.with_name(f".{p.name}.{os.getpid()}.tmp") for p in (out, side_path))
    try:
        for path, payload in ((tmp_plan, data), (tmp_side, json.dumps(side, indent=1).encode())):
            with open(path, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp_side, side_path)
        os.replace(tmp_plan, out)
    finally:
        for p in (tmp_plan, tmp_side):
            p.unlink(missing_ok=True)


def read_dict(plan: Path) -> dict:
    """The raw sidecar of ``plan``; OSError / json.JSONDecodeError as they come (callers say what to do)."""
    return json.loads(sidecar_path(plan).read_text())


@dataclass
class PlanSidecar:
    """The keys a host checks before it loads a plan (see :func:`make` for everything written)."""

    path: Path
    trt_version: str | None = None
    gpu: Any = None
    precision: str | None = None
    io: list = field(default_factory=list)
    plugin_library: str | None = None
    plugin_sha256: str | None = None
    version_compatible: bool = False
    hardware_compatible: bool = False
    metadata: dict = field(default_factory=dict)
    target: str = "tensorrt"
    compute_capabilities: list | None = None
    plan_sha256: str | None = None
    not_shown_to_run: str | None = None  # why this plan has not been shown to run (not_shown_to_run())

    @property
    def needs_plugin(self) -> bool:
        return bool(self.plugin_library or self.plugin_sha256 or self.metadata.get("attention") == "plugin")

    @classmethod
    def from_dict(cls, path: Path, raw: dict) -> "PlanSidecar":
        """Missing keys take their defaults: ``target`` "tensorrt" for sidecars written before TensorRT-RTX."""
        return cls(path=path, trt_version=raw.get("trt_version"), gpu=raw.get("gpu"),
                   precision=raw.get("precision"), io=list(raw.get("io") or []),
                   plugin_library=raw.get("plugin_library"), plugin_sha256=raw.get("plugin_sha256"),
                   version_compatible=bool(raw.get("version_compatible")),
                   hardware_compatible=bool(raw.get("hardware_compatible")),
                   metadata=dict(raw.get("metadata") or {}), target=raw.get("target") or "tensorrt",
                   compute_capabilities=raw.get("compute_capabilities"), plan_sha256=raw.get("plan_sha256"),
                   not_shown_to_run=raw.get("not_shown_to_run"))
