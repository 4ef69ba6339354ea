"""Box -> crop geometry, the crop itself, keypoints into the crop, and predictions back to the image.

Semantics are those of the official FMMP test pipeline (docs/FMMP_MODEL.md §4.1, §4.5), which uses mmpose's
top-down transforms with ``use_udp=False``. The float32/float64 steps follow that pipeline so that the affine
matrix and the keypoint coordinates come out bit-identical to it; the comments say where that matters.

Coordinates are (x, y). "Crop pixels" span [0, size); "normalised" crop coordinates are crop pixels / size.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import cv2
import numpy as np

from fgsa.errors import InputError
from fgsa.preprocess import validate
from fgsa.preprocess.constants import (BBOX_PADDING, CROP_SIZE, HEATMAP_SIGMA, HEATMAP_STRIDE, IMAGE_MEAN,
                                       IMAGE_STD, PIXEL_STD)


#: The OpenCV line the crops are certified with (both environments the project makes install it): the
#: authors' pipeline used OpenCV 4.x, and OpenCV 5's warpAffine (INTER_LINEAR) differs from 4.x on about half
#: the crop pixels, by up to 6 levels, which moves keypoints by up to a few pixels.
CERTIFIED_OPENCV = "4.11"


def opencv_mismatch(version: str | None = None) -> str | None:
    """One line saying that this OpenCV (``cv2.__version__``) is not the certified line, else None."""
    version = cv2.__version__ if version is None else version
    if version == CERTIFIED_OPENCV or version.startswith(CERTIFIED_OPENCV + "."):
        return None
    return (f"OpenCV {version} is not the {CERTIFIED_OPENCV}.x the crops are certified with (another line "
            f"resamples differently: keypoints can move by pixels); pip install "
            f"'opencv-python-headless>={CERTIFIED_OPENCV},<4.12'")


_opencv_warning = opencv_mismatch()  # said once per process, at the first crop


def clean_bbox(bbox_xywh: Any, image_width: int, image_height: int) -> np.ndarray:
    """Clip a COCO box to the image like the official dataset loader (§4.1.1) -> (4,) float64 [x, y, w, h].

    ``x2 = min(W-1, x1 + max(0, w-1))``: the cleaned width is one pixel less than the annotated one for a box
    that lies inside the image; that is the official behaviour and it feeds center/scale.
    Raises InputError when nothing of the box is left (the official loader silently drops such objects).
    """
    x, y, w, h = validate.as_bbox(bbox_xywh).tolist()
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(image_width - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(image_height - 1.0, y1 + max(0.0, h - 1.0))
    if not (x2 > x1 and y2 > y1):
        raise InputError("bbox_xywh", f"a box covering more than one pixel of the {image_width}x{image_height} image",
                         [x, y, w, h], "The box is outside the image or thinner than 1 px.")
    return np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float64)


def bbox_to_center_scale(bbox_xywh: Any, padding: float = BBOX_PADDING) -> tuple[np.ndarray, np.ndarray]:
    """[x, y, w, h] -> (center (2,) float32, scale (2,) float32), mmpose ``_xywh2cs`` with aspect ratio 1.

    The box is made square by enlarging its smaller side; ``scale = side / 200 * padding`` per axis.
    """
    x, y, w, h = validate.as_bbox(bbox_xywh).tolist()
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    side = max(w, h)
    scale = np.array([side / PIXEL_STD, side / PIXEL_STD], dtype=np.float32) * padding  # stays float32
    return center, scale


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``b`` plus ``a - b`` turned 90° counter-clockwise: the third point that fixes an affine map (float32)."""
    d = a - b
    return b + np.array([-d[1], d[0]], dtype=np.float32)


def get_affine_transform(center: Any, scale: Any, rot: float = 0.0, size: int = CROP_SIZE,
                         inv: bool = False) -> np.ndarray:
    """(2, 3) float64 affine image -> crop (``inv``: crop -> image), mmpose ``get_affine_transform``.

    ``center`` maps to (size/2, size/2); a square of ``scale[0] * 200`` image pixels maps to ``size`` pixels
    (only ``scale[0]`` is used: boxes are square). ``rot`` is in degrees (training augmentation), rotating the
    source square about the center. As in mmpose, the arithmetic follows the dtype of ``center``/``scale``
    (float32 from :func:`bbox_to_center_scale`; integers count as float64) and the three anchor points are
    stored in float32 before ``cv2.getAffineTransform``, so the matrix is bit-identical to the official one.
    """
    center = validate.as_pair(center, "center")
    scale_px = validate.as_pair(scale, "scale", positive=True) * PIXEL_STD  # keeps float32 for float32 input
    rot_rad = math.pi * float(rot) / 180.0
    sn, cs = np.sin(rot_rad), np.cos(rot_rad)
    half_src = float(scale_px[0]) * -0.5  # exact in float32 and float64
    src_dir = np.array([-half_src * sn, half_src * cs])  # (0, -w/2) rotated by rot_rad, float64

    src = np.zeros((3, 2), dtype=np.float32)
    src[0] = center
    src[1] = center.astype(np.float64) + src_dir  # rounded to float32 on assignment, as in mmpose
    src[2] = _third_point(src[0], src[1])

    dst = np.zeros((3, 2), dtype=np.float32)
    dst[0] = [size * 0.5, size * 0.5]
    dst[1] = [size * 0.5, size * 0.5 - size * 0.5]
    dst[2] = _third_point(dst[0], dst[1])

    return cv2.getAffineTransform(dst, src) if inv else cv2.getAffineTransform(src, dst)


