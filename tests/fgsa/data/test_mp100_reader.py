"""MP-100 reader: round trip on the synthetic set, official filtering/cleaning/order, skeleton bases, splits."""

import contextlib
import copy
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from fgsa.data.mp100 import MP100Annotations, clean_bbox, load_image_rgb, load_mp100
from fgsa.data.mp100_splits import OFFICIAL_SPLITS, official_class_ids
from fgsa.errors import InputError


def _raw(bench):
    return json.loads(bench.ann_file.read_text())


def test_pycocotools_loads_the_synthetic_file(tiny_benchmark):
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(tiny_benchmark.ann_file))
    assert len(coco.getCatIds()) == 6
    assert len(coco.getImgIds()) == len(coco.getAnnIds()) == 36
    assert coco.getAnnIds(imgIds=[1], iscrowd=False) == [1]


def test_round_trip_matches_the_raw_json(tiny_benchmark):
    raw = _raw(tiny_benchmark)
    raw_cats = {c["id"]: c for c in raw["categories"]}
    raw_anns = {a["id"]: a for a in raw["annotations"]}
    test_ids = tiny_benchmark.splits["test"]
    data = load_mp100(tiny_benchmark.ann_file, split_file=tiny_benchmark.split_file, subset="test")
    assert data.class_ids == test_ids and data.skeleton_base == 0
    assert len(data) == 6 * len(test_ids)
    for cid in test_ids:
        cat, rc = data.categories[cid], raw_cats[cid]
        assert cat.num_keypoints == len(rc["keypoints"]) == cat.skeleton_keypoint_num
        assert cat.skeleton == tuple(tuple(p) for p in rc["skeleton"])
        assert len(data.instances_by_category[cid]) == 6
    for inst in data.instances:
        ra = raw_anns[inst.ann_id]
        kp = np.array(ra["keypoints"], dtype=np.float64).reshape(-1, 3)
        np.testing.assert_allclose(inst.keypoints, kp[:, :2], atol=1e-4)
        np.testing.assert_array_equal(inst.visibility, kp[:, 2])
        assert inst.keypoints.dtype == np.float32 and inst.keypoints.shape == (data.categories[inst.category_id].num_keypoints, 2)
        assert inst.clean_bbox == clean_bbox(ra["bbox"], inst.image_width, inst.image_height)
        assert data.instance(inst.ann_id) is inst
    img = load_image_rgb(data.instances[0].image_path)
    assert img.shape == (data.instances[0].image_height, data.instances[0].image_width, 3) and img.dtype == np.uint8
    # the synthetic set is built to exercise padding of big categories
    every = load_mp100(tiny_benchmark.ann_file)
    assert max(c.num_keypoints for c in every.categories.values()) > 30


def test_one_based_skeleton_is_detected_and_normalised(tiny_benchmark):
    raw = _raw(tiny_benchmark)
    zero = MP100Annotations(raw, image_root=tiny_benchmark.image_dir)
    one_based = copy.deepcopy(raw)
    for c in one_based["categories"]:
        c["skeleton"] = [[s + 1, e + 1] for s, e in c["skeleton"]]
    one = MP100Annotations(one_based, image_root=tiny_benchmark.image_dir)
    assert one.skeleton_base == 1
    assert {c: v.skeleton for c, v in one.categories.items()} == {c: v.skeleton for c, v in zero.categories.items()}
    assert MP100Annotations(one_based, image_root="x", skeleton_base=1).categories == one.categories
    with pytest.raises(InputError, match="skeleton"):  # index K does not exist 0-based
        MP100Annotations(one_based, image_root="x", skeleton_base=0)
    mixed = copy.deepcopy(raw)
    mixed["categories"][0]["skeleton"] = one_based["categories"][0]["skeleton"]
    with pytest.raises(InputError, match="one index base"):
        MP100Annotations(mixed, image_root="x")


