"""Torch extension of the CUDA kernels, compiled at run time on a GPU machine (not in CI).

    ext = kernels.torch_ext.load()
    out = kernels.torch_ext.fgsa_attention(ext, value, shapes, ref_points, links, offsets, logits)

The extension is a thin adapter (fgsa_ext.cpp) over the same launchers as the TensorRT plugin; the wrappers
here allocate the output with ``torch.empty`` (the kernels write every element) unless ``out`` is given.
Importing this module does not import torch.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Sequence

from fgsa.errors import FgsaError

if TYPE_CHECKING:
    import torch

KERNELS_DIR = Path(__file__).resolve().parents[1]
SOURCES = (
    KERNELS_DIR / "torch_ext" / "fgsa_ext.cpp",
    KERNELS_DIR / "src" / "msda.cu",
    KERNELS_DIR / "src" / "fgsa_attention.cu",
)
INCLUDE_DIR = KERNELS_DIR / "include"
DEFAULT_BUILD_DIR = KERNELS_DIR.parent / "build" / "kernels-torch"
EXTENSION_NAME = "fgsa_torch_ext"


class ExtensionUnavailable(FgsaError, RuntimeError):
    """The torch extension cannot be built or run here (no CUDA device, no nvcc, no ninja...)."""


def check_environment() -> None:
    """Raises ExtensionUnavailable naming what is missing for building and running the extension."""
    import torch

    problems = []
    if not torch.cuda.is_available():
        problems.append(f"torch {torch.__version__} sees no CUDA device (torch.version.cuda={torch.version.cuda})")
    if shutil.which("ninja") is None:
        problems.append("ninja is not on PATH (pip install ninja)")
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if shutil.which("nvcc") is None and not (cuda_home and (Path(cuda_home) / "bin" / "nvcc").exists()):
        problems.append("nvcc is not on PATH and CUDA_HOME does not point at a CUDA toolkit")
    if problems:
        raise ExtensionUnavailable("cannot use the fgsa torch extension: " + "; ".join(problems))


def load(build_dir: Path = DEFAULT_BUILD_DIR, verbose: bool = False) -> ModuleType:
    """Compiles (or reuses) the extension for the visible GPU and imports it."""
    check_environment()
    from torch.utils.cpp_extension import load as load_extension

    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    return load_extension(
        name=EXTENSION_NAME,
        sources=[str(s) for s in SOURCES],
        extra_include_paths=[str(INCLUDE_DIR)],
        extra_cflags=["-O3"],
        extra_cuda_cflags=["-O3", "-lineinfo"],
        build_directory=str(build_dir),
        verbose=verbose,
    )


def _flat_shapes(spatial_shapes: Sequence[Sequence[int]]) -> list[int]:
    return [int(v) for hw in spatial_shapes for v in hw]


def msda(
    ext: ModuleType,
    value: "torch.Tensor",
    spatial_shapes: Sequence[Sequence[int]],
    sampling_locations: "torch.Tensor",
    attention_weights: "torch.Tensor",
    *,
    out: "torch.Tensor | None" = None,
    vec: int = 0,
    groups: int = 0,
) -> "torch.Tensor":
    """value [B, Len_in, M, Dh], sampling_locations [B, Q, M, L, P, 2], attention_weights [B, Q, M, L, P]
    -> [B, Q, M*Dh] in value's dtype. vec/groups = 0: the launcher picks the thread layout."""
    import torch

    B, _, M, Dh = value.shape
    if out is None:
        out = torch.empty((B, sampling_locations.shape[1], M * Dh), dtype=value.dtype, device=value.device)
    return ext.msda_out(value.contiguous(), sampling_locations.contiguous(), attention_weights.contiguous(),
                        _flat_shapes(spatial_shapes), out, vec, groups)


def fgsa_attention(
    ext: ModuleType,
    value: "torch.Tensor",
    spatial_shapes: Sequence[Sequence[int]],
    ref_points: "torch.Tensor",
    links: "torch.Tensor",
    offsets: "torch.Tensor",
    logits: "torch.Tensor",
    *,
    out: "torch.Tensor | None" = None,
    vec: int = 0,
    groups: int = 0,
) -> "torch.Tensor":
    """value [B, Len_in, Hs*M, Dh], ref_points [B, K, 2], links [B, K, Hs] (any int dtype), offsets
    [B, K, Hs*M, L, P, 2], logits [B, K, Hs*M, L*P] -> [B, K, Hs*M*Dh] in value's dtype."""
    import torch

    B, _, HM, Dh = value.shape
    if out is None:
        out = torch.empty((B, ref_points.shape[1], HM * Dh), dtype=value.dtype, device=value.device)
    return ext.fgsa_attention_out(value.contiguous(), ref_points.contiguous(), links.to(torch.int32).contiguous(),
                                  offsets.contiguous(), logits.contiguous(), _flat_shapes(spatial_shapes), out, vec,
                                  groups)
