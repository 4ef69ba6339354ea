"""PCK of the official MP-100 protocol on hand-computed cases, plus a loop-based cross-check."""

import json

import numpy as np
import pytest

from fgsa.errors import InputError
from fgsa.metrics.pck import (PCK_THRESHOLDS, PCKAccumulator, bbox_normalizer, compute_pck, format_pck_table,
                              pck_mask, pck_per_image)

# query bbox [x, y, w, h] with max(w, h) = 100, so pixel offsets / 100 are the normalised distances
BOX = [10.0, 20.0, 100.0, 50.0]
GT = np.array([[30.0, 40.0], [50.0, 40.0], [70.0, 60.0], [90.0, 30.0]])
# offsets of 3, 7, 12 and 25 px -> d = 0.03, 0.07, 0.12, 0.25
PRED = GT + np.array([[3.0, 0.0], [0.0, -7.0], [7.2, 9.6], [-15.0, 20.0]])
ALL = np.full(4, 2)


def test_all_visible_hand_computed():
    acc = PCKAccumulator()
    row = acc.add(PRED, GT, ALL, ALL[None], BOX)
    np.testing.assert_allclose(row, [1 / 4, 2 / 4, 3 / 4, 3 / 4])
    r = acc.result()
    assert r.thresholds == PCK_THRESHOLDS
    np.testing.assert_allclose(r.mpck, (0.25 + 0.5 + 0.75 + 0.75) / 4)
    assert r.as_dict()["PCK@0.2"] == pytest.approx(0.75)


def test_keypoint_invisible_in_one_support_shot_is_excluded():
    supports = np.array([[2, 2, 2, 2], [0, 2, 2, 2]])  # keypoint 0 (d=0.03) unlabelled in shot 2
    row = PCKAccumulator().add(PRED, GT, ALL, supports, BOX)
    np.testing.assert_allclose(row, [0, 1 / 3, 2 / 3, 2 / 3])


def test_keypoint_invisible_in_query_is_excluded_and_v1_counts_as_visible():
    query = np.array([1, 2, 0, 2])  # keypoint 2 (d=0.12) unlabelled; keypoint 0 occluded but labelled
    row = PCKAccumulator().add(PRED, GT, query, ALL[None], BOX)
    np.testing.assert_allclose(row, [1 / 3, 2 / 3, 2 / 3, 2 / 3])


def test_mask_is_query_and_every_support():
    q = np.array([2, 1, 0, 2, 2])
    s = np.array([[2, 2, 2, 0, 1], [1, 2, 2, 2, 2]])
    np.testing.assert_array_equal(pck_mask(q, s), [True, True, False, False, True])
    np.testing.assert_array_equal(pck_mask(q, s[0]), [True, True, False, False, True])
    with pytest.raises(InputError):
        pck_mask(q, np.ones((1, 4)))


def test_threshold_is_strict_and_compared_in_float32():
    gt = np.zeros((3, 2))
    # d exactly 0.1 (6-8-10 triangle over 100), exactly 0.05, and 0.1 - 1e-12 which float32 rounds to 0.1
    pred = np.array([[6.0, 8.0], [5.0, 0.0], [10.0 - 1e-10, 0.0]])
    mask = np.ones(3, bool)
    row = pck_per_image(pred, gt, mask, 100.0, (0.05, 0.1, 0.10000001))
    # at 0.05: none (0.05 is not < 0.05); at 0.1: only the 0.05 one (0.1 - 1e-12 < 0.1 in float64, but
    # mmpose keeps distances in float32, where it equals 0.1); at the next float32 above 0.1: all three
    np.testing.assert_allclose(row, [0.0, 1 / 3, 1.0])


def test_image_without_valid_keypoint_scores_zero_and_weighs_like_any_image():
    acc = PCKAccumulator()
    acc.add(GT, GT, ALL, ALL[None], BOX, category_id=1)  # perfect: 1 at every threshold
    row = acc.add(GT, GT, np.zeros(4), ALL[None], BOX, category_id=2)  # nothing valid
    np.testing.assert_array_equal(row, np.zeros(4))
    np.testing.assert_allclose(acc.result().pck, 0.5)
    assert acc.result(2).mpck == 0.0 and acc.result(1).mpck == 1.0


