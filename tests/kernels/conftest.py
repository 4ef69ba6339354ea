"""Fixtures of the kernels tests: the CPU reference library, built once per session with CMake."""

from __future__ import annotations

import numpy as np
import pytest
import torch

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
    automatic groups. Outputs are written in place when `out` is a float32 CPU tensor (poison checks).
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

    def msda(self, value, spatial_shapes, sampling_locations, attention_weights, *, out=None, vec=0, groups=0):
        v, g = self._layout(value.shape[-1], vec, groups)
        res = self.ref.msda(self._np(value), spatial_shapes, self._np(sampling_locations),
                            self._np(attention_weights), vec=v, groups=g, out=self._out_view(out))
        return self._result(res, value, out)

    def fgsa_attention(self, value, spatial_shapes, ref_points, links, offsets, logits, *, out=None, vec=0,
                       groups=0):
        v, g = self._layout(value.shape[-1], vec, groups)
        res = self.ref.fgsa_attention(self._np(value), spatial_shapes, self._np(ref_points), links.numpy(),
                                      self._np(offsets), self._np(logits), vec=v, groups=g,
                                      out=self._out_view(out))
        return self._result(res, value, out)


@pytest.fixture(scope="session")
def cpu_ops(cpu_reference: CpuReference) -> CpuOps:
    return CpuOps(cpu_reference)
