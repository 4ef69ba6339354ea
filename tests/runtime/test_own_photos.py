"""Own photos, as a new user has them: a COCO keypoint file written elsewhere plus a folder of images is a data
set for evaluate, parity and calibration (``--data FILE.json --image-root DIR``, or one JSON next to its
images); runtime.predict runs many queries with one engine and writes a COCO results file pycocotools reads."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.photos import LAYOUT, write_photo_set

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def export_elsewhere(tmp_path_factory) -> tuple[Path, Path]:
    """(annotation file, image folder) in unrelated places, as a labelling tool exports them."""
    root = tmp_path_factory.mktemp("own_photos")
    write_photo_set(root / "made")
    ann = root / "labels" / "person_keypoints_export.json"
    ann.parent.mkdir()
    shutil.move(root / "made" / "annotations" / "photos.json", ann)
    shutil.move(root / "made" / "images", root / "pictures")
    return ann, root / "pictures"


def _run(module: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


def test_evaluate_takes_a_coco_file_and_an_image_root_and_caps_the_default_queries(export_elsewhere, tmp_path):
    ann, pictures = export_elsewhere
    out = tmp_path / "pck.json"
    proc = _run("fgsa.evaluate", "--baseline-only", "--data", str(ann), "--image-root", str(pictures),
                "--episodes", "6", "--no-progress", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert any("--queries 15 (the default)" in w and "'photo'" in w and "--queries 4" in w for w in warnings), \
        proc.stderr
    # 6 episodes x 4 queries = 24 pairs, of 5 x 4 = 20 possible (support, query) pairs: some repeat
    assert any("pairs are distinct" in w for w in warnings), proc.stderr
    assert json.loads(out.read_text())["images"] == 6 * 4


def test_too_many_queries_name_the_flags_and_the_category(export_elsewhere):
    ann, pictures = export_elsewhere
    proc = _run("fgsa.evaluate", "--baseline-only", "--data", str(ann), "--image-root", str(pictures),
                "--queries", "9", "--no-progress")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    for word in ("--queries / --shots", "'photo'", "(id 3)", "5 in"):
        assert word in lines[0], lines[0]


def test_a_folder_holding_one_json_next_to_its_images_is_a_data_set(export_elsewhere, tmp_path):
    ann, pictures = export_elsewhere
    flat = tmp_path / "flat"
    shutil.copytree(pictures, flat)
    shutil.copy(ann, flat / "labels.json")
    proc = _run("fgsa.evaluate", "--baseline-only", "--data", str(flat), "--queries", "2", "--episodes", "1",
                "--no-progress")
    assert proc.returncode == 0, proc.stderr
    (flat / "second.json").write_text("{}")
    proc = _run("fgsa.evaluate", "--baseline-only", "--data", str(flat), "--no-progress")
    assert proc.returncode == 2 and "a folder holding one .json next to its images" in proc.stderr
    assert "2 .json files" in proc.stderr


def test_parity_runs_on_a_coco_file_and_an_image_root(micro, export_elsewhere, tmp_path):
    ann, pictures = export_elsewhere
    proc = _run("runtime.parity", "--ckpt", str(micro.ckpt), "--engine", str(micro.folder), "--data", str(ann),
                "--image-root", str(pictures), "--episodes", "1", "--queries", "2", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads((tmp_path / "parity.json").read_text())
    assert report["verdict"] == "PASS" and report["query_images"] == 2


def test_calibration_takes_a_coco_file_and_an_image_root(micro, export_elsewhere, tmp_path):
    ann, pictures = export_elsewhere
    out = tmp_path / "int8.onnx"
    proc = _run("calibration", "--onnx", str(micro.folder / "model.onnx"), "--data", str(ann), "--image-root",
                str(pictures), "--calib-subset", "test", "--calib-pairs", "3", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    import onnx

    assert sum(n.op_type == "QuantizeLinear" for n in onnx.load(out).graph.node) > 10


def test_predict_on_a_folder_writes_coco_results_that_pycocotools_reads(micro, export_elsewhere, tmp_path):
    from pycocotools.coco import COCO

    ann, pictures = export_elsewhere
    data = json.loads(ann.read_text())
    support = next(i for i in data["images"] if i["file_name"] == "chelsea.jpg")
    queries = tmp_path / "queries"
    queries.mkdir()
    for img in data["images"]:
        if img is not support:
            shutil.copy(pictures / img["file_name"], queries / img["file_name"])
    (queries / "notes.txt").write_text("not an image")
    support_ann = next(a for a in data["annotations"] if a["image_id"] == support["id"])
    out = tmp_path / "preds"
    proc = _run("runtime.predict", "--engine", str(micro.folder), "--support", str(pictures / "chelsea.jpg"),
                "--support-ann", str(ann), "--ann-id", str(support_ann["id"]), "--query", str(queries),
                "--query-ann", str(ann), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "predictions.json").read_text())
    assert len(results) == 4 and {r["category_id"] for r in results} == {3}
    assert all(len(r["keypoints"]) == 3 * len(LAYOUT) and "pck" in r for r in results)
    coco = COCO(str(ann))
    loaded = coco.loadRes(str(out / "predictions.json"))
    assert len(loaded.getAnnIds()) == 4
    assert {r["image_id"] for r in results} == {i["id"] for i in data["images"]} - {support["id"]}
    for img in data["images"]:
        if img is not support:
            assert cv2.imread(str(out / (Path(img["file_name"]).stem + "_pred.png"))) is not None
    assert "all queries: PCK@0.05" in proc.stdout
    # a glob and a file together, one engine: the same keypoints as the folder run
    again = tmp_path / "again"
    proc = _run("runtime.predict", "--engine", str(micro.folder), "--support", str(pictures / "chelsea.jpg"),
                "--support-ann", str(ann), "--ann-id", str(support_ann["id"]), "--query", str(queries / "*.png"),
                "--query", str(queries / "rocket.jpg"), "--query-ann", str(ann), "--out", str(again))
    assert proc.returncode == 0, proc.stderr
    by_name = {r["file_name"]: r["keypoints"] for r in json.loads((again / "predictions.json").read_text())}
    assert len(by_name) == 3
    for r in results:
        if r["file_name"] in by_name:
            np.testing.assert_allclose(by_name[r["file_name"]], r["keypoints"], atol=0.011)


def test_predict_refuses_a_box_for_many_queries_and_an_empty_folder(micro, export_elsewhere, tmp_path):
    ann, pictures = export_elsewhere
    base = ["--engine", str(micro.folder), "--support", str(pictures / "chelsea.jpg"), "--support-ann", str(ann),
            "--ann-id", "9000"]
    proc = _run("runtime.predict", *base, "--query", str(pictures), "--query-box", "0,0,10,10")
    assert proc.returncode == 2 and "--query-box" in proc.stderr and "one --query image" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = _run("runtime.predict", *base, "--query", str(tmp_path / "empty"))
    assert proc.returncode == 2 and "--query" in proc.stderr and "none in it" in proc.stderr


def test_a_model_below_the_copy_support_baseline_is_warned_about(export_elsewhere):
    """The photos' keypoints sit at the same place of every box, so copying the support is nearly perfect there
    (mPCK 95); the demo checkpoint (synthetic shapes only) scores below it and is told so."""
    ann, pictures = export_elsewhere
    proc = _run("fgsa.evaluate", "--ckpt", str(REPO / "fgsa" / "assets" / "fmmp-tiny-demo.pth"), "--data", str(ann),
                "--image-root", str(pictures), "--queries", "4", "--episodes", "1", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "copy-support baseline" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: the model scores below") and "README.md" in lines[0]


def test_pictures_name_the_keypoints_and_parity_shows_several_episodes(micro, synthetic, tmp_path):
    from runtime.predict import name_lines

    assert name_lines(["head", "neck"]) == [("0 head  1 neck", (200, 200, 200))]
    assert len(name_lines([f"k{i}" for i in range(13)])) == 3 and name_lines([f"k{i}" for i in range(19)]) == []
    proc = _run("runtime.parity", "--ckpt", str(micro.ckpt), "--engine", str(micro.folder), "--data",
                str(synthetic), "--episodes", "2", "--queries", "1", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    one = cv2.imread(str(tmp_path / "parity.png"))
    assert one is not None and one.shape[1] >= 2 * 320  # two categories side by side
