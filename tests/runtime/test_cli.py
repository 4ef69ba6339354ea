"""The user-facing CLIs on a tiny synthetic set: predict writes a PNG, parity passes, bench reports ratios;
and the runtime runs a portable graph without importing torch."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime import bench, parity, predict

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def coco(synthetic):
    data = json.loads((synthetic / "annotations" / "synthetic_all.json").read_text())
    test_ids = json.loads((synthetic / "annotations" / "splits.json").read_text())["test"]
    anns = [a for a in data["annotations"] if a["category_id"] == test_ids[0]]
    images = {i["id"]: i for i in data["images"]}
    cat = next(c for c in data["categories"] if c["id"] == test_ids[0])
    return data, anns, images, cat


def test_predict_cli_small_json_writes_a_png(micro, synthetic, coco, tmp_path, capsys):
    _, anns, images, cat = coco
    sup, query = anns[0], anns[1]
    ann = {"keypoints": sup["keypoints"], "bbox": sup["bbox"], "skeleton": cat["skeleton"],
           "keypoint_names": cat["keypoints"]}
    (tmp_path / "support.json").write_text(json.dumps(ann))
    out = tmp_path / "pred.png"
    qimg = synthetic / "images" / images[query["image_id"]]["file_name"]
    rc = predict.main(["--engine", str(micro.folder), "--support", str(synthetic / "images" / images[sup["image_id"]]["file_name"]),
                       "--support-ann", str(tmp_path / "support.json"), "--query", str(qimg),
                       "--query-box", ",".join(str(v) for v in query["bbox"]), "--out", str(out),
                       "--json", str(tmp_path / "pred.json")])
    assert rc == 0
    png, q = cv2.imread(str(out)), cv2.imread(str(qimg))
    band = png.shape[0] - q.shape[0]  # the legend sits in a band above the query, never over it
    # as wide as the query, or wider where the legend's text needs it; one line for the label and one per six
    # keypoint names
    lines = 1 + -(-len(cat["keypoints"]) // 6)
    assert q.shape[1] <= png.shape[1] and 16 * lines <= band <= 20 * lines
    result = json.loads((tmp_path / "pred.json").read_text())
    assert len(result["keypoints"]) == len(cat["keypoints"]) and np.isfinite(result["keypoints"]).all()
    assert f"wrote {out}" in capsys.readouterr().out


def test_predict_cli_reads_mp100_coco_with_ann_id(micro, synthetic, coco, tmp_path, capsys):
    _, anns, images, _ = coco
    sup, query = anns[2], anns[3]
    argv = ["--engine", str(micro.folder / "model.onnx"),
            "--support", str(synthetic / "images" / images[sup["image_id"]]["file_name"]),
            "--support-ann", str(synthetic / "annotations" / "synthetic_all.json"), "--ann-id", str(sup["id"]),
            "--query", str(synthetic / "images" / images[query["image_id"]]["file_name"]),
            "--out", str(tmp_path / "side.png"), "--show-support"]
    assert predict.main(argv) == 0
    widths = images[sup["image_id"]]["width"], images[query["image_id"]]["width"]
    assert cv2.imread(str(tmp_path / "side.png")).shape[1] >= sum(widths) + 8  # support | query, 4 px gaps


def test_predict_cli_bad_annotation_exits_2(micro, synthetic, tmp_path, capsys):
    (tmp_path / "bad.json").write_text(json.dumps({"keypoints": [[1, 2, 2], [3, 4, 2]], "skeleton": []}))
    img = next((synthetic / "images").rglob("*.jpg"))
    rc = predict.main(["--engine", str(micro.folder), "--support", str(img), "--support-ann",
                       str(tmp_path / "bad.json"), "--query", str(img), "--out", str(tmp_path / "x.png")])
    assert rc == 2 and "skeleton" in capsys.readouterr().err


def test_parity_cli_passes_and_writes_reports(micro, synthetic, tmp_path, capsys):
    out = tmp_path / "parity"
    rc = parity.main(["--ckpt", str(micro.ckpt), "--onnx", str(micro.folder), "--data", str(synthetic),
                      "--episodes", "1", "--queries", "3", "--out", str(out)])
    report = json.loads((out / "parity.json").read_text())
    assert rc == 0 and report["verdict"] == "PASS", capsys.readouterr().out
    assert {s["output"] for s in report["raw_outputs"]} == {"points", "support_embed", "support_pos",
                                                             "support_values_1_level0", "support_values_1_level1"}
    assert report["query_images"] == 6 and report["mpck_difference"] == 0.0
    assert report["images_to_keypoints"]["max_abs_normalised"] < 1e-4
    assert cv2.imread(str(out / "parity.png")) is not None and "PASS" in (out / "parity.md").read_text()


def test_parity_cli_fails_against_another_checkpoint(micro, synthetic, tmp_path):
    import torch

    from fgsa.checkpoint import load_model, save_checkpoint

    model = load_model(micro.ckpt)
    with torch.no_grad():
        model.predictor.kpt_branch[0].mlp[-1].bias.add_(0.5)  # moves every predicted point
    other = save_checkpoint(tmp_path / "other.pth", model)
    rc = parity.main(["--ckpt", str(other), "--engine", str(micro.folder), "--data", str(synthetic),
                      "--episodes", "1", "--queries", "2", "--out", str(tmp_path / "p")])
    assert rc == 1 and json.loads((tmp_path / "p" / "parity.json").read_text())["verdict"] == "FAIL"


def test_bench_cli_reports_latency_and_ratios(micro, tmp_path):
    import torch

    out = tmp_path / "bench"
    threads = torch.get_num_threads()
    try:  # one thread: PyTorch with 2 threads crawls on a loaded 2-core machine
        rc = bench.main(["--engine", str(micro.folder), "--ckpt", str(micro.ckpt), "--batches", "1,2,8",
                         "--shots", "1", "--threads", "1", "--iterations", "4", "--warmup", "1", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    report = json.loads((out / "bench.json").read_text())
    rows = {(r["batch"], r["name"]) for r in report["rows"]}
    for b in (1, 2):
        assert {(b, "engine uncached"), (b, "engine cached"), (b, "engine predict()"),
                (b, "pytorch uncached"), (b, "pytorch cached")} <= rows
    assert [s["batch"] for s in report["skipped"]] == [8]  # outside the exported range 1..4
    r = report["rows"][0]
    assert r["iterations"] == 4 and 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"]
    assert all(k in report["ratios"][0] for k in ("pytorch_over_engine_uncached", "engine_cache_speedup"))
    assert "PyTorch / engine" in (out / "bench.md").read_text()


def test_bench_cli_rejects_other_shots(micro, tmp_path, capsys):
    assert bench.main(["--engine", str(micro.folder), "--shots", "5", "--out", str(tmp_path)]) == 2
    assert "--shots" in capsys.readouterr().err


def test_runtime_runs_a_portable_graph_without_torch(micro):
    code = f"""
import sys
import numpy as np
from runtime import Engine
import runtime.predict  # the predict CLI is torch-free too
sys.path.insert(0, {str(REPO / 'tests' / 'runtime')!r})
from helpers import queries, support_args
with Engine({str(micro.folder)!r}) as e:
    e.set_support(**support_args(seed=0))
    out = e.predict(*queries(seed=1, n=2))
assert out.shape == (2, 7, 2) and np.isfinite(out).all()
assert "torch" not in sys.modules, "runtime imported torch"
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
