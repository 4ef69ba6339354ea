"""Crafted files against the CLIs: image bombs, outputs through links or onto folders, annotation files that
escape their folder or nest without end. Each gets one `error:` line and exit 2; nothing is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from fgsa.data.mp100 import MP100Annotations
from fgsa.errors import InputError
from runtime import predict
from tests.fgsa.files.conftest import jpeg_bomb, photo, png_bomb

REPO = Path(__file__).resolve().parents[2]
ONE_GB = 1 << 30


@pytest.fixture()
def shot(tmp_path):
    """A valid support image + small-format annotation and a query image."""
    cv2.imwrite(str(tmp_path / "sup.png"), photo(1))
    cv2.imwrite(str(tmp_path / "q.png"), photo(2))
    (tmp_path / "sup.json").write_text(json.dumps({"keypoints": [[30, 40, 2], [90, 60, 2], [120, 100, 2]],
                                                   "skeleton": [[0, 1], [1, 2]]}))
    return tmp_path


def _argv(engine, d, **over):
    args = {"--engine": str(engine), "--support": str(d / "sup.png"), "--support-ann": str(d / "sup.json"),
            "--query": str(d / "q.png")}
    args.update(over)
    return [x for k, v in args.items() if v is not None for x in (k, str(v))]


def _one_error(capsys, *needles) -> str:
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.mark.skipif(not Path("/usr/bin/prlimit").exists(), reason="prlimit (util-linux) not installed")
@pytest.mark.parametrize("make, ext", [(jpeg_bomb, ".jpg"), (png_bomb, ".png")])
@pytest.mark.parametrize("side", [30000, 60000])
@pytest.mark.parametrize("flag", ["--query", "--support"])
def test_image_bombs_one_error_line_under_1gb(micro, shot, make, ext, side, flag):
    bomb = shot / f"bomb{side}{ext}"
    bomb.write_bytes(make(side))
    argv = _argv(micro.folder, shot, **{flag: bomb, "--out": shot / "out.png"})
    proc = subprocess.run(["prlimit", f"--as={ONE_GB}", "--", sys.executable, "-m", "runtime.predict", *argv],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {flag} {bomb}: expected at most 100,000,000 pixels, got {side} x {side}")
    assert not (shot / "out.png").exists()


def test_predict_refuses_to_write_through_a_planted_link(micro, shot, capsys, monkeypatch):
    victim = shot / "victim.txt"
    victim.write_text("precious")
    monkeypatch.chdir(shot)
    (shot / "out" / "predict").mkdir(parents=True)
    planted = shot / "out" / "predict" / "q_pred.png"  # the default output name
    os.symlink(victim, planted)
    assert predict.main(_argv(micro.folder, shot)) == 2
    _one_error(capsys, "--out", "symbolic link", "victim.txt")
    assert victim.read_text() == "precious" and planted.is_symlink()


@pytest.mark.parametrize("out, needles", [
    ("adir", ("--out", "an existing directory")),
    ("noext", ("--out", "ending in one of .png")),
    ("pic.txt", ("--out", "ending in one of .png")),
    ("afile/pic.png", ("--out", "is a file")),
])
def test_predict_bad_out_paths_are_one_line(micro, shot, capsys, out, needles):
    (shot / "adir").mkdir()
    (shot / "afile").write_text("x")
    assert predict.main(_argv(micro.folder, shot, **{"--out": shot / out})) == 2
    _one_error(capsys, *needles)


def test_predict_writes_nothing_when_the_json_cannot_be_written(micro, shot, capsys):
    (shot / "afile").write_text("x")
    argv = _argv(micro.folder, shot, **{"--out": shot / "new" / "pic.png", "--json": shot / "afile" / "k.json"})
    assert predict.main(argv) == 2
    _one_error(capsys, "--json", "afile is a file")
    assert not (shot / "new").exists()
    # and a good call writes both, in a folder it creates
    argv = _argv(micro.folder, shot, **{"--out": shot / "new" / "pic.png", "--json": shot / "new2" / "k.json"})
    assert predict.main(argv) == 0
    assert cv2.imread(str(shot / "new" / "pic.png")) is not None
    assert len(json.loads((shot / "new2" / "k.json").read_text())["keypoints"]) == 3


def test_deeply_nested_support_json_is_one_error(micro, shot, capsys):
    (shot / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    assert predict.main(_argv(micro.folder, shot, **{"--support-ann": shot / "deep.json"})) == 2
    _one_error(capsys, "--support-ann", "nested at most 64 levels")


def _coco(file_name: str) -> dict:
    return {"images": [{"id": 1, "file_name": file_name, "width": 160, "height": 120}],
            "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [10, 10, 100, 80],
                             "keypoints": [20, 20, 2, 60, 60, 2]}],
            "categories": [{"id": 1, "name": "thing", "keypoints": ["a", "b"], "skeleton": [[0, 1]]}]}


@pytest.mark.parametrize("name", ["../outside/secret.png", "../../outside/secret.png", "/etc/passwd",
                                  "sub/../../secret.png"])
def test_annotation_file_names_stay_inside_the_image_root(tmp_path, name):
    (tmp_path / "images").mkdir()
    with pytest.raises(InputError, match="file_name") as info:
        MP100Annotations(_coco(name), tmp_path / "images")
    assert "image folder" in str(info.value)


def test_links_out_of_the_image_root_are_refused(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "outside").mkdir()
    cv2.imwrite(str(tmp_path / "outside" / "secret.png"), photo(3))
    os.symlink(tmp_path / "outside" / "secret.png", tmp_path / "images" / "link.png")
    cv2.imwrite(str(tmp_path / "images" / "inside.png"), photo(4))
    with pytest.raises(InputError, match="links out of it are refused"):
        MP100Annotations(_coco("link.png"), tmp_path / "images")
    ann = MP100Annotations(_coco("inside.png"), tmp_path / "images")
    assert ann.instance(5).image_path == str(tmp_path / "images" / "inside.png")
