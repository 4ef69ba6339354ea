"""runtime.preprocessing: S-shot supports and query crops through fgsa.preprocess, tiled per batch size."""

import numpy as np

from fgsa.preprocess import prepare_instance
from runtime.preprocessing import prepare_queries, prepare_support
from tests.runtime.helpers import queries, support_args


def test_two_shot_support_is_stacked_and_tiled_once_per_batch():
    args = support_args(seed=0, shots=2)
    s = prepare_support(**args, shots=2)
    assert s.support.shape == (1, 2, 3, 256, 256) and s.links.shape == (1, 2, 70, 16) and s.k_c == 7
    for i in range(2):
        ref = prepare_instance(args["images"][i], args["boxes"][i], args["keypoints"][i], args["skeleton"])
        np.testing.assert_array_equal(s.points[0, i], ref["points"])
        np.testing.assert_array_equal(s.visible[0, i], ref["visible"])
    feed = s.batch(3, cached=False)
    assert feed["support"].shape == (3, 2, 3, 256, 256) and feed["support"].flags.c_contiguous
    assert s.batch(3, cached=False) is feed  # kept: no re-tiling per call
    np.testing.assert_array_equal(feed["support_links"][2], s.links[0])


def test_visibility_override_and_two_column_keypoints():
    args = support_args(seed=1)
    xy = args["keypoints"][..., :2]
    vis = np.ones((1, 7), bool)
    vis[0, 2] = False
    a = prepare_support(args["images"], xy, vis, args["skeleton"], args["boxes"])
    b = prepare_support(args["images"], np.concatenate([xy, vis[..., None] * 2.0], -1), None, args["skeleton"],
                        args["boxes"])
    np.testing.assert_array_equal(a.visible, b.visible)
    assert not a.visible[0, 0, 2]


def test_query_crops_default_to_the_whole_image():
    imgs, _ = queries(seed=2, n=2)
    crops, centers, scales = prepare_queries(imgs)
    assert crops.shape == (2, 3, 256, 256) and crops.dtype == np.float32
    h, w = imgs[0].shape[:2]
    np.testing.assert_allclose(centers[0], [(w - 1) / 2, (h - 1) / 2])  # the cleaned box is 1 px smaller
    assert scales.shape == (2, 2)
