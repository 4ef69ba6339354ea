"""A plain COCO keypoint file (any category ids, 1-based skeletons, no splits.json) works as a data folder,
and the example of fgsa/data/README.md reads as documented."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from fgsa.data.layout import open_subset
from fgsa.data.mp100 import MP100Annotations
from fgsa.errors import InputError

REPO = Path(__file__).resolve().parents[3]
NEW_IDS = (501, 777)


def own_coco(src: Path, dst: Path, ids=NEW_IDS) -> tuple[Path, dict]:
    """Two categories of a generated benchmark rewritten as a user's file: other ids, 1-based skeletons,
    no split file. Returns (folder, {new id: old category})."""
    data = json.loads((src / "annotations" / "synthetic_all.json").read_text())
    old = [c for c in data["categories"]][: len(ids)]
    remap = {c["id"]: new for c, new in zip(old, ids)}
    cats = [dict(c, id=remap[c["id"]], skeleton=[[a + 1, b + 1] for a, b in c["skeleton"]]) for c in old]
    anns = [dict(a, category_id=remap[a["category_id"]]) for a in data["annotations"] if a["category_id"] in remap]
    used = {a["image_id"] for a in anns}
    images = [i for i in data["images"] if i["id"] in used]
    (dst / "annotations").mkdir(parents=True)
    for img in images:
        (dst / "images" / img["file_name"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / "images" / img["file_name"], dst / "images" / img["file_name"])
    (dst / "annotations" / "mine.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                               "categories": cats}))
    return dst, {remap[c["id"]]: c for c in old}


def test_own_file_is_a_data_folder_without_split_file(tiny_benchmark, tmp_path):
    folder, old = own_coco(tiny_benchmark.root, tmp_path / "mine")
    for subset in ("train", "val", "test"):
        ann = open_subset(folder, subset)
        assert ann.layout == "own file" and ann.class_ids == NEW_IDS and ann.skeleton_base == 1
        for cid, raw in old.items():
            assert [list(e) for e in ann.categories[cid].skeleton] == raw["skeleton"]  # back to 0-based
            assert len(ann.instances_by_category[cid]) == 6


def test_evaluate_runs_on_an_own_file(tiny_benchmark, tmp_path, capsys):
    from fgsa.evaluate import main

    folder, _ = own_coco(tiny_benchmark.root, tmp_path / "mine")
    assert main(["--data", str(folder), "--baseline-only", "--episodes", "2", "--queries", "1",
                 "--no-progress"]) == 0
    assert "2 categories" in capsys.readouterr().out


def test_readme_example_reads_as_documented(tmp_path):
    text = (REPO / "fgsa" / "data" / "README.md").read_text()
    example = json.loads(re.search(r"<<'JSON'\n(.*?)\nJSON\n", text, re.S).group(1))
    ann = MP100Annotations(example, tmp_path)
    assert ann.class_ids == (501, 777) and ann.skeleton_base == 1 and len(ann) == 4
    assert ann.categories[501].skeleton == ((0, 1), (1, 2), (1, 3))
    assert ann.categories[777].num_keypoints == 5


def test_more_than_70_keypoints_is_refused_for_that_reason_first():
    k = 71
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [0, 0, 50, 50],
                             "keypoints": [10, 10, 2] * k}],
            "categories": [{"id": 3, "name": "centipede", "keypoints": [], "skeleton": []}]}
    with pytest.raises(InputError, match=r"centipede\): expected at most 70 keypoints .*got 71 keypoints"):
        MP100Annotations(data, "/tmp")


@pytest.mark.parametrize("change, match", [
    (lambda a: a.update(bbox=["10", 10, 50, 50]), r"annotation 1\.bbox: expected 4 numbers"),
    (lambda a: a.update(keypoints=[10, "x", 2, 20, 20, 2]), r"annotation 1\.keypoints: expected a flat list of numbers"),
    (lambda a: a.update(keypoints=[10, 10, 2, [20], 20, 2]), r"annotation 1\.keypoints"),
    (lambda a: a.update(category_id="3"), r"integer image_id and category_id"),
])
def test_malformed_annotations_name_the_annotation(change, match):
    ann = {"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 50, 50], "keypoints": [10, 10, 2, 20, 20, 2]}
    change(ann)
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}], "annotations": [ann],
            "categories": [{"id": 3, "name": "stick", "keypoints": ["a", "b"], "skeleton": [[0, 1]]}]}
    with pytest.raises(InputError, match=match):
        MP100Annotations(data, "/tmp")


def test_a_dropped_annotation_says_why():
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
            "annotations": [{"id": 7, "image_id": 1, "category_id": 3, "bbox": [10, 10, 0, 0],
                             "keypoints": [10, 10, 2, 20, 20, 2]},
                            {"id": 8, "image_id": 1, "category_id": 3, "bbox": [10, 10, 50, 50],
                             "keypoints": [0, 0, 0, 0, 0, 0]}],
            "categories": [{"id": 3, "name": "stick", "keypoints": ["a", "b"], "skeleton": [[0, 1]]}]}
    ann = MP100Annotations(data, "/tmp")
    with pytest.raises(InputError, match="7, which was dropped: its bbox .* has zero size"):
        ann.instance(7)
    with pytest.raises(InputError, match="8, which was dropped: it has no labelled keypoint"):
        ann.instance(8)


def test_a_truncated_image_in_a_data_folder_is_one_error_naming_it(tiny_benchmark, tmp_path, capsys):
    from fgsa.evaluate import main

    folder, _ = own_coco(tiny_benchmark.root, tmp_path / "mine")
    victim = sorted((folder / "images").rglob("*.jpg"))[0]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])  # lower half missing: libjpeg alone would only warn
    assert main(["--data", str(folder), "--baseline-only", "--episodes", "2", "--queries", "1",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: image {victim}") and "truncated" in err[0], err
