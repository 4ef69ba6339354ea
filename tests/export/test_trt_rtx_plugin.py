"""The plugin form in TensorRT-RTX: our plugin library, compiled against TensorRT 11.x headers, then the micro model's
plugin-form FP32, FP16 and INT8 graphs parsed and built ahead of time with it.

Needs $TensorRT_INCLUDE_DIR naming TensorRT 11.x headers (as the plugin compile tests do; they are public in
NVIDIA's TensorRT repository, include/, and are never part of this one) and nvcc; skips with the reason
otherwise. The loader condition of TensorRT-RTX's parser (libtensorrt_rtx.so) is the project's to handle
(export/trt_rtx.py): nothing is set up here beyond what `python -m export.trt` does itself."""

from __future__ import annotations

import os
import re
from pathlib import Path

import onnx
import pytest

from export import trt as T

TRT_INCLUDE = os.environ.get("TensorRT_INCLUDE_DIR", "")


def _header_major(include: str) -> int | None:
    version = Path(include) / "NvInferVersion.h"
    if not version.is_file():
        return None
    m = re.search(r"#define\s+(?:TRT_MAJOR_ENTERPRISE|NV_TENSORRT_MAJOR)\s+(\d+)", version.read_text())
    return int(m.group(1)) if m else None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(_header_major(TRT_INCLUDE) != 11,
                       reason="set TensorRT_INCLUDE_DIR to TensorRT 11.x headers (NvInfer.h, NvInferVersion.h) to "
                              "build the plugin and the plugin-form graphs in TensorRT-RTX (10.x headers give a "
                              "library TensorRT-RTX cannot load)"),
]
rtx = pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed (pip install -e .[rtx])")


@pytest.fixture(scope="module")
def plugin_library() -> Path:
    from kernels import build

    missing = build.missing_build_tools(cuda=True)
    if missing:
        pytest.skip(f"cannot compile the plugin here: {', '.join(missing)} not found")
    build_dir = build.REPO_ROOT / "build" / "kernels-trt"  # the plugin compile tests' build, shared
    build.configure(build_dir, cuda=True, cuda_architectures=os.environ.get("FGSA_TEST_CUDA_ARCH", "80"),
                    tensorrt_include_dir=TRT_INCLUDE)
    lib_dir = build.build(build_dir)
    for target in ("fgsa_trt_plugin", "fgsa_trt_plugin_unlinked"):  # linked where libnvinfer exists, else not
        lib = build.library_path(lib_dir, target)
        if lib.is_file():
            return lib
    pytest.fail(f"no plugin library in {lib_dir}")


@pytest.fixture(scope="module")
def plugin_graphs(tmp_path_factory) -> dict:
    import torch

    from calibration.qdq import quantize_qdq
    from calibration.ranges import compute_ranges
    from export.onnx import ExportOptions, export_onnx
    from fgsa.checkpoint import save_checkpoint
    from fgsa.model import FMMP
    from fgsa.model.examples import random_inputs
    from tests.conftest import MICRO

    root = tmp_path_factory.mktemp("rtx_plugin_graphs")
    torch.manual_seed(0)
    model = FMMP(MICRO)
    ckpt = save_checkpoint(root / "micro.pth", model)
    out = {}
    for precision in ("fp32", "fp16"):
        result = export_onnx(ExportOptions(ckpt=ckpt, out=root / precision, parity=False, quiet=True,
                                           attention="plugin", precision=precision))
        assert result.ok, result.lint
        out[precision] = result.files["full"]
    feeds = [{k: v.numpy() for k, v in random_inputs(model.cfg, seed=s).items()} for s in range(2)]
    fp32 = onnx.load(out["fp32"])
    out["int8"] = root / "int8.onnx"
    onnx.save(quantize_qdq(fp32, compute_ranges(fp32, feeds, "minmax", chunk=2, progress=False)), out["int8"])
    return out


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_plugin_form_builds_in_tensorrt_rtx(plugin_library, plugin_graphs, precision, tmp_path):
    path = plugin_graphs[precision]
    plan = T.plan_build(path, precision, tmp_path / "model.plan", plugin=plugin_library, target="tensorrt-rtx")
    assert plan.info.plugin_ops == ["FGSA_Attention", "FGSA_MSDA"]
    side = T.build_engine(plan, progress=False)
    size = plan.out.stat().st_size
    print(f"\nplugin-form {precision}: {side['build_seconds']} s, {size / 2**20:.2f} MiB")
    assert side["io"] == plan.io() and side["plugin_sha256"] == T.file_sha256(plugin_library)
    assert side["target"] == "tensorrt-rtx" and side["plugin_ops"] == ["FGSA_Attention", "FGSA_MSDA"] and size > 0
