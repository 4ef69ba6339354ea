"""The plugin library as TensorRT's loaders see it, on a machine without libnvinfer and without a GPU.

libfgsa_trt_plugin.so must dlopen with neither libnvinfer nor libcudart present, hand out one creator per op
of kernels/plugin/fgsa_plugins.json from getCreators (nothing registered at load time), and be harmless to
load twice. ctypes checks the load and the count; fgsa_plugin_loader (tests/kernels/plugin_loader.cpp) reads
the creators' names through TensorRT's interfaces, as IPluginRegistry::loadLibrary would.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess

import pytest

from kernels import build, spec
from tests.kernels.conftest import requires_tensorrt_headers

pytestmark = requires_tensorrt_headers


def _library(plugin_build):
    return build.library_path(plugin_build / "lib", "fgsa_trt_plugin")


def _get_creators(lib: ctypes.CDLL) -> tuple[int, int]:
    fn = lib.getCreators
    fn.restype = ctypes.c_void_p
    fn.argtypes = [ctypes.POINTER(ctypes.c_int32)]  # int32_t& is a pointer in the ABI
    n = ctypes.c_int32(-1)
    array = fn(ctypes.byref(n))
    return n.value, array


def test_library_needs_neither_libnvinfer_nor_libcudart(plugin_build):
    if shutil.which("readelf") is None:
        pytest.skip("readelf (binutils) not found")
    dynamic = subprocess.run(["readelf", "-d", str(_library(plugin_build))], capture_output=True, text=True,
                             check=True).stdout
    needed = [line.split("[")[1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line]
    assert needed and not [n for n in needed if "nvinfer" in n or "cudart" in n], needed


def test_ctypes_loads_it_and_get_creators_returns_every_op(plugin_build, tmp_path):
    ops = spec.load_plugin_spec()["ops"]
    lib = ctypes.CDLL(str(_library(plugin_build)))  # RTLD_NOW: an unresolved libnvinfer symbol fails here
    count, array = _get_creators(lib)
    assert count == len(ops) and array
    # Loading it again, from the same path and from a copy, is harmless and changes nothing.
    again = ctypes.CDLL(str(_library(plugin_build)))
    copy = tmp_path / "libfgsa_trt_plugin_copy.so"
    shutil.copy(_library(plugin_build), copy)
    other = ctypes.CDLL(str(copy))
    assert _get_creators(again) == (count, array)
    assert _get_creators(other)[0] == count


def test_loader_sees_every_creator_with_the_spec_names(plugin_build, tmp_path):
    s = spec.load_plugin_spec()
    copy = tmp_path / "libfgsa_trt_plugin_copy.so"
    shutil.copy(_library(plugin_build), copy)
    proc = subprocess.run([str(plugin_build / "bin" / "fgsa_plugin_loader"), str(_library(plugin_build)), str(copy)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loads = json.loads(proc.stdout)
    assert len(loads) == 2
    for load in loads:
        assert load["has_setLoggerFinder"] and load["same_handle"] and load["same_array_twice"]
        assert load["count"] == len(s["ops"])
        got = sorted((c["name"], c["version"], c["namespace"], c["interface"], tuple(c["fields"]))
                     for c in load["creators"])
        want = sorted((name, s["plugin_version"], s["plugin_namespace"], "PLUGIN CREATOR_V3ONE",
                       tuple(a["name"] for a in op["attributes"])) for name, op in s["ops"].items())
        assert got == want
