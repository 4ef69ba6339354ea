"""Configure and build the native targets with CMake; return where the built libraries are.

    python -m kernels.build                          # CPU reference only (no nvcc needed)
    python -m kernels.build --cuda --arch 80         # + fgsa_kernels, and the plugin if TensorRT is found
    python -m kernels.build --cuda --tensorrt-include /path/to/TensorRT/include

Tests call :func:`build_cpu_reference` once per session (tests/kernels/conftest.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from fgsa.cli import EXIT_FAILED, error
from fgsa.errors import FgsaError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BUILD_DIR = REPO_ROOT / "build" / "kernels"
CPU_REFERENCE_BUILD_DIR = REPO_ROOT / "build" / "kernels-cpu"
CPU_REFERENCE_TARGET = "fgsa_cpu_reference"


class BuildError(FgsaError, RuntimeError):
    """A native build step failed or cannot run on this machine."""


def missing_build_tools(cuda: bool = False) -> list[str]:
    """Names of the tools a build needs that are not on PATH (empty when the build can run)."""
    missing = []
    if shutil.which("cmake") is None:
        missing.append("cmake")
    if not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        missing.append("a C++ compiler (c++, g++ or clang++)")
    if cuda and shutil.which("nvcc") is None and not os.environ.get("CUDACXX"):
        missing.append("nvcc")
    return missing


def _run(cmd: Sequence[str], what: str) -> None:
    proc = subprocess.run(list(cmd), cwd=REPO_ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-40:])
        raise BuildError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")


@contextlib.contextmanager
def build_lock(build_dir: Path):
    """Holds an exclusive lock on ``build_dir`` (a ``.lock`` file beside it) while a configure and build run.

    Several processes build the same folder at once: pytest-xdist workers each asking for the CPU reference,
    `make -j` running `make kernels` next to the tests' own build. CMake and Ninja do not guard a build tree
    against a second writer (half-written CMakeCache.txt, a library replaced while another process links it);
    the second builder waits here and then finds everything up to date."""
    build_dir = Path(build_dir)
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl  # POSIX only: on Windows builds are not guarded
    except ImportError:
        yield
        return
    with open(build_dir.parent / f".{build_dir.name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def configure(
    build_dir: Path = DEFAULT_BUILD_DIR,
    *,
    cuda: bool = True,
    cuda_architectures: str | None = None,
    tensorrt_include_dir: str | None = None,
    tensorrt_root: str | None = None,
    build_type: str = "Release",
    register_at_load: bool = False,
) -> Path:
    """Runs ``cmake -S <repo> -B build_dir`` with the given options; returns build_dir.

    ``register_at_load`` also builds fgsa_trt_plugin_linked (needs libnvinfer; configure fails without it).
    This interpreter is passed as Python3_EXECUTABLE, so a pip-installed TensorRT (``tensorrt_libs``) in its
    site-packages is found."""
    missing = missing_build_tools(cuda)
    if missing:
        raise BuildError(f"cannot build the kernels: {', '.join(missing)} not found on PATH")
    build_dir = Path(build_dir)
    cmd = ["cmake", "-S", str(REPO_ROOT), "-B", str(build_dir), f"-DCMAKE_BUILD_TYPE={build_type}"]
    if shutil.which("ninja") and not (build_dir / "CMakeCache.txt").exists():
        cmd += ["-G", "Ninja"]
    cmd.append(f"-DFGSA_BUILD_CUDA={'ON' if cuda else 'OFF'}")
    if cuda_architectures:
        cmd.append(f"-DCMAKE_CUDA_ARCHITECTURES={cuda_architectures}")
    if tensorrt_include_dir:
        cmd.append(f"-DTensorRT_INCLUDE_DIR={tensorrt_include_dir}")
    if tensorrt_root:
        cmd.append(f"-DTensorRT_ROOT={tensorrt_root}")
    cmd.append(f"-DPython3_EXECUTABLE={sys.executable}")
    if cuda:
        cmd.append(f"-DFGSA_PLUGIN_REGISTER_AT_LOAD={'ON' if register_at_load else 'OFF'}")
    _run(cmd, "CMake configure")
    return build_dir


def build(build_dir: Path = DEFAULT_BUILD_DIR, targets: Sequence[str] = (), jobs: int | None = None) -> Path:
    """Builds ``targets`` (all when empty) in a configured build_dir; returns build_dir / "lib"."""
    cmd = ["cmake", "--build", str(build_dir)]
    if targets:
        cmd += ["--target", *targets]
    cmd += ["--parallel", str(jobs or os.cpu_count() or 2)]
    _run(cmd, "CMake build")
    return Path(build_dir) / "lib"


def library_path(lib_dir: Path, target: str) -> Path:
    """Path of the shared library CMake builds for ``target`` on this platform."""
    suffix = {"darwin": ".dylib", "win32": ".dll"}.get(sys.platform, ".so")
    prefix = "" if sys.platform == "win32" else "lib"
    return Path(lib_dir) / f"{prefix}{target}{suffix}"


def build_cpu_reference(build_dir: Path = CPU_REFERENCE_BUILD_DIR) -> Path:
    """Builds only the CPU reference (host compiler, no nvcc) and returns the path of its shared library."""
    with build_lock(build_dir):
        configure(build_dir, cuda=False)
        lib = library_path(build(build_dir, [CPU_REFERENCE_TARGET]), CPU_REFERENCE_TARGET)
    if not lib.exists():
        raise BuildError(f"the build reported success but {lib} does not exist")
    return lib


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernels.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", type=Path, default=None, help="default: build/kernels (build/kernels-cpu without --cuda)")
    parser.add_argument("--cuda", action="store_true", help="also build the CUDA kernels (and the plugin when TensorRT is found)")
    parser.add_argument("--arch", default=None, help='CMAKE_CUDA_ARCHITECTURES, e.g. "80" (default: 80;86;89;90 + PTX)')
    parser.add_argument("--tensorrt-include", default=os.environ.get("TensorRT_INCLUDE_DIR"), help="TensorRT include dir")
    parser.add_argument("--tensorrt-root", default=os.environ.get("TensorRT_ROOT"), help="TensorRT install root")
    parser.add_argument("--register-at-load", action="store_true",
                        help="also build fgsa_trt_plugin_linked (registers at load time; needs libnvinfer)")
    parser.add_argument("--target", action="append", default=[], help="build only this target (repeatable)")
    args = parser.parse_args(argv)
    build_dir = args.build_dir or (DEFAULT_BUILD_DIR if args.cuda else CPU_REFERENCE_BUILD_DIR)
    try:
        with build_lock(build_dir):
            configure(build_dir, cuda=args.cuda, cuda_architectures=args.arch,
                      tensorrt_include_dir=args.tensorrt_include, tensorrt_root=args.tensorrt_root,
                      register_at_load=args.register_at_load)
            lib_dir = build(build_dir, args.target)
    except BuildError as e:
        return error(e, EXIT_FAILED)
    print(lib_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