def transform_points(points: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to (K, 2) points -> (K, 2) float64 (``trans @ [x, y, 1]``)."""
    p = np.asarray(points, dtype=np.float64)
    t = np.asarray(trans, dtype=np.float64)
    x = t[0, 0] * p[:, 0] + t[0, 1] * p[:, 1] + t[0, 2]
    y = t[1, 0] * p[:, 0] + t[1, 1] * p[:, 1] + t[1, 2]
    return np.stack([x, y], axis=1)


def crop_image(img_rgb: np.ndarray, center: Any, scale: Any, rot: float = 0.0, size: int = CROP_SIZE) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (size, size, 3) uint8 crop via cv2.warpAffine, bilinear, constant-0 border."""
    img = validate.as_image(img_rgb)
    size = validate.as_crop_size(size)
    trans = get_affine_transform(center, scale, rot, size)
    global _opencv_warning
    if _opencv_warning:
        warnings.warn(_opencv_warning, RuntimeWarning, stacklevel=2)
        _opencv_warning = None
    return cv2.warpAffine(img, trans, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def normalize_image(crop_rgb: np.ndarray) -> np.ndarray:
    """(S, S, 3) uint8 RGB -> (3, S, S) float32: ÷255, minus ImageNet mean, ÷ std (float32 steps as torch)."""
    img = validate.as_image(crop_rgb, "crop_rgb")
    x = img.astype(np.float32) / np.float32(255.0)
    x = (x - IMAGE_MEAN) / IMAGE_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def heatmap_visibility(points_px: np.ndarray, visible: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """Official ``target_weight``: ``visible`` AND "the 13x13 heatmap Gaussian touches the heatmap" (§4.1.6).

    Per axis, ``mu = int(coord / 4 + 0.5)`` (truncation toward zero) and the point is dropped when
    ``mu - 6 >= size / 4`` or ``mu + 7 < 0``; for 256 crops a point stays visible for -34 < x_px < 278.
    ``points_px`` are float32 crop pixels, as stored by the official pipeline. Returns (K,) bool.
    """
    hm = size // HEATMAP_STRIDE
    radius = 3 * HEATMAP_SIGMA
    mu = np.trunc(np.asarray(points_px, dtype=np.float32).astype(np.float64) / HEATMAP_STRIDE + 0.5)
    outside = np.any((mu - radius >= hm) | (mu + radius + 1 < 0), axis=1)
    return np.asarray(visible, dtype=bool) & ~outside


def keypoints_to_crop(keypoints_xy: Any, visible: Any, center: Any, scale: Any, rot: float = 0.0,
                      size: int = CROP_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Image-pixel keypoints -> (crop pixels (K, 2) float32, model visibility (K,) bool).

    Official rules (§4.1.4, §4.1.6, D3): the raw coordinates are stored as float32 first; only visible joints
    are transformed (float64 math, stored float32); invisible joints keep their raw image coordinates
    (usually (0, 0)). The returned visibility is ``visible`` AND :func:`heatmap_visibility`.
    Divide the points by ``size`` for the model's normalised coordinates.
    """
    pts = validate.as_points(keypoints_xy, "keypoints_xy", dtype=np.float32).copy()
    vis = validate.as_visible(visible, "visible", pts.shape[0])
    size = validate.as_crop_size(size)
    trans = get_affine_transform(center, scale, rot, size)
    if vis.any():
        pts[vis] = transform_points(pts[vis], trans).astype(np.float32)
    return pts, heatmap_visibility(pts, vis, size)


def decode_points(pred: Any, centers: Any, scales: Any, size: int = CROP_SIZE) -> np.ndarray:
    """Normalised crop predictions (B, K, 2) -> image pixels (B, K, 2) float32, for every batch row.

    Inverse of the rotation-free crop (mmpose ``transform_preds``, use_udp=False):
    ``x_img = x * size * (200 s_x / size) + c_x - 100 s_x``, computed in float64 and rounded to float32 once,
    as the official ``decode_output`` stores its ``all_preds`` (step 1 of :mod:`fgsa.metrics.pck`: every
    scorer of model output, and every tool that hands pixels to a user, gets the same float32 values).
    ``centers``/``scales`` are (B, 2) per row (the float32 values :func:`bbox_to_center_scale` returned).
    Unlike the official ``decode_output`` (bug D1, which decodes only the last row), every row is decoded.
    """
    p = validate.as_batch_points(pred, "pred")
    b = p.shape[0]
    c = validate.as_batch_pairs(centers, "centers", b).astype(np.float64)
    s_px = validate.as_batch_pairs(scales, "scales", b, positive=True) * np.float32(PIXEL_STD)  # float32
    size = validate.as_crop_size(size)
    factor = s_px.astype(np.float64) / size
    half = s_px.astype(np.float64) * 0.5
    # transform_preds' order of operations ((x * sx + c) - s / 2), so that the float64 values match too
    return ((p * size) * factor[:, None, :] + c[:, None, :] - half[:, None, :]).astype(np.float32)
