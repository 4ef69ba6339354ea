"""PCK and mPCK exactly as the official MP-100 / FMMP protocol computes them (NumPy only).

Official path: chenbys/FMMP ``CJCTestSet.evaluate`` (cape_extloc/dmods/dataset_test.py) writes the decoded
predictions to a JSON results file; ``TestBaseDataset._report_metric``
(capeformer/datasets/datasets/mp100/test_base_dataset.py) reads it back and calls mmpose 0.x
``keypoint_pck_accuracy`` (mmpose/core/evaluation/top_down_eval.py: ``_calc_distances``, ``_distance_acc``)
with N = 1 per (supports, query) pair. The arithmetic, in four steps:

1. ``decode_output`` (cape_extloc/cmods/basic_modules.py) stores the image-pixel predictions in a **float32**
   array (``all_preds``). That step belongs to the decode, not to this module:
   :func:`fgsa.preprocess.decode_points` returns float32 pixels, rounded once.
2. The results JSON is read back: ``np.array(pred['keypoints'])`` is **float64** (holding float32 values);
   the ground truth ``joints_3d`` is float32; the normaliser ``max(w, h)`` of the query's *clean* bbox
   (original image pixels, not the 1.25-padded crop scale) is float64.
3. ``(preds - targets) / normalize`` and the norm are **float64** (float64 - float32 upcasts).
4. The distance is stored in a **float32** array, and the test is ``d < thr`` in float32 (strict).

This module does steps 2-4 on the arrays it is given (float64 difference and norm, distance rounded to
float32, strict ``<`` against the float32 threshold); it never rounds the predictions itself, so a caller
scoring model output passes the float32 pixels of step 1 (float32 or float64 arrays: both are exact).

  - mask[k] = query v_k > 0 AND every support's v_k > 0 (raw annotation flags, not the model's
    heatmap-bounded visibility; design note D3). Keypoints beyond the category's count are never valid.
  - PCK@t(pair) = #{valid k: d_k < t} / #{valid k}; a pair with no valid keypoint scores 0 (D9).
Averaging: **per image, then a plain mean over all images (pairs) pooled across categories** — every query
image weighs the same, whatever its category or keypoint count (not a per-category mean, not a per-keypoint
mean). mPCK = mean of PCK@0.05, 0.10, 0.15, 0.20.

Divergence on purpose: mmpose silently scores a zero normaliser as 0 and a negative one as ~1 (it
replaces it by 1e6); here a box whose w and h are both <= 0 (or not finite) raises InputError, because
such a box can only come from a broken annotation (the official cleaner drops them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from fgsa.errors import InputError

PCK_THRESHOLDS: tuple[float, ...] = (0.05, 0.10, 0.15, 0.20)


def bbox_normalizer(bbox: Sequence[float]) -> float:
    """max(w, h) of an [x, y, w, h] box (the query's clean bbox); InputError when w and h are both <= 0."""
    box = np.asarray(bbox, dtype=np.float64).reshape(-1)
    if box.shape != (4,):
        raise InputError("bbox", "[x, y, w, h] (4 numbers)", f"shape {np.shape(bbox)}")
    norm = float(max(box[2], box[3]))
    if not np.isfinite(norm) or norm <= 0:
        raise InputError("bbox", "a box with w > 0 or h > 0 (PCK divides by max(w, h))",
                         f"w={box[2]}, h={box[3]}", "drop or fix this annotation's bbox")
    return norm


def pck_mask(query_visibility: np.ndarray, support_visibilities: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """(K,) bool: visible (v > 0) in the query AND in every support shot.

    query_visibility: (K,) raw flags; support_visibilities: (S, K) raw flags (or a list of S (K,) arrays).
    """
    q = np.asarray(query_visibility)
    s = np.asarray(support_visibilities)
    if s.ndim == 1:
        s = s[None]
    if q.ndim != 1 or s.ndim != 2 or s.shape[1] != q.shape[0] or s.shape[0] < 1:
        raise InputError("visibility", "query (K,) and supports (S>=1, K) flags of the same K",
                         f"query {q.shape}, supports {s.shape}")
    return (q > 0) & np.all(s > 0, axis=0)


def pck_per_image(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, normalizer: float,
                  thresholds: Sequence[float] = PCK_THRESHOLDS) -> np.ndarray:
    """PCK of one query image at each threshold; returns (T,) float64.

    pred: (K', 2) predicted pixel coordinates, K' >= K (rows beyond K, e.g. the model's 70 padded rows,
          are ignored, as their official mask is 0); gt: (K, 2) annotated coordinates; mask: (K,) bool;
    normalizer: max(w, h) of the query's clean bbox (see `bbox_normalizer`), > 0.
    """
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if gt.ndim != 2 or gt.shape[1] != 2 or mask.shape != gt.shape[:1]:
        raise InputError("gt/mask", "gt (K, 2) and mask (K,)", f"gt {gt.shape}, mask {mask.shape}")
    if pred.ndim != 2 or pred.shape[1] != 2 or pred.shape[0] < gt.shape[0]:
        raise InputError("pred", f"(K' >= {gt.shape[0]}, 2) pixel coordinates", f"shape {pred.shape}")
    if not np.isfinite(normalizer) or normalizer <= 0:
        raise InputError("normalizer", "max(w, h) > 0 of the query bbox", normalizer)
    thr = np.asarray(thresholds, dtype=np.float32)
    if not mask.any():
        return np.zeros(len(thr))
    # steps 3-4 of the module docstring: float64 difference and norm, the distance stored as float32
    diff = pred[: gt.shape[0]] - gt
    d = np.linalg.norm(diff[mask] / np.float64(normalizer), axis=-1).astype(np.float32)
    return (d[None, :] < thr[:, None]).mean(axis=1).astype(np.float64)


@dataclass
class PCKResult:
    """thresholds (T,); pck (T,) mean over images; mpck = mean(pck); per_image (N, T)."""

    thresholds: tuple[float, ...]
    pck: np.ndarray
    mpck: float
    per_image: np.ndarray = field(repr=False)

    @property
    def num_images(self) -> int:
        return int(self.per_image.shape[0])

    def as_dict(self) -> dict[str, float]:
        """{'PCK@0.05': ..., ..., 'mPCK': ...} like the official report (fractions in [0, 1])."""
        out = {f"PCK@{t:g}": float(v) for t, v in zip(self.thresholds, self.pck)}
        out["mPCK"] = self.mpck
        return out


def _result(per_image: np.ndarray, thresholds: Sequence[float]) -> PCKResult:
    per_image = np.asarray(per_image, dtype=np.float64).reshape(-1, len(thresholds))
    if per_image.shape[0] == 0:
        raise InputError("images", "at least one evaluated query image", 0)
    pck = per_image.mean(axis=0)
    return PCKResult(tuple(float(t) for t in thresholds), pck, float(pck.mean()), per_image)


def compute_pck(preds: np.ndarray, gts: np.ndarray, masks: np.ndarray, normalizers: np.ndarray,
                thresholds: Sequence[float] = PCK_THRESHOLDS) -> PCKResult:
    """Protocol PCK of N query images of one keypoint count: preds (N, K', 2), gts (N, K, 2),
    masks (N, K) bool, normalizers (N,). For mixed keypoint counts use PCKAccumulator."""
    preds, gts, masks = np.asarray(preds), np.asarray(gts), np.asarray(masks)
    normalizers = np.asarray(normalizers, dtype=np.float64).reshape(-1)
    if not (len(preds) == len(gts) == len(masks) == len(normalizers)):
        raise InputError("preds/gts/masks/normalizers", "the same number N of images",
                         f"{len(preds)}, {len(gts)}, {len(masks)}, {len(normalizers)}")
    rows = [pck_per_image(p, g, m, n, thresholds) for p, g, m, n in zip(preds, gts, masks, normalizers)]
    return _result(np.array(rows), thresholds)


class PCKAccumulator:
    """Adds one (supports, query) pair at a time, any keypoint count, and reports the pooled PCK.

    Also keeps per-category results (`result(category_id)`) for diagnosis; the protocol number is
    `result()`, the mean over every image added.
    """

    def __init__(self, thresholds: Sequence[float] = PCK_THRESHOLDS):
        self.thresholds = tuple(float(t) for t in thresholds)
        self._rows: list[np.ndarray] = []
        self._cats: list[int] = []

    def add(self, pred: np.ndarray, gt: np.ndarray, query_visibility: np.ndarray,
            support_visibilities: np.ndarray | Sequence[np.ndarray], query_bbox: Sequence[float],
            category_id: int = -1) -> np.ndarray:
        """Score one query: pred (K', 2) and gt (K, 2) in original pixels, raw flags query (K,) and
        supports (S, K), query_bbox the clean [x, y, w, h]. Returns this image's (T,) PCK."""
        mask = pck_mask(query_visibility, support_visibilities)
        row = pck_per_image(pred, gt, mask, bbox_normalizer(query_bbox), self.thresholds)
        self._rows.append(row)
        self._cats.append(int(category_id))
        return row

    def __len__(self) -> int:
        return len(self._rows)

    def result(self, category_id: int | None = None) -> PCKResult:
        rows = self._rows if category_id is None else [
            r for r, c in zip(self._rows, self._cats) if c == category_id]
        return _result(np.array(rows), self.thresholds)

    def per_category(self) -> dict[int, PCKResult]:
        return {c: self.result(c) for c in dict.fromkeys(self._cats)}


def format_pck_table(results: Mapping[str, PCKResult]) -> str:
    """A fixed-width table, one row per named result (e.g. {'model': r1, 'copy-support baseline': r2}),
    values in percent like the papers quote them."""
    if not results:
        return ""
    first = next(iter(results.values()))
    heads = [f"PCK@{t:g}" for t in first.thresholds] + ["mPCK", "images"]
    width = max(len(n) for n in results) + 2
    lines = ["".ljust(width) + "".join(h.rjust(10) for h in heads)]
    for name, r in results.items():
        vals = [f"{100 * v:.2f}" for v in r.pck] + [f"{100 * r.mpck:.2f}", str(r.num_images)]
        lines.append(name.ljust(width) + "".join(v.rjust(10) for v in vals))
    return "\n".join(lines)