def test_images_pooled_over_categories_not_averaged_per_category():
    acc = PCKAccumulator()
    acc.add(GT, GT, ALL, ALL[None], BOX, category_id=7)          # category 7: one image at 1.0
    for _ in range(3):
        acc.add(GT + 90.0, GT, ALL, ALL[None], BOX, category_id=8)  # category 8: three images at 0
    np.testing.assert_allclose(acc.result().pck, 0.25)           # per-category mean would be 0.5
    assert set(acc.per_category()) == {7, 8} and len(acc) == 4


@pytest.mark.parametrize("box", [[0, 0, 0, 0], [5, 5, -1, 0], [5, 5, -3, -2], [0, 0, np.nan, 0]])
def test_degenerate_box_raises_input_error(box):
    with pytest.raises(InputError, match="bbox"):
        bbox_normalizer(box)
    with pytest.raises(InputError):
        PCKAccumulator().add(PRED, GT, ALL, ALL[None], box)


def test_one_positive_side_is_enough():
    assert bbox_normalizer([0, 0, 0, 12.5]) == 12.5


def test_padded_prediction_rows_are_ignored_and_short_ones_rejected():
    pred70 = np.vstack([PRED, np.full((66, 2), 1e6)])
    np.testing.assert_allclose(pck_per_image(pred70, GT, np.ones(4, bool), 100.0), [1 / 4, 2 / 4, 3 / 4, 3 / 4])
    with pytest.raises(InputError, match="pred"):
        pck_per_image(PRED[:3], GT, np.ones(4, bool), 100.0)


def _official_pck(pred, gt, mask, norm, thr):
    """The official arithmetic, written from the authors' code for the cross-check (N = 1): the float32
    predictions of ``decode_output`` through the results JSON (float64 again), ``joints_3d`` float32, the
    normaliser float64, mmpose's ``_calc_distances`` (float32 distances) and ``_distance_acc`` (strict <)."""
    preds = np.array(json.loads(json.dumps(np.asarray(pred, np.float32).tolist())))[None, : len(gt)]
    targets = np.asarray(gt, np.float32)[None]
    mask = np.asarray(mask, bool)[None]
    normalize = np.array([[norm, norm]], dtype=np.float64)
    distances = np.full((len(gt), 1), -1, dtype=np.float32)
    distances[mask.T] = np.linalg.norm(((preds - targets) / normalize[:, None, :])[mask], axis=-1)
    acc = np.array([(d[d != -1] < thr).sum() / (d != -1).sum() if (d != -1).sum() else -1 for d in distances])
    valid = acc[acc >= 0]
    return valid.mean() if len(valid) else 0.0


def test_vectorised_pck_matches_loop_reference_on_random_data():
    rng = np.random.default_rng(1234)
    n, k = 200, 17
    gts = rng.uniform(0, 300, (n, k, 2)).astype(np.float32)
    preds = (gts + rng.normal(0, 12, (n, k, 2))).astype(np.float32)  # as decoded
    masks = rng.random((n, k)) < 0.8
    masks[:5] = False  # a few images with nothing valid
    norms = rng.uniform(40, 250, n)
    res = compute_pck(preds, gts, masks, norms)
    ref = np.array([[_official_pck(p, g, m, z, t) for t in PCK_THRESHOLDS]
                    for p, g, m, z in zip(preds.astype(np.float32), gts.astype(np.float32), masks, norms)])
    np.testing.assert_allclose(res.per_image, ref, atol=1e-12)
    np.testing.assert_allclose(res.pck, ref.mean(0), atol=1e-12)
    assert res.mpck == pytest.approx(ref.mean())
    assert 0.1 < res.mpck < 0.95  # the random data is neither trivially right nor trivially wrong


def test_format_table_lists_both_rows_in_percent():
    acc = PCKAccumulator()
    acc.add(PRED, GT, ALL, ALL[None], BOX)
    table = format_pck_table({"model": acc.result(), "copy-support baseline": acc.result()})
    lines = table.splitlines()
    assert len(lines) == 3 and "mPCK" in lines[0] and "PCK@0.05" in lines[0]
    assert "56.25" in lines[1] and lines[2].startswith("copy-support baseline")


