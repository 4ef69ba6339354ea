"""Box cleaning, center/scale, affine crop, keypoint transform + visibility rules, decode round trips."""

import numpy as np
import pytest

from fgsa.preprocess import (bbox_to_center_scale, clean_bbox, crop_image, decode_points, get_affine_transform,
                             heatmap_visibility, keypoints_to_crop, normalize_image, transform_points)


def test_clean_bbox_clips_like_the_official_loader():
    np.testing.assert_array_equal(clean_bbox([-5, 10, 50, 40], 100, 100), [0, 10, 49, 39])
    np.testing.assert_array_equal(clean_bbox([60, 70, 80, 80], 100, 90), [60, 70, 39, 19])
    np.testing.assert_array_equal(clean_bbox([1.5, 2.5, 10.25, 5], 100, 100), [1.5, 2.5, 9.25, 4])


def test_center_scale_squares_the_box():
    c, s = bbox_to_center_scale([10, 20, 100, 50])
    np.testing.assert_array_equal(c, [60, 45])
    np.testing.assert_allclose(s, [100 / 200 * 1.25] * 2, rtol=1e-7)
    assert c.dtype == np.float32 and s.dtype == np.float32
    _, s2 = bbox_to_center_scale([0, 0, 30, 80])
    np.testing.assert_allclose(s2, [80 / 200 * 1.25] * 2, rtol=1e-7)


@pytest.mark.parametrize("bbox", [[10, 20, 100, 50], [-30, 5, 400, 380], [3.3, 7.7, 21.5, 64.2]])
def test_affine_matches_the_closed_form(bbox):
    c, s = bbox_to_center_scale(bbox)
    trans = get_affine_transform(c, s)
    rng = np.random.default_rng(0)
    pts = rng.uniform(-100, 500, (50, 2))
    expected = (pts - c.astype(np.float64)) * 256 / (200 * s.astype(np.float64)) + 128
    np.testing.assert_allclose(transform_points(pts, trans), expected, atol=1e-4)
    np.testing.assert_allclose(transform_points(c[None], trans)[0], [128, 128], atol=1e-6)


def test_rotation_is_about_the_center_and_keeps_distances():
    c, s = bbox_to_center_scale([50, 60, 120, 120])
    trans = get_affine_transform(c, s, rot=37.0)
    inv = get_affine_transform(c, s, rot=37.0, inv=True)
    np.testing.assert_allclose(transform_points(c[None], trans)[0], [128, 128], atol=1e-5)
    lin = trans[:, :2]
    zoom = 256 / (200 * float(s[0]))
    np.testing.assert_allclose(lin @ lin.T, np.eye(2) * zoom ** 2, rtol=1e-6, atol=1e-6)
    assert abs(np.degrees(np.arctan2(lin[1, 0], lin[0, 0]))) == pytest.approx(37.0, abs=1e-4)
    pts = np.random.default_rng(1).uniform(0, 256, (20, 2))
    np.testing.assert_allclose(transform_points(transform_points(pts, inv), trans), pts, atol=1e-4)


@pytest.mark.parametrize("rot", [0.0, 25.0, -70.0])
def test_bright_pixel_lands_where_the_keypoint_transform_says(rot):
    img = np.zeros((200, 300, 3), np.uint8)
    px, py = 123, 77
    img[py, px] = 255
    c, s = bbox_to_center_scale([105, 60, 32, 30])  # zoom ~6.4x, so the pixel covers ~13x13 crop pixels
    crop = crop_image(img, c, s, rot).astype(np.float64)[..., 0]
    assert crop.shape == (256, 256) and crop.sum() > 0
    yy, xx = np.mgrid[:256, :256]
    centroid = np.array([(crop * xx).sum(), (crop * yy).sum()]) / crop.sum()
    target = transform_points(np.array([[px, py]]), get_affine_transform(c, s, rot))[0]
    np.testing.assert_allclose(centroid, target, atol=0.02)
    pts, vis = keypoints_to_crop([[px, py]], [True], c, s, rot)
    np.testing.assert_allclose(pts[0], target, atol=1e-4)


def test_crop_border_is_zero_and_dtype_uint8():
    img = np.full((50, 50, 3), 200, np.uint8)
    c, s = bbox_to_center_scale([0, 0, 49, 49])
    crop = crop_image(img, c, s)
    assert crop.dtype == np.uint8 and crop.shape == (256, 256, 3)
    assert crop[0, 0].tolist() == [0, 0, 0] and crop[128, 128].tolist() == [200, 200, 200]


def test_normalize_image_values_and_layout():
    crop = np.zeros((4, 4, 3), np.uint8)
    crop[1, 2] = [255, 0, 128]
    out = normalize_image(crop)
    assert out.shape == (3, 4, 4) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(out[:, 1, 2], [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225],
                               rtol=1e-6)
    np.testing.assert_allclose(out[:, 0, 0], [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225], rtol=1e-6)


