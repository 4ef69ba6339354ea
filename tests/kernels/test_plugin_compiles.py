"""The TensorRT plugin against the TensorRT headers named by $TensorRT_INCLUDE_DIR: its exported symbols
and the plugin harness (plugin_harness.cpp), which drives every plugin method on the CPU. The build
(conftest.py::plugin_build) takes ~30-60 s on 2 cores.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from kernels import build, spec
from tests.kernels.conftest import requires_tensorrt_headers

pytestmark = requires_tensorrt_headers


def test_plugin_library_exports_only_the_entry_points(plugin_build):
    if shutil.which("nm") is None:
        pytest.skip("nm (binutils) not found")
    lib = build.library_path(plugin_build / "lib", "fgsa_trt_plugin")
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True,
                             check=True).stdout.splitlines()
    exported = sorted(line.split()[-1] for line in symbols if " T " in line)
    assert exported == sorted(spec.load_plugin_spec()["library"]["entry_points"])


def test_plugin_methods_on_cpu_harness(plugin_build):
    proc = subprocess.run([str(plugin_build / "bin" / "fgsa_plugin_harness")], capture_output=True, text=True,
                          timeout=60)
    failed = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
    assert proc.returncode == 0 and not failed, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.stdout.count("ok  ") >= 65