def test_difference_is_float64_as_the_official_json_round_trip_makes_it():
    """The official predictions come back from the results JSON as float64, so pred - gt (gt float32) is a
    float64 difference: here d = 0.1000000015, float32(d) = float32(0.1), a miss at 0.1. A float32
    difference (0.0999999) would count it."""
    gt = np.array([[np.float32(44.3), 7.0]])
    assert float(gt[0, 0]) == 44.29999923706055
    pred = np.array([[40.86654918589816, 7.0]])
    assert np.float32((pred[0, 0].astype(np.float32) - gt[0, 0].astype(np.float32)) / 34.3345) > -0.1
    one = np.ones(1, bool)
    assert pck_per_image(pred, gt, one, 34.3345, (0.1,))[0] == 0.0
    assert pck_per_image(pred + 1e-4, gt, one, 34.3345, (0.1,))[0] == 1.0
    # the official decode would have stored this prediction as float32 (40.86655044555664): then a hit,
    # for the official arithmetic and for ours
    stored = pred.astype(np.float32)
    assert pck_per_image(stored, gt, one, 34.3345, (0.1,))[0] == 1.0 == _official_pck(stored, gt, one, 34.3345, 0.1)


def test_the_metric_does_not_round_predictions_itself():
    """Rounding belongs to the decode (step 1): a float64 prediction is scored as given."""
    gt = np.array([[100.0, 0.0]])
    pred64 = np.array([[105.0 - 3e-6, 0.0]])  # 4.999997 px: inside 0.05 * 100; its float32 value is 105
    assert np.float32(pred64[0, 0]) == np.float32(105.0)
    assert pck_per_image(pred64, gt, np.ones(1, bool), 100.0, (0.05,))[0] == 1.0
    assert pck_per_image(pred64.astype(np.float32), gt, np.ones(1, bool), 100.0, (0.05,))[0] == 0.0


def threshold_episodes(seed: int, images: int = 60, k: int = 12):
    """Random episodes whose float32 predictions lie exactly at (rounded), and one float32 ulp around, a
    threshold: for each keypoint a gt, a direction and a threshold t, pred = float32(gt + t * norm * u),
    then nudged by -1, 0 or +1 ulp in x and y. Returns preds (float32), gts (float32), masks, norms."""
    rng = np.random.default_rng(seed)
    gts = rng.uniform(0, 1500, (images, k, 2)).astype(np.float32)
    # clean boxes: x2 - x1 of float64 corners, as the official cleaner computes w and h
    norms = np.maximum(rng.uniform(10, 900, images), rng.uniform(10, 900, images)).round(rng.integers(0, 5))
    thr = rng.choice(PCK_THRESHOLDS, (images, k))
    angle = rng.uniform(0, 2 * np.pi, (images, k))
    u = np.stack([np.cos(angle), np.sin(angle)], -1)
    u[:, : k // 4] = np.round(u[:, : k // 4])  # axis-aligned ones too, where only one coordinate moves
    preds = (gts + (thr * norms[:, None])[..., None] * u).astype(np.float32)
    nudge = rng.integers(-1, 2, preds.shape)
    preds = np.where(nudge > 0, np.nextafter(preds, np.float32(np.inf)), preds)
    preds = np.where(nudge < 0, np.nextafter(preds, np.float32(-np.inf)), preds)
    masks = rng.random((images, k)) < 0.9
    return preds, gts, masks, norms


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metric_api_equals_the_official_arithmetic_at_every_threshold(seed):
    preds, gts, masks, norms = threshold_episodes(seed)
    ref = np.array([[_official_pck(p, g, m, z, t) for t in PCK_THRESHOLDS]
                    for p, g, m, z in zip(preds, gts, masks, norms)])
    np.testing.assert_array_equal(compute_pck(preds, gts, masks, norms).per_image, ref)
    acc = PCKAccumulator()
    for p, g, m, z in zip(preds, gts, masks, norms):
        acc.add(p.astype(np.float64), g, m.astype(int) * 2, np.full((1, len(m)), 2), [0.0, 0.0, z, z / 2])
    np.testing.assert_array_equal(acc.result().per_image, ref)
    # the episodes do sit on the thresholds: the two wrong arithmetics each disagree on some of them
    f32_diff = np.linalg.norm((preds - gts) / norms[:, None, None], axis=-1).astype(np.float32)
    f64_dist = np.linalg.norm((preds.astype(np.float64) - gts) / norms[:, None, None], axis=-1)
    official = np.linalg.norm((preds.astype(np.float64) - gts) / norms[:, None, None], axis=-1).astype(np.float32)
    t = np.float32(np.array(PCK_THRESHOLDS))[:, None, None]
    assert ((f32_diff < t) != (official < t))[:, masks].sum() > 0
    assert ((f64_dist < t.astype(np.float64)) != (official < t))[:, masks].sum() > 0
