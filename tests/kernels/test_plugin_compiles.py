"""The TensorRT plugin against the TensorRT headers named by $TensorRT_INCLUDE_DIR.

TensorRT's libraries cannot be installed on these machines, so without libnvinfer the build stops at the
compile-only target, an unlinked .so whose exported symbols are checked here, and the plugin harness
(plugin_harness.cpp) that drives every plugin method on the CPU. Takes ~30-60 s on 2 cores (nvcc builds
the kernels for one architecture, $FGSA_TEST_CUDA_ARCH, default 80).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kernels import build, spec

TRT_INCLUDE = os.environ.get("TensorRT_INCLUDE_DIR", "")

pytestmark = pytest.mark.skipif(
    not (TRT_INCLUDE and (Path(TRT_INCLUDE) / "NvInfer.h").exists()),
    reason="set TensorRT_INCLUDE_DIR to a TensorRT include/ dir (NvInfer.h) to compile the plugin")


@pytest.fixture(scope="module")
def plugin_build() -> Path:
    missing = build.missing_build_tools(cuda=True)
    if missing:
        pytest.skip(f"cannot compile the plugin here: {', '.join(missing)} not found")
    build_dir, arch = _reusable_build() or (build.REPO_ROOT / "build" / "kernels-trt",
                                             os.environ.get("FGSA_TEST_CUDA_ARCH", "80"))
    build.configure(build_dir, cuda=True, cuda_architectures=arch, tensorrt_include_dir=TRT_INCLUDE)
    build.build(build_dir)
    return build_dir


def _reusable_build() -> tuple[Path, None] | None:
    """build/kernels when `python -m kernels.build --cuda` (or the Makefile) already configured it with these
    headers: then the plugin is already built and its architectures are left as they are."""
    cache = build.DEFAULT_BUILD_DIR / "CMakeCache.txt"
    if not cache.exists():
        return None
    wanted = Path(TRT_INCLUDE).resolve()
    for line in cache.read_text().splitlines():
        if line.startswith("TensorRT_INCLUDE_DIR:") and Path(line.split("=", 1)[1]).resolve() == wanted:
            return build.DEFAULT_BUILD_DIR, None
    return None


def test_plugin_library_exports_only_the_entry_points(plugin_build):
    if shutil.which("nm") is None:
        pytest.skip("nm (binutils) not found")
    lib_dir = plugin_build / "lib"
    libs = [p for p in (build.library_path(lib_dir, "fgsa_trt_plugin"),
                        build.library_path(lib_dir, "fgsa_trt_plugin_unlinked")) if p.exists()]
    assert libs, f"no plugin library in {lib_dir}"
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(libs[0])], capture_output=True, text=True,
                             check=True).stdout.splitlines()
    exported = sorted(line.split()[-1] for line in symbols if " T " in line)
    assert exported == sorted(spec.load_plugin_spec()["library"]["entry_points"])


def test_plugin_methods_on_cpu_harness(plugin_build):
    proc = subprocess.run([str(plugin_build / "bin" / "fgsa_plugin_harness")], capture_output=True, text=True,
                          timeout=60)
    failed = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
    assert proc.returncode == 0 and not failed, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.stdout.count("ok  ") >= 55
