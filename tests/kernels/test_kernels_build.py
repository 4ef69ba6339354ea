"""kernels.build: tool detection and error messages (the CPU reference build itself runs in conftest)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernels import build


def test_missing_tools_are_named(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CUDACXX", raising=False)
    missing = build.missing_build_tools(cuda=True)
    assert missing[0] == "cmake" and "nvcc" in missing and any("C++ compiler" in m for m in missing)
    with pytest.raises(build.BuildError, match="cmake.*not found on PATH"):
        build.configure(Path("unused"), cuda=True)


def test_cpu_reference_library_is_where_build_says(cpu_reference):
    lib = build.library_path(build.CPU_REFERENCE_BUILD_DIR / "lib", build.CPU_REFERENCE_TARGET)
    assert cpu_reference.library_path == lib and lib.exists()


def test_a_second_builder_of_one_folder_waits_for_the_first(tmp_path):
    """pytest-xdist workers and `make -j` build the same folders at once: the second waits for the lock."""
    child = ("import sys, time\nfrom kernels.build import build_lock\nt = time.monotonic()\n"
             f"with build_lock({str(tmp_path / 'b')!r}):\n    print(time.monotonic() - t)")
    with build.build_lock(tmp_path / "b"):
        proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True,
                                cwd=Path(build.__file__).resolve().parents[1])
        time.sleep(1.5)
        assert proc.poll() is None  # still waiting while the first builder holds the folder
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and float(out) >= 1.4
    # another folder is not blocked
    with build.build_lock(tmp_path / "b"), build.build_lock(tmp_path / "c"):
        pass


def test_failed_build_reports_cmake_output(tmp_path):
    if build.missing_build_tools():
        pytest.skip("cmake or a C++ compiler is missing")
    build.configure(tmp_path, cuda=False)
    with pytest.raises(build.BuildError, match="no_such_target"):
        build.build(tmp_path, ["no_such_target"])


def test_ci_built_the_cuda_kernels_with_nvcc():
    """`make test` builds the CUDA kernels first (Makefile: kernels); in CI a missing library is a failure."""
    import os

    lib = build.REPO_ROOT / "build" / "kernels" / "lib" / "libfgsa_kernels.a"
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not on PATH: the CUDA kernels cannot be built on this machine")
    if not lib.exists() and os.environ.get("CI") != "true":
        pytest.skip("build/kernels not built (run `make kernels`); CI requires it")
    assert lib.exists() and lib.stat().st_size > 10_000, f"{lib} missing or empty: the nvcc build did not run"
