"""Imports follow the pipeline: the plan build (python -m export.trt) runs on GPU build hosts without torch, and
no module of export/ reaches up into calibration/. Each check runs in a fresh interpreter and reads sys.modules."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, save

REPO = Path(__file__).resolve().parents[2]

# runs python -m export.trt with the given arguments, then prints the modules it imported that it must not
RUN_TRT = """
import json, runpy, sys
sys.argv = ["python -m export.trt", *json.loads(sys.argv[1])]
try:
    runpy.run_module("export.trt", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
print("FORBIDDEN " + json.dumps([code, sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "calibration"))]))
"""

IMPORT_EXPORT = """
import importlib, json, pkgutil, sys
import export
names = [m.name for m in pkgutil.iter_modules(export.__path__, "export.") if m.name != "export.__main__"]
for name in names:
    importlib.import_module(name)
print(json.dumps([names, sorted(m for m in sys.modules if m.split(".")[0] == "calibration")]))
"""


def _run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _trt(args: list[str]) -> tuple[int, list[str], str]:
    out = _run(RUN_TRT, json.dumps(args))
    code, forbidden = json.loads(out.rsplit("FORBIDDEN ", 1)[1])
    return code, forbidden, out


def _graph(path: Path, precision: str) -> Path:
    """A Conv graph carrying its precision as export.onnx / calibration write it (float16 weights, or Q/DQ)."""
    wtype, npdt = (TensorProto.FLOAT16, np.float16) if precision == "fp16" else (TensorProto.FLOAT, np.float32)
    w = helper.make_tensor("w", wtype, [4, 3, 1, 1], np.ones((4, 3, 1, 1), npdt).tobytes(), raw=True)
    inits = [w]
    if precision == "fp16":
        nodes = [helper.make_node("Cast", ["query"], ["x"], to=wtype)]
    else:
        inits += [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
                  helper.make_tensor("z", TensorProto.INT8, [], [0])]
        nodes = [helper.make_node("QuantizeLinear", ["query", "s", "z"], ["q"]),
                 helper.make_node("DequantizeLinear", ["q", "s", "z"], ["x"])]
    nodes += [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Cast", ["c"], ["points"], to=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("query", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("points", TensorProto.FLOAT, [1, 4, 8, 8])], inits)
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_trt_help_imports_neither_torch_nor_calibration():
    code, forbidden, out = _trt(["--help"])
    assert code == 0 and "--dry-run" in out
    assert forbidden == []


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_reading_and_checking_a_graph_imports_neither_torch_nor_calibration(tmp_path, precision):
    """--dry-run reads the graph, checks its precision (FP32 islands / Q/DQ rules) and prints the sidecar."""
    onnx_path = _graph(tmp_path / "m.onnx", precision)
    code, forbidden, out = _trt(["--onnx", str(onnx_path), f"--{precision}", "--out", str(tmp_path / "m.plan"),
                                 "--dry-run"])
    side = json.loads(out.rsplit("FORBIDDEN ", 1)[0])
    assert code == 0 and side["precision"] == precision and side["io"][0]["name"] == "query"
    assert forbidden == []


def test_no_module_of_export_imports_calibration():
    names, imported = json.loads(_run(IMPORT_EXPORT))
    assert {"export.trt", "export.lint", "export.precision", "export.precision_rules",
            "export.coordinates"} <= set(names)
    assert imported == []
