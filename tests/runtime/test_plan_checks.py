"""TensorRT plan checks that need no TensorRT (sidecar vs this host, plugin library), and the TensorRT
backend itself where TensorRT is importable."""

import json

import numpy as np
import pytest

from runtime import Engine, EngineError
from runtime.backends import tensorrt_available
from runtime.backends.plan import (PLUGIN_ENV, GpuInfo, check_compatibility, file_sha256, read_sidecar,
                                   resolve_plugin_library)

H100 = GpuInfo("NVIDIA H100 80GB HBM3", "9.0")


def _plan(tmp_path, **sidecar):
    plan = tmp_path / "model.plan"
    plan.write_bytes(b"\0plan")
    base = {"trt_version": "10.13.0.35", "gpu": {"name": H100.name, "compute_capability": "9.0"},
            "precision": "fp16", "io": [], "plugin_library": None, "plugin_sha256": None}
    (tmp_path / "model.plan.json").write_text(json.dumps({**base, **sidecar}))
    return plan, read_sidecar(plan)


def test_plan_from_another_tensorrt_version(tmp_path):
    plan, side = _plan(tmp_path)
    check_compatibility(side, plan, "10.13.0.35", H100)  # same version and GPU: fine
    with pytest.raises(EngineError, match=r"TensorRT 10\.13\.0\.35, this host has TensorRT 11\.0\.0.*rebuild the plan"):
        check_compatibility(side, plan, "11.0.0.12", H100)


def test_plan_for_another_gpu(tmp_path):
    plan, side = _plan(tmp_path)
    with pytest.raises(EngineError, match=r"compute capability 9\.0\), this GPU is .*8\.0.*rebuild"):
        check_compatibility(side, plan, "10.13.0.35", GpuInfo("NVIDIA A100-SXM4-80GB", "8.0"))
    plan, side = _plan(tmp_path, gpu="NVIDIA H100 80GB HBM3")  # a name only
    with pytest.raises(EngineError, match="built for GPU"):
        check_compatibility(side, plan, "10.13.0.35", GpuInfo("NVIDIA L4", "8.9"))
    plan, side = _plan(tmp_path, hardware_compatible=True)
    check_compatibility(side, plan, "10.13.0.35", GpuInfo("NVIDIA A100-SXM4-80GB", "8.0"))


def test_missing_plugin_library_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.delenv(PLUGIN_ENV, raising=False)
    monkeypatch.setattr("runtime.backends.plan.default_plugin_candidates", lambda: [])
    plan, side = _plan(tmp_path, plugin_library="/opt/gone/libfgsa_trt_plugin.so", plugin_sha256="ab" * 32)
    with pytest.raises(EngineError, match=r"no libfgsa_trt_plugin.so was chosen.*built with /opt/gone/.*make kernels"
                                          r".*FGSA_PLUGIN_LIBRARY"):
        resolve_plugin_library(side, plan)
    with pytest.raises(EngineError, match="not found.*make kernels"):
        resolve_plugin_library(side, plan, explicit=tmp_path / "missing.so")


def test_plugin_library_resolution_and_checksum(tmp_path, monkeypatch):
    lib = tmp_path / "libfgsa_trt_plugin.so"
    lib.write_bytes(b"ELF plugin")
    plan, side = _plan(tmp_path, plugin_library="libfgsa_trt_plugin.so", plugin_sha256=file_sha256(lib))
    monkeypatch.delenv(PLUGIN_ENV, raising=False)
    monkeypatch.setattr("runtime.backends.plan.default_plugin_candidates", lambda: [])
    with pytest.raises(EngineError, match="was chosen"):  # next to the plan, named by its sidecar: not chosen
        resolve_plugin_library(side, plan)
    assert resolve_plugin_library(side, plan, explicit=lib) == lib  # the user's choice, confirmed by the hash
    other = tmp_path / "other.so"
    other.write_bytes(b"another build")
    monkeypatch.setenv(PLUGIN_ENV, str(other))
    with pytest.raises(EngineError, match="not the one .* was built with.*rebuild the plan"):
        resolve_plugin_library(side, plan)
    assert resolve_plugin_library(side, plan, check_sha256=False) == other
    plan, side = _plan(tmp_path)  # no plugin used: nothing to load
    monkeypatch.delenv(PLUGIN_ENV)
    assert resolve_plugin_library(side, plan) is None


@pytest.mark.skipif(tensorrt_available(), reason="checks the message shown when TensorRT is missing")
def test_plan_without_tensorrt_says_what_to_install(tmp_path):
    plan, _ = _plan(tmp_path)
    with pytest.raises(EngineError, match="TensorRT is not importable.*onnxruntime"):
        Engine(plan)


needs_trt = pytest.mark.skipif(not tensorrt_available(), reason="TensorRT (and cuda-python) not importable on this "
                               "host: the TensorRT backend runs only where TensorRT is installed with a GPU")


def _build_plan(onnx_path, plan_path):  # pragma: no cover - needs a GPU host
    """A plan straight from TensorRT's ONNX parser (portable graph, no plugin), plus its sidecar."""
    import tensorrt as trt

    from runtime.backends.tensorrt import _Cuda, current_gpu, import_cudart

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(onnx_path.read_bytes()), [parser.get_error(i) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        t = network.get_input(i)
        shape = list(t.shape)
        lo, hi = [1] + shape[1:], [2] + shape[1:]
        profile.set_shape(t.name, lo, lo, hi)
    config.add_optimization_profile(profile)
    plan_path.write_bytes(bytes(builder.build_serialized_network(network, config)))
    gpu = current_gpu(_Cuda(import_cudart()), 0)
    plan_path.with_name(plan_path.name + ".json").write_text(json.dumps(
        {"trt_version": trt.__version__, "gpu": {"name": gpu.name, "compute_capability": gpu.compute_capability},
         "precision": "fp32", "io": [], "plugin_library": None, "plugin_sha256": None}))


@needs_trt
def test_tensorrt_runner_matches_onnxruntime(micro, tmp_path):  # pragma: no cover - needs a GPU host
    from tests.runtime.helpers import queries, support_args

    plan = tmp_path / "model.plan"
    _build_plan(micro.folder / "model.onnx", plan)
    sup = support_args(seed=0)
    imgs, boxes = queries(seed=1, n=2)
    with Engine(plan) as trt, Engine(micro.folder / "model.onnx") as ort:
        assert trt.backend == "tensorrt"
        for e in (trt, ort):
            e.set_support(**sup)
        np.testing.assert_allclose(trt.predict(imgs, boxes), ort.predict(imgs, boxes), atol=0.05)
        first = trt.predict(imgs, boxes)
        for _ in range(3):  # the third call replays the captured CUDA graph
            np.testing.assert_array_equal(trt.predict(imgs, boxes), first)
