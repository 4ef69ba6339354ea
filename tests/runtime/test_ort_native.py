"""Plugin-form and trt-builtin graphs on ONNX Runtime through libfgsa_ort_ops.so: the three attention
forms agree with PyTorch and with each other, full and split; no torch needed; the fallback warns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fgsa.preprocess import prepare_instance
from runtime import Engine, EngineError
from tests.kernels.ort_graphs import library_or_skip
from tests.runtime.conftest import _export
from tests.runtime.helpers import queries, support_args
from tests.runtime.test_engine_api import TOL, _torch_points

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def library() -> Path:
    return library_or_skip()


@pytest.fixture(scope="module")
def forms(library, micro, tmp_path_factory) -> dict[str, Path]:
    """The micro checkpoint in all three forms, each with full and split graphs, dynamic batch 1..4."""
    root = tmp_path_factory.mktemp("forms")
    out = {"portable": micro.folder}
    for form in ("plugin", "trt-builtin"):
        out[form] = _export(micro.ckpt, root / form, attention=form, split=True, dynamic_batch=(1, 2, 4))
    return out


def _crops(imgs, boxes) -> np.ndarray:
    return np.stack([prepare_instance(i, b, np.array([[b[0] + 5, b[1] + 5, 2.0]]), [[0, 0]])["image"]
                     for i, b in zip(imgs, boxes)])


def test_three_forms_full_and_split_agree_with_pytorch_and_each_other(micro, forms):
    sup = support_args(seed=21)
    imgs, boxes = queries(seed=22, n=2)
    want, _, _ = _torch_points(micro.model, sup, imgs, boxes)
    crops = _crops(imgs, boxes)
    got = {}
    for form, folder in forms.items():
        for graph, path in (("full", folder / "model.onnx"), ("split", folder)):
            with Engine(path, threads=2) as e:
                e.set_support(**sup)
                got[form, graph] = e.points(crops)
                active = [r for r in e.runners.values() if r.is_active]
                assert active and not any(r.uses_reference_ops for r in active), (form, graph)
                if form != "portable":
                    assert all(r.native_ops for r in active), (form, graph)
                assert e.cached == (graph == "split")
    for key, points in got.items():
        np.testing.assert_allclose(points, want, rtol=0, atol=TOL, err_msg=str(key))
        np.testing.assert_allclose(points, got["plugin", "full"], rtol=0, atol=TOL, err_msg=str(key))


def test_plugin_form_runs_without_torch(micro, micro_plugin, library):
    code = f"""
import sys
sys.modules["torch"] = None  # any import of torch now fails
import numpy as np
from runtime import Engine
sys.path.insert(0, {str(REPO / 'tests' / 'runtime')!r})
from helpers import queries, support_args
outs = []
for path in ({str(micro_plugin)!r}, {str(micro.folder / 'model.onnx')!r}):
    with Engine(path, threads=2) as e:
        e.set_support(**support_args(seed=0))
        outs.append(e.predict(*queries(seed=1, n=2)))
        r = e.runners["full"]
        assert not r.uses_reference_ops
plugin, portable = outs
assert plugin.shape == (2, 7, 2) and np.isfinite(plugin).all()
assert np.abs(plugin - portable).max() < 0.05, np.abs(plugin - portable).max()  # image pixels
assert sys.modules["torch"] is None, "something imported torch"
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]


def test_without_the_library_the_reference_op_runs_with_a_one_line_warning(micro_plugin, monkeypatch):
    pytest.importorskip("onnxruntime_extensions")
    import kernels.ort_library as lib

    monkeypatch.delenv(lib.LIBRARY_ENV, raising=False)
    monkeypatch.setattr(lib, "build_candidates", lambda: [])
    with pytest.warns(UserWarning, match=r"PyTorch reference.*make ort-ops") as record:
        e = Engine(micro_plugin)
    message = str(record[0].message)
    assert "\n" not in message
    assert e.runners["full"].uses_reference_ops and e.runners["full"].native_ops is None
    e.close()


def test_a_named_library_that_is_missing_is_an_error(micro_plugin, monkeypatch, tmp_path):
    with pytest.raises(EngineError, match=r"ort_library: expected the path of an existing libfgsa_ort_ops\.so"):
        Engine(micro_plugin, ort_library=tmp_path / "nope.so")
    monkeypatch.setenv("FGSA_ORT_LIBRARY", str(tmp_path / "nope.so"))
    with pytest.raises(EngineError, match=r"\$FGSA_ORT_LIBRARY: expected the path"):
        Engine(micro_plugin)


def test_explicit_library_argument_wins(micro_plugin, library, monkeypatch, tmp_path):
    monkeypatch.setenv("FGSA_ORT_LIBRARY", str(tmp_path / "nope.so"))  # would fail if it were used
    with Engine(micro_plugin, ort_library=library) as e:
        assert e.runners["full"].native_ops == library


def test_bench_times_compared_forms_in_one_run_and_names_the_native_library(forms, library, tmp_path):
    from runtime import bench

    out = tmp_path / "bench"
    rc = bench.main(["--engine", str(forms["portable"]), "--compare", str(forms["plugin"]), "--batches", "1",
                     "--threads", "1", "--iterations", "2", "--warmup", "1", "--out", str(out)])
    assert rc == 0
    report = json.loads((out / "bench.json").read_text())
    names = {r["name"] for r in report["rows"]}
    assert {"engine uncached", "engine cached", "plugin graph native ops uncached",
            "plugin graph native ops cached"} <= names
    assert report["compared"]["plugin graph native ops"]["native_ops"] == str(library)
    assert report["ratios"][0]["plugin graph native ops_over_engine_uncached"] > 0
    md = (out / "bench.md").read_text()
    assert "Compared engines" in md and f"natively in ONNX Runtime (libfgsa_ort_ops.so): plugin graph native ops: {library}" in md


def test_bench_refuses_a_compared_export_with_other_shots(forms, micro, tmp_path, capsys):
    from runtime import bench

    other = _export(micro.ckpt, tmp_path / "s2", attention="plugin", shots=2)
    assert bench.main(["--engine", str(forms["portable"]), "--compare", str(other), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --compare: expected an export with --shots 1") and err.count("\n") == 1
