"""kernels/cmake/FindTensorRT.cmake against fake TensorRT installs (empty files with TensorRT's names and
layouts): a pip wheel (site-packages/tensorrt_libs/libnvinfer.so.N only, no headers), a tarball
(<root>/include, <root>/lib/libnvinfer.so.N.x.y), a wheel of the wrong major, and headers alone. Each case
configures a tiny CMake project (LANGUAGES NONE, < 1 s) that only runs find_package(TensorRT)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kernels import build

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not found")

MODULE_DIR = build.REPO_ROOT / "kernels" / "cmake"


def _headers(root: Path, major: int, minor: int) -> Path:
    inc = root / "include"
    inc.mkdir(parents=True)
    (inc / "NvInfer.h").write_text("// fake\n")
    # TensorRT 10.11+ layout: TRT_*_ENTERPRISE numbers, NV_TENSORRT_* aliases.
    (inc / "NvInferVersion.h").write_text(
        f"#define TRT_MAJOR_ENTERPRISE {major}\n#define TRT_MINOR_ENTERPRISE {minor}\n#define TRT_PATCH_ENTERPRISE 0\n"
        "#define NV_TENSORRT_MAJOR TRT_MAJOR_ENTERPRISE\n")
    return inc


def _libs(directory: Path, *names: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_bytes(b"\x7fELF fake")


def _configure(tmp_path: Path, *, args: list[str], components: str = "", pythonpath: Path | None = None):
    project = tmp_path / "probe"
    project.mkdir(exist_ok=True)
    (project / "CMakeLists.txt").write_text(f"""cmake_minimum_required(VERSION 3.24)
project(probe LANGUAGES NONE)
list(APPEND CMAKE_MODULE_PATH "{MODULE_DIR}")
find_package(TensorRT {components})
file(WRITE "${{CMAKE_BINARY_DIR}}/result.json"
  "{{\\"include\\": \\"${{TensorRT_INCLUDE_DIR}}\\", \\"library\\": \\"${{TensorRT_LIBRARY}}\\", \\"version\\": \\"${{TensorRT_VERSION}}\\", \\"found\\": \\"${{TensorRT_FOUND}}\\"}}")
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TensorRT_")}
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    out = tmp_path / "out"
    proc = subprocess.run(["cmake", "-S", str(project), "-B", str(out), f"-DPython3_EXECUTABLE={sys.executable}",
                           *args], capture_output=True, text=True, env=env, timeout=60)
    result = json.loads((out / "result.json").read_text()) if proc.returncode == 0 else None
    return proc, result


def test_pip_wheel_layout_is_found_through_the_interpreter(tmp_path):
    inc = _headers(tmp_path / "trt-src", 11, 1)
    site = tmp_path / "site-packages"
    _libs(site / "tensorrt_libs", "__init__.py", "libnvinfer.so.11", "libnvinfer_lean.so.11",
          "libnvinfer_builder_resource.so.11.1.0")
    proc, res = _configure(tmp_path, args=[f"-DTensorRT_INCLUDE_DIR={inc}"], components="REQUIRED COMPONENTS nvinfer",
                           pythonpath=site)
    assert proc.returncode == 0, proc.stderr
    assert res["library"] == str(site / "tensorrt_libs" / "libnvinfer.so.11") and res["version"] == "11.1.0"


def test_tarball_layout_with_only_versioned_files(tmp_path):
    root = tmp_path / "TensorRT-10.13.0.35"
    _headers(root, 10, 13)
    _libs(root / "lib", "libnvinfer.so.10", "libnvinfer.so.10.13.0")
    proc, res = _configure(tmp_path, args=[f"-DTensorRT_ROOT={root}"], components="REQUIRED COMPONENTS nvinfer")
    assert proc.returncode == 0, proc.stderr
    assert res["include"] == str(root / "include") and res["library"] == str(root / "lib" / "libnvinfer.so.10")
    assert res["version"] == "10.13.0"


def test_wheel_of_another_major_fails_loudly_when_the_library_is_required(tmp_path):
    inc = _headers(tmp_path / "trt-src", 11, 1)
    site = tmp_path / "site-packages"
    _libs(site / "tensorrt_libs", "__init__.py", "libnvinfer.so.10")
    proc, _ = _configure(tmp_path, args=[f"-DTensorRT_INCLUDE_DIR={inc}"], components="REQUIRED COMPONENTS nvinfer",
                         pythonpath=site)
    err = " ".join(proc.stderr.split())
    assert proc.returncode != 0
    assert "No libnvinfer.so.11" in err and "tensorrt_libs/libnvinfer.so.10" in err and "11.1.0" in err


def test_headers_alone_are_enough_when_the_library_is_optional(tmp_path):
    inc = _headers(tmp_path / "trt-src", 10, 13)
    proc, res = _configure(tmp_path, args=[f"-DTensorRT_INCLUDE_DIR={inc}"])
    assert proc.returncode == 0, proc.stderr
    assert res["found"] == "TRUE" and res["library"].endswith("NOTFOUND") and res["version"] == "10.13.0"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not found: the plugin's CMake needs CUDA")
def test_project_refuses_a_linked_plugin_it_cannot_build(tmp_path):
    inc = _headers(tmp_path / "trt-src", 11, 1)
    with pytest.raises(build.BuildError, match=r"(?s)TensorRT was required but not found.*No libnvinfer.so.11"):
        build.configure(tmp_path / "b", cuda=True, cuda_architectures="80", tensorrt_include_dir=str(inc),
                        register_at_load=True)
