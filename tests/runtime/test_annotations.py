"""runtime.annotations: support annotation files (small JSON) that JSON allows but the reader would bend."""

import json

import pytest

from fgsa.errors import InputError
from runtime.annotations import read_support_annotation

SMALL = {"keypoints": [[10, 10, 2], [20, 30, 2], [40, 20, 1]], "skeleton": [[0, 1], [1, 2]]}


@pytest.mark.parametrize("skeleton", [[[0, float("inf")]], [[float("-inf"), 1]], [[0, 1.5]]])
def test_non_integer_skeleton_entries_are_one_error(tmp_path, skeleton):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({**SMALL, "skeleton": skeleton}))  # json writes Infinity, Python reads it back
    with pytest.raises(InputError, match="skeleton: expected \\[\\[a, b\\], ...\\] integer pairs"):
        read_support_annotation(path)


def test_the_good_file_reads(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SMALL))
    ann = read_support_annotation(path)
    assert ann.skeleton.tolist() == [[0, 1], [1, 2]] and ann.keypoints.shape == (3, 3)


def coco_two_images(folder):
    """A COCO keypoint file written elsewhere: a skier (3 keypoints) and a fly (4), ids that are not 1, 2."""
    cats = [{"id": 7, "name": "person", "keypoints": ["a", "b", "c"], "skeleton": [[1, 2], [2, 3]]},
            {"id": 12, "name": "fly", "keypoints": ["w", "x", "y", "z"], "skeleton": [[1, 2], [3, 4]]}]
    images = [{"id": 100, "file_name": "photos/skier.png", "width": 160, "height": 120},
              {"id": 200, "file_name": "photos/fly.png", "width": 160, "height": 120}]
    anns = [{"id": 4, "image_id": 100, "category_id": 7, "bbox": [10, 10, 120, 100], "area": 12000, "iscrowd": 0,
             "num_keypoints": 3, "keypoints": [30, 40, 2, 90, 60, 2, 120, 100, 2]},
            {"id": 5, "image_id": 200, "category_id": 12, "bbox": [5, 5, 140, 100], "area": 14000, "iscrowd": 0,
             "num_keypoints": 4, "keypoints": [20, 20, 2, 40, 30, 2, 60, 40, 2, 80, 50, 2]}]
    path = folder / "coco.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def test_an_annotation_of_another_image_is_an_error_naming_both(tmp_path):
    coco = coco_two_images(tmp_path)
    with pytest.raises(InputError) as info:
        read_support_annotation(coco, 5, str(tmp_path / "skier.png"))
    text = str(info.value)
    assert "--ann-id" in text and "skier.png" in text and "photos/fly.png" in text and "annotation 5" in text
    # its own image (any folder: the file name is what the COCO file records) and no image name both read
    assert read_support_annotation(coco, 5, str(tmp_path / "elsewhere" / "fly.png")).keypoints.shape == (4, 3)
    assert read_support_annotation(coco, 4, str(tmp_path / "skier.png")).keypoints.shape == (3, 3)
    assert read_support_annotation(coco, 4).names == ["a", "b", "c"]
