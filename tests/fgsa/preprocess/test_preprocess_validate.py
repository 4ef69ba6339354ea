"""Every invalid input raises fgsa.errors.InputError naming the offending argument."""

import numpy as np
import pytest

from fgsa.errors import InputError
from fgsa.preprocess import (MixupDraws, bfs_link_table, clean_bbox, crop_image, decode_points, draw_mixup,
                             eqdiv_padding, keypoints_to_crop, mixup_padding, prepare_instance)

PTS = np.random.default_rng(0).random((5, 2)).astype(np.float32)
VIS = np.ones(5, bool)
SKEL = [[0, 1], [1, 2], [2, 3], [3, 4]]
IMG = np.zeros((60, 80, 3), np.uint8)
KXYV = np.array([[10, 10, 2], [20, 30, 1], [40, 20, 0], [30, 30, 2], [50, 40, 2]], float)
NAN_PTS = PTS.copy()
NAN_PTS[2, 1] = np.nan
INF_PTS = PTS.copy()
INF_PTS[0, 0] = np.inf


def good_draws(**over):
    d = draw_mixup(4, 0)._asdict()
    d.update(over)
    return MixupDraws(**d)


CASES = {
    # keypoint count
    "too many keypoints (eqdiv)": (lambda: eqdiv_padding(np.zeros((71, 2)), np.ones(71, bool), [[0, 70]]),
                                   "keypoints (keypoint count)"),
    "too many keypoints (instance)": (lambda: prepare_instance(IMG, [0, 0, 50, 50], np.zeros((71, 3)), [[0, 1]]),
                                      "keypoints_xyv (keypoint count)"),
    # skeleton
    "skeleton index too large": (lambda: eqdiv_padding(PTS, VIS, [[0, 5]]), "skeleton"),
    "skeleton negative index": (lambda: eqdiv_padding(PTS, VIS, [[0, -1]]), "skeleton"),
    "skeleton float indices": (lambda: eqdiv_padding(PTS, VIS, [[0.0, 1.5]]), "skeleton"),
    "skeleton bool indices": (lambda: eqdiv_padding(PTS, VIS, [[True, False]]), "skeleton"),
    "skeleton empty": (lambda: eqdiv_padding(PTS, VIS, []), "skeleton"),
    "skeleton triples": (lambda: mixup_padding(PTS, VIS, [[0, 1, 2]], draws=0), "skeleton"),
    "skeleton ragged": (lambda: eqdiv_padding(PTS, VIS, [[0, 1], [2]]), "skeleton"),
    "skeleton empty (links)": (lambda: bfs_link_table(VIS, []), "skeleton"),
    "skeleton beyond annotation": (lambda: prepare_instance(IMG, [0, 0, 50, 50], KXYV, [[0, 5]]), "skeleton"),
    # points
    "NaN point": (lambda: eqdiv_padding(NAN_PTS, VIS, SKEL), "keypoints"),
    "inf point": (lambda: mixup_padding(INF_PTS, VIS, SKEL, draws=0), "keypoints"),
    "points rank 1": (lambda: eqdiv_padding(PTS.ravel(), VIS, SKEL), "keypoints"),
    "points (K,3)": (lambda: eqdiv_padding(np.zeros((5, 3)), VIS, SKEL), "keypoints"),
    "points strings": (lambda: eqdiv_padding(np.full((5, 2), "a"), VIS, SKEL), "keypoints"),
    "points bool": (lambda: eqdiv_padding(np.ones((5, 2), bool), VIS, SKEL), "keypoints"),
    "NaN keypoint xyv": (lambda: prepare_instance(IMG, [0, 0, 50, 50], np.where(KXYV == 20, np.nan, KXYV), SKEL),
                         "keypoints_xyv"),
    "negative visibility flag": (lambda: prepare_instance(IMG, [0, 0, 50, 50], KXYV * [1, 1, -1], SKEL),
                                 "keypoints_xyv"),
    "keypoints_xy NaN (crop)": (lambda: keypoints_to_crop(NAN_PTS, VIS, [10, 10], [1, 1]), "keypoints_xy"),
    # visibility
    "visible wrong length": (lambda: eqdiv_padding(PTS, np.ones(4, bool), SKEL), "visible"),
    "visible not 0/1": (lambda: eqdiv_padding(PTS, [0, 1, 2, 1, 1], SKEL), "visible"),
    "visible rank 2 (links)": (lambda: bfs_link_table(np.ones((5, 1), bool), SKEL), "visible"),
    # boxes
    "bbox zero width": (lambda: clean_bbox([10, 10, 0, 5], 100, 100), "bbox_xywh"),
    "bbox negative height": (lambda: prepare_instance(IMG, [10, 10, 5, -5], KXYV, SKEL), "bbox_xywh"),
    "bbox NaN": (lambda: clean_bbox([10, np.nan, 5, 5], 100, 100), "bbox_xywh"),
    "bbox 3 numbers": (lambda: clean_bbox([10, 10, 5], 100, 100), "bbox_xywh"),
    "bbox outside image": (lambda: prepare_instance(IMG, [90, 10, 20, 20], KXYV, SKEL), "bbox_xywh"),
    "bbox under one pixel": (lambda: clean_bbox([10, 10, 0.5, 20], 100, 100), "bbox_xywh"),
    # images and sizes
    "image float": (lambda: crop_image(IMG.astype(np.float32), [10, 10], [1, 1]), "img_rgb"),
    "image gray": (lambda: prepare_instance(IMG[..., 0], [0, 0, 50, 50], KXYV, SKEL), "img_rgb"),
    "image list": (lambda: crop_image([[0]], [10, 10], [1, 1]), "img_rgb"),
    "size not multiple of 4": (lambda: crop_image(IMG, [10, 10], [1, 1], size=250), "size"),
    "center NaN": (lambda: crop_image(IMG, [np.nan, 10], [1, 1]), "center"),
    "scale negative": (lambda: keypoints_to_crop(PTS, VIS, [10, 10], [-1, 1]), "scale"),
    "scale 3 numbers": (lambda: crop_image(IMG, [10, 10], [1, 1, 1]), "scale"),
    # decode
    "pred rank 2": (lambda: decode_points(np.zeros((3, 2)), np.zeros((3, 2)), np.ones((3, 2))), "pred"),
    "pred NaN": (lambda: decode_points(np.full((1, 3, 2), np.nan), [[0, 0]], [[1, 1]]), "pred"),
    "centers wrong batch": (lambda: decode_points(np.zeros((2, 3, 2)), np.zeros((3, 2)), np.ones((2, 2))),
                            "centers"),
    "scales zero": (lambda: decode_points(np.zeros((2, 3, 2)), np.zeros((2, 2)), np.zeros((2, 2))), "scales"),
    # mixup draws and options
    "draws wrong type": (lambda: mixup_padding(PTS, VIS, SKEL, draws="seed"), "draws"),
    "draws edge id out of range": (lambda: mixup_padding(PTS, VIS, SKEL, draws=good_draws(selected=np.full(70, 4))),
                                   "draws.selected"),
    "draws short lam": (lambda: mixup_padding(PTS, VIS, SKEL, draws=good_draws(lam=np.ones(10))), "draws.lam"),
    "num_edges zero": (lambda: draw_mixup(0, 1), "num_edges"),
    "keypoint_count mode": (lambda: prepare_instance(IMG, [0, 0, 50, 50], KXYV, SKEL, keypoint_count="max"),
                            "keypoint_count"),
    "point beyond float32 (eqdiv)": (lambda: eqdiv_padding(np.array([[1e300, 1.0]] * 5), VIS, SKEL), "keypoints"),
    "point beyond float32 (crop)": (lambda: keypoints_to_crop(np.array([[4e38, 1.0]] * 5), VIS, [10, 10], [1, 1]),
                                    "keypoints_xy"),
    "rotation NaN": (lambda: prepare_instance(IMG, [0, 0, 50, 50], KXYV, SKEL, rotation=float("nan")), "rotation"),
    "scale_factor zero": (lambda: prepare_instance(IMG, [0, 0, 50, 50], KXYV, SKEL, scale_factor=0), "scale_factor"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_input_raises_input_error_naming_the_argument(case):
    call, field = CASES[case]
    with pytest.raises(InputError) as info:
        call()
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: expected")
    assert isinstance(info.value, ValueError)


def test_valid_edge_cases_are_accepted():
    # self-loops and repeated edges are legal (the official code accepts them), 0/1 ints as visibility
    out = eqdiv_padding(PTS, [1, 0, 1, 1, 1], [[0, 0], [0, 1], [0, 1]])
    assert out.points.shape == (70, 2)
    # a flat COCO keypoint list is accepted
    res = prepare_instance(IMG, [0, 0, 50, 50], KXYV.ravel().tolist(), SKEL)
    assert res["K_c"] == 5
