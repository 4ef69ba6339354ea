"""Torch extension of the CUDA kernels, compiled at run time on a GPU machine (not in CI).

    ext = kernels.torch_ext.load()
    out = kernels.torch_ext.fgsa_attention(ext, value, shapes, ref_points, links, offsets, logits)

The extension is a thin adapter (fgsa_ext.cpp) over the same launchers as the TensorRT plugin; the wrappers
here allocate the output with ``torch.empty`` (the kernels write every element) unless ``out`` is given.
Importing this module does not import torch.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Sequence

from fgsa.errors import FgsaError
from kernels.torch_ext import toolchain

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


class ExtensionBuildError(FgsaError, RuntimeError):
    """The compiler refused the extension (the message holds the build's reason)."""


LAYOUTS = {"auto": 0, "team": 1, "item": 2}  # fgsa::Layout


def check_environment() -> dict[str, str | None]:
    """Finds the CUDA toolkit (also behind an nvcc wrapper) and ninja and exports them for the build
    (toolchain.prepare); raises ExtensionUnavailable naming what is missing. Without ninja the extension
    is still built, by setuptools (slower, one file at a time). Returns toolchain.prepare's findings."""
    import torch

    found = toolchain.prepare()
    problems = []
    if not torch.cuda.is_available():
        problems.append(f"torch {torch.__version__} sees no CUDA device (torch.version.cuda={torch.version.cuda})")
    if found["cuda_home"] is None:
        _, tried = toolchain.find_cuda_home()
        problems.append("no CUDA toolkit found (set CUDA_HOME to the directory with bin/nvcc and include/); tried: "
                        + "; ".join(tried or ["nothing: no nvcc on PATH, no /usr/local/cuda"]))
    if problems:
        raise ExtensionUnavailable("cannot use the fgsa torch extension: " + "; ".join(problems))
    return found


def arch_flags(capability: tuple[int, int], environ: dict[str, str] | None = None) -> tuple[list[str], str]:
    """nvcc flags for this GPU's architecture only, and a sentence saying so.

    torch adds a -gencode per entry of $TORCH_CUDA_ARCH_LIST, which GPU images often preset to a long list:
    each entry is one more compile of every kernel, and an entry below 7.5 stops nvcc 13 outright. An
    explicit -gencode among the extension's nvcc flags makes torch add none (cpp_extension's
    _get_cuda_arch_flags returns [] when a flag names an arch), so the preset list is ignored."""
    env = os.environ if environ is None else environ
    major, minor = capability
    num = f"{major}{minor}"
    flags = [f"-gencode=arch=compute_{num},code=sm_{num}"]
    preset = env.get("TORCH_CUDA_ARCH_LIST")
    note = f"building for sm_{num} only (this GPU)"
    if preset and preset.strip() not in (f"{major}.{minor}", "native"):
        note += f"; TORCH_CUDA_ARCH_LIST={preset!r} from the environment is ignored"
    return flags, note


def load(build_dir: Path = DEFAULT_BUILD_DIR, verbose: bool = False) -> ModuleType:
    """Compiles (or reuses) the extension for the visible GPU's architecture only (:func:`arch_flags`) and
    imports it. A compiler error is an :class:`ExtensionBuildError` on both build paths (torch raises
    RuntimeError from ninja; setuptools exits with SystemExit)."""
    found = check_environment()
    import torch

    flags, _ = arch_flags(torch.cuda.get_device_capability())
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    if found["ninja"] is None:
        return _load_without_ninja(build_dir, verbose, flags)
    from torch.utils.cpp_extension import load as load_extension

    try:
        return load_extension(
            name=EXTENSION_NAME,
            sources=[str(s) for s in SOURCES],
            extra_include_paths=[str(INCLUDE_DIR)],
            extra_cflags=["-O3"],
            extra_cuda_cflags=["-O3", "-lineinfo", *flags],
            build_directory=str(build_dir),
            verbose=verbose,
        )
    except RuntimeError as exc:  # "Error building extension ..." with ninja's output
        raise ExtensionBuildError(f"the torch extension did not build in {build_dir}: {exc}") from exc


def _load_without_ninja(build_dir: Path, verbose: bool, arch: list[str]) -> ModuleType:
    """torch's load() needs ninja; setuptools' build_ext with BuildExtension(use_ninja=False) does not."""
    from setuptools import setup
    from torch.utils.cpp_extension import BuildExtension, CUDAExtension

    out_dir = build_dir / "setuptools"
    ext = CUDAExtension(EXTENSION_NAME, [str(s) for s in SOURCES], include_dirs=[str(INCLUDE_DIR)],
                        extra_compile_args={"cxx": ["-O3"], "nvcc": ["-O3", "-lineinfo", *arch]})
    try:
        setup(name=EXTENSION_NAME, ext_modules=[ext],
              cmdclass={"build_ext": BuildExtension.with_options(use_ninja=False)},
              script_args=["build_ext", "--build-lib", str(out_dir), "--build-temp", str(out_dir / "tmp")]
              + ([] if verbose else ["--quiet"]))
    except SystemExit as exc:  # distutils reports a compiler error by exiting
        raise ExtensionBuildError(f"the torch extension did not build with setuptools in {out_dir}: {exc}") from None
    built = sorted(glob.glob(str(out_dir / f"{EXTENSION_NAME}*.so")))
    if not built:
        raise ExtensionUnavailable(f"setuptools reported success but built no {EXTENSION_NAME}*.so in {out_dir}")
    spec = importlib.util.spec_from_file_location(EXTENSION_NAME, built[-1])
    module = importlib.util.module_from_spec(spec)
    sys.modules[EXTENSION_NAME] = module
    spec.loader.exec_module(module)
    return module


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
    layout: str = "auto",
    index_bits: int = 0,
) -> "torch.Tensor":
    """value [B, Len_in, M, Dh], sampling_locations [B, Q, M, L, P, 2], attention_weights [B, Q, M, L, P]
    -> [B, Q, M*Dh] in value's dtype. vec/groups/index_bits = 0, layout "auto": the launcher chooses
    (fgsa/params.h LaunchConfig)."""
    import torch

    B, _, M, Dh = value.shape
    if out is None:
        out = torch.empty((B, sampling_locations.shape[1], M * Dh), dtype=value.dtype, device=value.device)
    return ext.msda_out(value.contiguous(), sampling_locations.contiguous(), attention_weights.contiguous(),
                        _flat_shapes(spatial_shapes), out, vec, groups, LAYOUTS[layout], index_bits)


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
    layout: str = "auto",
    index_bits: int = 0,
) -> "torch.Tensor":
    """value [B, Len_in, Hs*M, Dh], ref_points [B, K, 2], links [B, K, Hs] (any int dtype), offsets
    [B, K, Hs*M, L, P, 2], logits [B, K, Hs*M, L*P] -> [B, K, Hs*M*Dh] in value's dtype."""
    import torch

    B, _, HM, Dh = value.shape
    if out is None:
        out = torch.empty((B, ref_points.shape[1], HM * Dh), dtype=value.dtype, device=value.device)
    return ext.fgsa_attention_out(value.contiguous(), ref_points.contiguous(), links.to(torch.int32).contiguous(),
                                  offsets.contiguous(), logits.contiguous(), _flat_shapes(spatial_shapes), out, vec,
                                  groups, LAYOUTS[layout], index_bits)
