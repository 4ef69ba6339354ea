"""One annotated instance (image + box + keypoints + category skeleton) -> the model's per-image inputs.

This is the official test pipeline end to end (docs/FMMP_MODEL.md §4.1-4.4): clean the box, center/scale,
crop and normalise the image, move the keypoints into the crop with the official visibility rules, pad to
70 points, build the BFS reference-index table. Support and query images go through it alike.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from fgsa.errors import InputError
from fgsa.preprocess import validate
from fgsa.preprocess.constants import CROP_SIZE, K_MAX
from fgsa.preprocess.crop import bbox_to_center_scale, clean_bbox, crop_image, keypoints_to_crop, normalize_image
from fgsa.preprocess.links import bfs_link_table
from fgsa.preprocess.padding import MixupDraws, eqdiv_padding, mixup_padding

KeypointCount = Literal["annotation", "skeleton"]


def category_keypoint_count(num_annotated: int, skeleton: Any, mode: KeypointCount = "annotation") -> int:
    """K_c, the number of real keypoints of the category.

    - ``"annotation"`` (default): K_c = the number of annotated keypoints; every skeleton index must be < K_c.
    - ``"skeleton"``: the official definition (D5), K_c = max skeleton index + 1, which must not exceed the
      number of annotated keypoints; annotated keypoints beyond it are dropped (padding takes their ids).

    The two agree unless the category's last keypoints belong to no edge. In that case the official
    pipeline overwrites those keypoints with padding yet still scores them, so the default keeps them as
    real keypoints instead; pass ``"skeleton"`` only to reproduce the official numbers exactly.
    """
    if mode not in ("annotation", "skeleton"):
        raise InputError("keypoint_count", "'annotation' or 'skeleton'", mode)
    edges = validate.as_skeleton(skeleton, "skeleton", num_annotated)
    return num_annotated if mode == "annotation" else int(edges.max()) + 1


def _finite_number(value: Any, name: str, positive: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(name, "a real number", type(value).__name__) from None
    if not math.isfinite(x) or (positive and x <= 0):
        raise InputError(name, f"a finite{' positive' if positive else ''} number", value)
    return x


def prepare_instance(img_rgb: np.ndarray, bbox_xywh: Any, keypoints_xyv: Any, skeleton: Any,
                     size: int = CROP_SIZE, *, keypoint_count: KeypointCount = "annotation",
                     rotation: float = 0.0, scale_factor: float = 1.0,
                     mixup: MixupDraws | None = None) -> dict[str, Any]:
    """Turn one support or query instance into model inputs.

    Args:
        img_rgb: (H, W, 3) uint8 RGB image.
        bbox_xywh: COCO box [x, y, w, h] in image pixels (cleaned/clipped like the official loader).
        keypoints_xyv: (K, 3) or flat (3K,) COCO keypoints in image pixels; v > 0 means annotated
            (v = 1 and v = 2 are both "visible" to FMMP); v must be >= 0.
        skeleton: (L, 2) 0-based keypoint index pairs of the category (the official code assumes 0-based).
        size: crop side (the model needs 256).
        keypoint_count: how K_c is defined, see :func:`category_keypoint_count` (default: annotation length).
        rotation, scale_factor: training augmentation (degrees; multiplies ``scale``); 0 and 1 at test time.
        mixup: per-episode :class:`MixupDraws` for training padding; None = test-time eqdiv padding.

    Returns a dict:
        image (3, size, size) float32 normalised crop; points (70, 2) float32 normalised crop coordinates;
        visible (70,) bool; links (70, 16) int32 BFS reference indices (``support_links``);
        link_table (2, 70, 16) int64 official index + depth planes; skeleton (E', 2) int64 padded edges;
        center (2,) float32 and scale (2,) float32 for :func:`fgsa.preprocess.decode_points`;
        bbox (4,) float64 cleaned box; K_c int.
    """
    img = validate.as_image(img_rgb)
    size = validate.as_crop_size(size)
    kpts = validate.as_keypoints_xyv(keypoints_xyv)
    if np.any(kpts[:, 2] < 0):
        raise InputError("keypoints_xyv", "visibility flags v >= 0 (0: not annotated, 1/2: annotated)",
                         f"v = {kpts[kpts[:, 2] < 0][0, 2]:g}")
    k_c = category_keypoint_count(kpts.shape[0], skeleton, keypoint_count)
    rotation = _finite_number(rotation, "rotation")
    scale_factor = _finite_number(scale_factor, "scale_factor", positive=True)

    height, width = img.shape[:2]
    bbox = clean_bbox(bbox_xywh, width, height)
    center, scale = bbox_to_center_scale(bbox)
    scale = scale * scale_factor  # float32, like mmpose's random scale augmentation

    image = normalize_image(crop_image(img, center, scale, rotation, size))
    pts_px, vis = keypoints_to_crop(kpts[:k_c, :2], kpts[:k_c, 2] > 0, center, scale, rotation, size)
    points = pts_px / np.float32(size)

    if mixup is None:
        padded = eqdiv_padding(points, vis, skeleton, K_MAX)
    else:
        padded = mixup_padding(points, vis, skeleton, mixup, K_MAX)
    table = bfs_link_table(padded.visible, padded.skeleton)
    return {
        "image": image,
        "points": padded.points,
        "visible": padded.visible,
        "links": table[0].astype(np.int32),
        "link_table": table,
        "skeleton": padded.skeleton,
        "center": center,
        "scale": scale,
        "bbox": bbox,
        "K_c": k_c,
    }
