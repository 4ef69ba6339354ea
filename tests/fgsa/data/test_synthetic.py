"""Synthetic CAPE benchmark: byte determinism, annotation sanity, CLI."""

import hashlib
import json

import numpy as np

from fgsa.data.mp100_splits import load_split_file
from fgsa.data.synthetic import SyntheticConfig, generate, main

SMALL = dict(train_categories=2, val_categories=0, test_categories=1, instances_per_category=4)


def _hashes(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_byte_deterministic_for_a_seed_via_api_and_cli(tmp_path):
    a = generate(tmp_path / "a", SyntheticConfig(seed=3, **SMALL))
    assert main(["--out", str(tmp_path / "b"), "--seed", "3", "--train-categories", "2", "--val-categories", "0",
                 "--test-categories", "1", "--instances-per-category", "4"]) == 0
    ha, hb = _hashes(a.root), _hashes(tmp_path / "b")
    assert len(ha) == 3 * 4 + 2 and ha == hb
    c = generate(tmp_path / "c", SyntheticConfig(seed=4, **SMALL))
    hc = _hashes(c.root)
    assert hc["annotations/synthetic_all.json"] != ha["annotations/synthetic_all.json"]
    assert sum(hc[k] != ha.get(k) for k in hc if k.endswith(".jpg")) == 12


def test_annotations_are_consistent_with_images_and_skeletons(tiny_benchmark):
    raw = json.loads(tiny_benchmark.ann_file.read_text())
    images = {i["id"]: i for i in raw["images"]}
    cats = {c["id"]: c for c in raw["categories"]}
    splits = load_split_file(tiny_benchmark.split_file)
    assert splits == tiny_benchmark.splits
    assert sorted(sum(splits.values(), ())) == sorted(cats)
    flags = []
    for ann in raw["annotations"]:
        img, cat = images[ann["image_id"]], cats[ann["category_id"]]
        kp = np.array(ann["keypoints"]).reshape(-1, 3)
        k = len(cat["keypoints"])
        assert kp.shape == (k, 3) and 5 <= k <= 40
        assert ann["num_keypoints"] == int((kp[:, 2] > 0).sum()) >= (k + 1) // 2
        x, y, w, h = ann["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= img["width"] and y + h <= img["height"]
        on = kp[kp[:, 2] > 0, :2]
        assert np.all(on[:, 0] >= x) and np.all(on[:, 0] <= x + w) and np.all(on[:, 1] >= y) and np.all(on[:, 1] <= y + h)
        assert np.all(kp[kp[:, 2] == 0, :2] == 0)  # unlabelled points are written as (0, 0)
        flags.append(kp[:, 2])
        assert ann["iscrowd"] == 0
    assert {0, 1, 2} >= set(np.concatenate(flags).tolist()) and 1 in np.concatenate(flags)
    for cat in cats.values():  # every skeleton is a connected graph over all keypoints, 0-based
        k, edges = len(cat["keypoints"]), cat["skeleton"]
        assert len(edges) >= k - 1 and min(map(min, edges)) == 0 and max(map(max, edges)) == k - 1
        seen, todo = {0}, [0]
        while todo:
            n = todo.pop()
            for s, e in edges:
                for a, b in ((s, e), (e, s)):
                    if a == n and b not in seen:
                        seen.add(b)
                        todo.append(b)
        assert seen == set(range(k))


def test_markers_make_keypoints_differ_from_their_surroundings(tiny_benchmark):
    """A visible keypoint sits on a drawn marker: the images are not blank around keypoints."""
    import cv2

    raw = json.loads(tiny_benchmark.ann_file.read_text())
    ann, img_info = raw["annotations"][0], raw["images"][0]
    img = cv2.imread(str(tiny_benchmark.image_dir / img_info["file_name"]))
    assert img.shape[:2] == (img_info["height"], img_info["width"])
    kp = np.array(ann["keypoints"]).reshape(-1, 3)
    stds = [img[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4].std() for x, y, v in kp if v == 2
            and 3 <= x < img.shape[1] - 4 and 3 <= y < img.shape[0] - 4]
    assert len(stds) > 0 and np.median(stds) > 10
