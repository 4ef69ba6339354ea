"""runtime.predict's rough edges: errors name the CLI flag, warnings are one line, boxes may start with a
minus, and the parity CLI runs on a user's own COCO file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from runtime import parity, predict
from tests.runtime.test_hostile_files import _argv, _one_error, shot  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[2]


def test_negative_query_box_needs_no_equals_sign(micro, shot, capsys):
    out = shot / "o.png"
    assert predict.main(_argv(micro.folder, shot, **{"--query-box": "-20,10,150,100", "--out": out})) == 0
    assert cv2.imread(str(out)) is not None


@pytest.mark.parametrize("over, needles", [
    ({"--threads": "0"}, ("--threads", "got 0")),
    ({"--threads": "-2"}, ("--threads",)),
    ({"--ann-id": "3"}, ("--ann-id", "small-format")),
    ({"--engine": "/nonexistent/folder"}, ("--engine", "does not exist")),
    ({"--query-box": "500,500,10,10"}, ("--query-box",)),
    ({"--max-image-pixels": "100"}, ("--support", "at most 100 pixels")),
])
def test_errors_name_the_cli_flag(micro, shot, capsys, over, needles):
    assert predict.main(_argv(micro.folder, shot, **over)) == 2
    _one_error(capsys, *needles)


def test_support_box_errors_name_the_annotation_file(micro, shot, capsys):
    ann = json.loads((shot / "sup.json").read_text())
    (shot / "sup.json").write_text(json.dumps(dict(ann, bbox=[900, 900, 10, 10])))
    assert predict.main(_argv(micro.folder, shot)) == 2
    _one_error(capsys, f"--support-ann {shot / 'sup.json'} bbox")


@pytest.mark.parametrize("keypoints", [[[1, 2, 2], ["3", 4, 2]], [[1, 2, True], [3, 4, 2]], "12"])
def test_non_numeric_support_keypoints_are_one_error(micro, shot, capsys, keypoints):
    (shot / "sup.json").write_text(json.dumps({"keypoints": keypoints, "skeleton": [[0, 1]]}))
    assert predict.main(_argv(micro.folder, shot)) == 2
    _one_error(capsys, "--support-ann", "keypoints")


def test_far_support_keypoints_get_a_one_line_warning(micro, shot, capsys):
    ann = json.loads((shot / "sup.json").read_text())
    ann["keypoints"][2] = [4000, 90, 2]  # thousands of pixels right of a 160 px image, marked visible
    (shot / "sup.json").write_text(json.dumps(ann))
    # a subprocess: pytest records warnings instead of letting the CLI print them
    proc = subprocess.run([sys.executable, "-m", "runtime.predict", *_argv(micro.folder, shot, **{"--out": shot / "o.png"})],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 0 and len(err) == 1 and err[0].startswith("warning: --support-ann") and "(4000, 90)" in err[0], err


def test_parity_runs_on_an_own_coco_file(micro, synthetic, tmp_path):
    from tests.fgsa.data.test_own_coco import own_coco

    folder, _ = own_coco(synthetic, tmp_path / "mine")
    out = tmp_path / "p"
    rc = parity.main(["--ckpt", str(micro.ckpt), "--onnx", str(micro.folder), "--data", str(folder),
                      "--subset", "test", "--episodes", "1", "--queries", "1", "--out", str(out)])
    report = json.loads((out / "parity.json").read_text())
    assert rc == 0 and report["verdict"] == "PASS" and report["categories"] == [501, 777]


def test_demo_grid_shows_several_held_out_queries_with_pck(micro, synthetic, tmp_path):
    import demo

    png = demo.prediction_grid(micro.folder, synthetic, tmp_path / "grid.png", categories=2, queries=2)
    img = cv2.imread(str(png))
    # 2 categories x 2 queries in one row of 4 tiles (each at least 240 px wide after enlarge), plus the legend
    assert img is not None and img.shape[1] >= 4 * 240 and img.shape[0] >= 240


def test_parity_names_the_flag_of_a_missing_graph(micro, synthetic, tmp_path, capsys):
    rc = parity.main(["--ckpt", str(micro.ckpt), "--onnx", str(tmp_path / "none.onnx"), "--data", str(synthetic),
                      "--out", str(tmp_path / "p")])
    assert rc == 2
    _one_error(capsys, "error: --onnx: expected an export folder")


def test_legend_sits_above_the_picture_and_is_never_cut():
    import numpy as np

    from runtime.draw import legend

    img = np.full((40, 50, 3), 200, np.uint8)
    text = "prediction: 17 keypoints (onnxruntime)"
    out = legend(img, [(text, (255, 255, 255))])
    width = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)[0][0]
    assert out.shape[1] >= width + 4 > img.shape[1]  # widened for the text
    band = out.shape[0] - img.shape[0]
    np.testing.assert_array_equal(out[band:, :50], img)  # the picture itself untouched (keypoints near the top)


def test_show_support_draws_every_shot(micro, shot, tmp_path_factory):
    from export.onnx import ExportOptions, export_onnx

    folder = tmp_path_factory.mktemp("micro_s2")
    export_onnx(ExportOptions(ckpt=micro.ckpt, out=folder, attention="portable", shots=2, parity=False, quiet=True))
    cv2.imwrite(str(shot / "sup2.png"), cv2.resize(cv2.imread(str(shot / "sup.png")), (200, 150)))
    out = shot / "side.png"
    argv = ["--engine", str(folder), "--support", str(shot / "sup.png"), "--support-ann", str(shot / "sup.json"),
            "--support", str(shot / "sup2.png"), "--support-ann", str(shot / "sup.json"),
            "--query", str(shot / "q.png"), "--show-support", "--out", str(out)]
    assert predict.main(argv) == 0
    img, sup2 = cv2.imread(str(out)), cv2.imread(str(shot / "sup2.png"))
    # support 1 (160 px) | support 2 (200 px) | query (widened for its legend), 4 px gaps; 20 px legend bands
    assert img.shape[1] >= 160 + 200 + 160 + 12
    assert abs(img[20:170, 164:364].astype(int) - sup2).mean() < 10  # the second shot, keypoints drawn on it


def test_support_annotation_of_another_image_is_refused(micro, shot, capsys):
    from tests.runtime.test_annotations import coco_two_images

    coco = coco_two_images(shot)
    (shot / "skier.png").write_bytes((shot / "sup.png").read_bytes())
    code = predict.main(_argv(micro.folder, shot, **{"--support": shot / "skier.png", "--support-ann": coco,
                                                     "--ann-id": 5}))
    assert code == 2
    _one_error(capsys, "--ann-id", "skier.png", "photos/fly.png")
    assert not (shot / "q_pred.png").exists()