def test_only_visible_keypoints_are_transformed():
    c, s = bbox_to_center_scale([100, 100, 80, 80])
    kp = np.array([[120, 130], [5, 7], [0, 0], [150, 110]], float)
    pts, vis = keypoints_to_crop(kp, [True, False, False, True], c, s)
    np.testing.assert_array_equal(pts[1:3], kp[1:3])  # raw coordinates kept
    np.testing.assert_allclose(pts[[0, 3]], transform_points(kp[[0, 3]], get_affine_transform(c, s)), atol=1e-4)
    assert pts.dtype == np.float32
    np.testing.assert_array_equal(vis, [True, False, False, True])


def test_heatmap_bound_visibility_edges():
    # stays visible for -34 < x < 278 (and likewise y), per the official int(x / 4 + 0.5) window test
    xs = np.array([-34.0, -33.99, 0.0, 277.99, 278.0, 100.0, 100.0])
    ys = np.array([100.0, 100.0, 0.0, 100.0, 100.0, -34.0, 278.5])
    vis = heatmap_visibility(np.stack([xs, ys], 1), np.ones(7, bool))
    np.testing.assert_array_equal(vis, [False, True, True, True, False, False, False])
    assert not heatmap_visibility(np.array([[10.0, 10.0]]), np.array([False]))[0]


def test_keypoints_far_outside_the_crop_become_invisible():
    c, s = bbox_to_center_scale([100, 100, 40, 40])  # 50 px -> 256: 5.12x zoom
    kp = np.array([[120, 120], [120 + 40, 120], [120 - 40, 120]], float)
    _, vis = keypoints_to_crop(kp, [True, True, True], c, s)
    np.testing.assert_array_equal(vis, [True, False, False])


def test_round_trip_image_to_crop_to_image_every_batch_row():
    rng = np.random.default_rng(2)
    boxes = [[10, 20, 100, 50], [300.5, 40.25, 250, 600], [0, 0, 17, 33], [1000, 800, 90, 90]]
    preds, centers, scales, originals = [], [], [], []
    for box in boxes:
        c, s = bbox_to_center_scale(box)
        x, y, w, h = box
        img_pts = np.stack([rng.uniform(x, x + w, 30), rng.uniform(y, y + h, 30)], 1)
        crop_pts = transform_points(img_pts, get_affine_transform(c, s))
        preds.append(crop_pts / 256)
        centers.append(c)
        scales.append(s)
        originals.append(img_pts)
    decoded = decode_points(np.stack(preds), np.stack(centers), np.stack(scales))
    assert decoded.shape == (4, 30, 2)
    np.testing.assert_allclose(decoded, np.stack(originals), atol=1e-4)  # row 0 included (bug D1 fixed)


def test_round_trip_through_float32_crop_points():
    c, s = bbox_to_center_scale([50, 60, 300, 200])
    img_pts = np.random.default_rng(3).uniform(60, 250, (17, 2))
    pts, vis = keypoints_to_crop(img_pts, np.ones(17, bool), c, s)
    decoded = decode_points((pts / np.float32(256))[None], c[None], s[None])[0]
    np.testing.assert_allclose(decoded, img_pts, atol=1e-3)


def test_decode_closed_form_single_row():
    out = decode_points([[[0.5, 0.5], [0.0, 1.0]]], [[60, 45]], [[0.625, 0.625]])
    # 0.625 * 200 = 125 px per 256 crop px; the crop center is the box center
    np.testing.assert_allclose(out[0], [[60, 45], [60 - 62.5, 45 + 62.5]], atol=1e-9)


def test_opencv_line_is_the_certified_one_and_another_is_named():
    from fgsa.preprocess.crop import CERTIFIED_OPENCV, opencv_mismatch

    assert opencv_mismatch() is None, opencv_mismatch()  # this environment installs the certified line
    assert opencv_mismatch(CERTIFIED_OPENCV + ".0") is None
    for other in ("5.1.0", "4.12.0", "4.1.2", "4.110.0"):
        message = opencv_mismatch(other)
        assert message and other in message and CERTIFIED_OPENCV in message


def test_another_opencv_is_warned_once_at_the_first_crop(monkeypatch):
    import warnings

    from fgsa.preprocess import crop

    monkeypatch.setattr(crop, "_opencv_warning", crop.opencv_mismatch("5.1.0"))
    img = np.zeros((40, 40, 3), np.uint8)
    c, s = bbox_to_center_scale([0, 0, 40, 40])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        crop_image(img, c, s)
        crop_image(img, c, s)
    assert [str(w.message)[:12] for w in caught] == ["OpenCV 5.1.0"]
