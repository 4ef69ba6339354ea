"""prepare_instance end to end: shapes, consistency with the building blocks, K_c policy, decode round trip."""

import numpy as np
import pytest

from fgsa.preprocess import (bbox_to_center_scale, bfs_link_table, category_keypoint_count, clean_bbox,
                             crop_image, decode_points, draw_mixup, eqdiv_padding, keypoints_to_crop,
                             mixup_padding, normalize_image, prepare_instance)


@pytest.fixture
def instance():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    bbox = [60.0, 40.0, 150.0, 120.0]
    k = 12
    xy = np.stack([rng.uniform(65, 205, k), rng.uniform(45, 155, k)], 1)
    v = rng.choice([0, 1, 2], k, p=[0.2, 0.4, 0.4]).astype(float)
    xy[v == 0] = 0  # unannotated keypoints are (0, 0, 0) in COCO files
    skel = [[i, i + 1] for i in range(k - 1)] + [[0, 6]]
    return img, bbox, np.c_[xy, v], skel


def test_outputs_shapes_dtypes(instance):
    img, bbox, kxyv, skel = instance
    out = prepare_instance(img, bbox, kxyv, skel)
    expected = {"image": ((3, 256, 256), np.float32), "points": ((70, 2), np.float32), "visible": ((70,), bool),
                "links": ((70, 16), np.int32), "link_table": ((2, 70, 16), np.int64),
                "center": ((2,), np.float32), "scale": ((2,), np.float32), "bbox": ((4,), np.float64)}
    for key, (shape, dtype) in expected.items():
        assert out[key].shape == shape and out[key].dtype == dtype, key
    assert out["K_c"] == 12 and out["skeleton"].shape[1] == 2


def test_matches_the_building_blocks(instance):
    img, bbox, kxyv, skel = instance
    out = prepare_instance(img, bbox, kxyv, skel)
    box = clean_bbox(bbox, 320, 240)
    c, s = bbox_to_center_scale(box)
    np.testing.assert_array_equal(out["center"], c)
    np.testing.assert_array_equal(out["scale"], s)
    np.testing.assert_array_equal(out["image"], normalize_image(crop_image(img, c, s)))
    pts, vis = keypoints_to_crop(kxyv[:, :2], kxyv[:, 2] > 0, c, s)
    padded = eqdiv_padding(pts / np.float32(256), vis, skel)
    np.testing.assert_array_equal(out["points"], padded.points)
    np.testing.assert_array_equal(out["visible"], padded.visible)
    np.testing.assert_array_equal(out["skeleton"], padded.skeleton)
    np.testing.assert_array_equal(out["link_table"], bfs_link_table(padded.visible, padded.skeleton))
    np.testing.assert_array_equal(out["links"], out["link_table"][0])
    # annotation flags v = 1 and v = 2 are both visible; v = 0 is not
    np.testing.assert_array_equal(out["visible"][:12], kxyv[:, 2] > 0)


def test_decode_round_trip_of_visible_keypoints(instance):
    img, bbox, kxyv, skel = instance
    out = prepare_instance(img, bbox, kxyv, skel)
    back = decode_points(out["points"][None, :12], out["center"][None], out["scale"][None])[0]
    vis = kxyv[:, 2] > 0
    np.testing.assert_allclose(back[vis], kxyv[vis, :2], atol=1e-3)


def test_keypoint_count_policy_with_trailing_unlinked_keypoints(instance):
    img, bbox, kxyv, _ = instance
    skel = [[0, 1], [1, 2], [2, 7]]  # keypoints 8..11 are in no edge
    assert category_keypoint_count(12, skel) == 12
    assert category_keypoint_count(12, skel, "skeleton") == 8
    ours = prepare_instance(img, bbox, kxyv, skel)
    official = prepare_instance(img, bbox, kxyv, skel, keypoint_count="skeleton")
    assert ours["K_c"] == 12 and official["K_c"] == 8
    np.testing.assert_array_equal(ours["points"][:8], official["points"][:8])
    # the official definition pads over ids 8..11; ours keeps the annotated keypoints there
    np.testing.assert_array_equal(ours["visible"][8:12], kxyv[8:12, 2] > 0)
    assert not np.array_equal(ours["points"][8:12], official["points"][8:12])


def test_training_options_rotation_scale_and_mixup(instance):
    img, bbox, kxyv, skel = instance
    draws = draw_mixup(len(skel), np.random.default_rng(3))
    out = prepare_instance(img, bbox, kxyv, skel, rotation=20.0, scale_factor=1.1, mixup=draws)
    c, s = bbox_to_center_scale(clean_bbox(bbox, 320, 240))
    np.testing.assert_array_equal(out["scale"], s * 1.1)
    pts, vis = keypoints_to_crop(kxyv[:, :2], kxyv[:, 2] > 0, c, s * 1.1, rot=20.0)
    padded = mixup_padding(pts / np.float32(256), vis, skel, draws)
    np.testing.assert_array_equal(out["points"], padded.points)
    np.testing.assert_array_equal(out["skeleton"], padded.skeleton)
    assert not np.array_equal(out["image"], prepare_instance(img, bbox, kxyv, skel)["image"])
