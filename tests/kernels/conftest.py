"""Fixtures of the kernels tests: the CPU reference library, built once per session with CMake."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from kernels import build as native_build
from kernels.build import BuildError, build_cpu_reference, missing_build_tools
from kernels.cpu_reference import CpuReference


@pytest.fixture(scope="session")
def cpu_reference() -> CpuReference:
    missing = missing_build_tools(cuda=False)
    if missing:
        pytest.skip(f"cannot build the CPU reference of the kernels: {', '.join(missing)} not found on PATH")
    try:
        return CpuReference(build_cpu_reference())
    except BuildError as e:  # the tools exist, so a failed build is a real failure
        pytest.fail(str(e))


class CpuOps:
    """The gpu_check `Ops` protocol on top of the CPU reference (float32), so the check runs in CI.

    vec/groups 0 emulate the GPU launcher's choice for aligned FP32 data: 16-byte vectors (4 floats) and
    automatic groups; layout "team" or "item" ("auto" = team, the launchers' default). Outputs are written in place when `out` is a float32 CPU tensor (poison checks).
    """

    def __init__(self, ref: CpuReference):
        self.ref = ref

    @staticmethod
    def _layout(head_dim: int, vec: int, groups: int) -> tuple[int, int]:
        return (4 if head_dim % 4 == 0 else 1) if vec == 0 else vec, groups

    @staticmethod
    def _np(t: torch.Tensor) -> np.ndarray:
        return t.detach().to(torch.float32).contiguous().numpy()

    @staticmethod
    def _result(res: np.ndarray, like: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor:
        if out is None:
            return torch.from_numpy(res).to(like.dtype)
        if out.data_ptr() != res.ctypes.data:
            out.copy_(torch.from_numpy(res))
        return out

    @staticmethod
    def _out_view(out: torch.Tensor | None) -> np.ndarray | None:
        return out.numpy() if out is not None and out.dtype == torch.float32 and out.is_contiguous() else None

    def msda(self, value, spatial_shapes, sampling_locations, attention_weights, *, out=None, vec=0, groups=0,
             layout="team", index_bits=0):
        v, g = self._layout(value.shape[-1], vec, groups)
        res = self.ref.msda(self._np(value), spatial_shapes, self._np(sampling_locations),
                            self._np(attention_weights), vec=v, groups=g, out=self._out_view(out),
                            layout="team" if layout == "auto" else layout, index_bits=index_bits)
        return self._result(res, value, out)

    def fgsa_attention(self, value, spatial_shapes, ref_points, links, offsets, logits, *, out=None, vec=0,
                       groups=0, layout="team", index_bits=0):
        v, g = self._layout(value.shape[-1], vec, groups)
        res = self.ref.fgsa_attention(self._np(value), spatial_shapes, self._np(ref_points), links.numpy(),
                                      self._np(offsets), self._np(logits), vec=v, groups=g,
                                      out=self._out_view(out), layout="team" if layout == "auto" else layout,
                                      index_bits=index_bits)
        return self._result(res, value, out)


@pytest.fixture(scope="session")
def cpu_ops(cpu_reference: CpuReference) -> CpuOps:
    return CpuOps(cpu_reference)


TRT_INCLUDE = os.environ.get("TensorRT_INCLUDE_DIR", "")
requires_tensorrt_headers = pytest.mark.skipif(
    not (TRT_INCLUDE and (Path(TRT_INCLUDE) / "NvInfer.h").exists()),
    reason="set TensorRT_INCLUDE_DIR to a TensorRT include/ dir (NvInfer.h) to compile the plugin")


@pytest.fixture(scope="session")
def plugin_build() -> Path:
    """The plugin, its harness and its loader built against $TensorRT_INCLUDE_DIR (nvcc builds the kernels
    for one architecture, $FGSA_TEST_CUDA_ARCH, default 80); one build dir per header directory."""
    missing = missing_build_tools(cuda=True)
    if missing:
        pytest.skip(f"cannot compile the plugin here: {', '.join(missing)} not found")
    build_dir, arch = _reusable_build() or (_trt_build_dir(), os.environ.get("FGSA_TEST_CUDA_ARCH", "80"))
    native_build.configure(build_dir, cuda=True, cuda_architectures=arch, tensorrt_include_dir=TRT_INCLUDE)
    native_build.build(build_dir)
    return build_dir


def _trt_build_dir() -> Path:
    import hashlib

    tag = hashlib.sha256(str(Path(TRT_INCLUDE).resolve()).encode()).hexdigest()[:8]
    return native_build.REPO_ROOT / "build" / f"kernels-trt-{tag}"


def _reusable_build() -> tuple[Path, None] | None:
    """build/kernels when `python -m kernels.build --cuda` (or the Makefile) already configured it with these
    headers: then the plugin is already built and its architectures are left as they are."""
    cache = native_build.DEFAULT_BUILD_DIR / "CMakeCache.txt"
    if not cache.exists():
        return None
    wanted = Path(TRT_INCLUDE).resolve()
    for line in cache.read_text().splitlines():
        if line.startswith("TensorRT_INCLUDE_DIR:") and Path(line.split("=", 1)[1]).resolve() == wanted:
            return native_build.DEFAULT_BUILD_DIR, None
    return None
