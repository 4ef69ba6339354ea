"""fgsa.data.layout: which annotation file and category list a --data folder yields."""

import json

import pytest

from fgsa.data.layout import open_subset
from fgsa.data.mp100_splits import official_class_ids
from fgsa.errors import InputError


def _unified(num_categories=100):
    """A minimal MP-100-like file: every category has 2 keypoints, one edge and one annotated image."""
    cats, images, anns = [], [], []
    for cid in range(1, num_categories + 1):
        cats.append({"id": cid, "name": f"c{cid}", "keypoints": ["a", "b"], "skeleton": [[0, 1]]})
        images.append({"id": cid, "file_name": f"c{cid}/0.jpg", "width": 100, "height": 100})
        anns.append({"id": cid, "image_id": cid, "category_id": cid, "bbox": [10, 10, 50, 50],
                     "keypoints": [20, 20, 2, 40, 40, 2], "num_keypoints": 2, "iscrowd": 0, "area": 2500})
    return {"images": images, "annotations": anns, "categories": cats}


def test_split_file_layout(tiny_benchmark):
    ann = open_subset(tiny_benchmark.root, "val")
    assert ann.class_ids == tiny_benchmark.splits["val"]
    assert str(ann.image_root) == str(tiny_benchmark.root / "images")


@pytest.mark.parametrize("name", ["mp100_all_link_0412.json", "mp100_split2_test.json"])
def test_official_layouts_use_the_official_category_order(tmp_path, name):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / name).write_text(json.dumps(_unified()))
    ann = open_subset(tmp_path, "test", split=2)
    assert ann.class_ids == official_class_ids(2, "test")
    assert len(ann) == 20


def test_unrecognised_folders_are_explained(tmp_path):
    with pytest.raises(InputError, match="annotations"):
        open_subset(tmp_path, "test")
    (tmp_path / "annotations").mkdir()
    for name in ("a.json", "b.json"):
        (tmp_path / "annotations" / name).write_text("{}")
    with pytest.raises(InputError, match="single unified"):
        open_subset(tmp_path, "test")
    with pytest.raises(InputError, match="subset"):
        open_subset(tmp_path, "testing")