def _tiny_file():
    """Hand-made file exercising the official filters and order (2 images, 1 category of 3 keypoints)."""
    kp = [5, 6, 2, 7, 8, 1, 0, 0, 0]
    anns = [
        dict(id=50, image_id=2, category_id=4, bbox=[-5, 10, 50, 30], keypoints=kp, iscrowd=0),
        dict(id=40, image_id=2, category_id=4, bbox=[1, 1, 10, 10], keypoints=kp, iscrowd=1),     # crowd
        dict(id=30, image_id=1, category_id=4, bbox=[1, 1, 10, 10], keypoints=[0] * 9),           # all zero
        dict(id=20, image_id=1, category_id=4, bbox=[1, 1, 1, 10], keypoints=kp),                 # w - 1 = 0
        dict(id=10, image_id=1, category_id=4, bbox=[1, 1, 10, 10], keypoints=kp, num_keypoints=0),
        dict(id=11, image_id=1, category_id=4, bbox=[1, 1, 10, 10], keypoints=kp, area=0),
        dict(id=12, image_id=1, category_id=4, bbox=[1, 2, 10, 10], keypoints=kp),                # kept
        dict(id=60, image_id=2, category_id=9, bbox=[1, 1, 10, 10], keypoints=kp),                # other class
    ]
    return dict(
        images=[dict(id=2, file_name="b.jpg", width=40, height=100), dict(id=1, file_name="a.jpg", width=64, height=64)],
        annotations=anns,
        categories=[dict(id=4, name="tri", keypoints=["a", "b", "c"], skeleton=[[0, 1], [1, 2]]),
                    dict(id=9, name="bar", keypoints=["a", "b", "c"], skeleton=[[0, 1]])])


def test_official_filters_cleaning_and_order():
    data = MP100Annotations(_tiny_file(), image_root="/imgs", class_ids=[4])
    assert data.instances_by_category == {4: [50, 12]}  # image file order, then annotation file order
    first = data.instance(50)
    assert first.clean_bbox == (0.0, 10.0, 39.0, 29.0)  # x1 = 0, x2 = min(W-1, 0+49) = 39, y2 = 10+29
    assert first.image_path == "/imgs/b.jpg"
    np.testing.assert_array_equal(first.visible, [True, True, False])
    assert data.categories[9].skeleton_keypoint_num == 2  # K_c from the skeleton, not the names (D5)
    with pytest.raises(InputError):
        data.instance(40)


def test_selection_errors_are_clear():
    f = _tiny_file()
    with pytest.raises(InputError, match="unknown ids"):
        MP100Annotations(f, image_root="x", class_ids=[4, 77])
    bad = copy.deepcopy(f)
    bad["categories"][1]["skeleton"] = []
    with pytest.raises(InputError, match="skeleton"):
        MP100Annotations(bad, image_root="x", class_ids=[9])
    assert len(MP100Annotations(bad, image_root="x", class_ids=[4])) == 2  # unselected: not checked
    with pytest.raises(InputError, match="at most one"):
        load_mp100(f, "x", split=1, subset="test", class_ids=[4])
    with pytest.raises(InputError, match="unknown ids"):
        load_mp100(f, "x", split=1, subset="test")
    with pytest.raises(InputError, match="multiple of 3"):
        broken = copy.deepcopy(f)
        broken["annotations"][0]["keypoints"] = [1, 2]
        MP100Annotations(broken, image_root="x")
    with pytest.raises(InputError, match="image_root"):
        MP100Annotations(f)


@pytest.mark.parametrize("where, value, message", [
    (("categories", 0, "skeleton"), [[float("inf"), 1]], "integer index pairs"),  # json reads Infinity
    (("categories", 0, "skeleton"), [[0.5, 1]], "integer index pairs"),
    (("annotations", 0, "keypoints"), [5, 6, 2, 1e300, 8, 1, 0, 0, 0], "float32 range"),
    (("annotations", 0, "keypoints"), [5, 6, 1.5, 7, 8, 1, 0, 0, 0], "visibility flags 0, 1 or 2"),
    (("annotations", 0, "keypoints"), [5, 6, 2, 7, 8, 1e300, 0, 0, 0], "visibility flags 0, 1 or 2"),
])
def test_numbers_that_would_be_read_as_something_else_are_refused(where, value, message):
    """Values JSON allows but the reader would bend (Infinity in a skeleton, 1e300 as float32, visibility 1.5)."""
    f = _tiny_file()
    f[where[0]][where[1]][where[2]] = value
    with pytest.raises(InputError, match=message):
        MP100Annotations(f, image_root="x", class_ids=[4])


def test_official_split_lists():
    assert official_class_ids(1, "test")[:4] == (10, 77, 24, 47)
    for split in range(1, 6):
        parts = [official_class_ids(split, s) for s in ("train", "val", "test")]
        assert [len(p) for p in parts] == [70, 10, 20]
        assert sorted(parts[0] + parts[1] + parts[2]) == list(range(1, 101))
    tests = [set(OFFICIAL_SPLITS[s]["test"]) for s in range(1, 6)]
    assert all(not (a & b) for i, a in enumerate(tests) for b in tests[i + 1:])  # test sets are disjoint
    with pytest.raises(InputError):
        official_class_ids(6, "test")
    with pytest.raises(InputError):
        official_class_ids(1, "testing")
