"""Input checks shared by the preprocess functions.

Each checker takes the caller's argument name so that the :class:`fgsa.errors.InputError` it raises names
the argument the user actually passed, says what was expected and what arrived. Checkers return the value
converted to the canonical dtype, so callers use the returned array, never the raw argument.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fgsa.errors import InputError
from fgsa.preprocess.constants import K_MAX


def _describe(arr: np.ndarray) -> str:
    return f"shape {tuple(arr.shape)} dtype {arr.dtype}"


def _to_array(value: Any, name: str, expected: str) -> np.ndarray:
    """np.asarray that turns ragged or unconvertible input into an InputError."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged nested lists, odd objects
        raise InputError(name, expected, f"an object numpy cannot convert ({exc})") from None
    if arr.dtype == object:
        raise InputError(name, expected, "an object array (ragged or mixed types)")
    return arr


def _require_numeric(arr: np.ndarray, name: str, expected: str) -> None:
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(name, expected, _describe(arr))


def _require_finite(arr: np.ndarray, name: str, expected: str) -> None:
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0].tolist()
        raise InputError(name, expected, f"a non-finite value (NaN/inf) at index {bad}",
                         "Replace missing keypoints by (0, 0) with visibility 0 instead of NaN.")


def check_keypoint_count(count: int, name: str = "keypoint count", k_max: int = K_MAX) -> int:
    """K_c must fit the padded size: 1 <= K_c <= k_max (70)."""
    if not 1 <= int(count) <= k_max:
        raise InputError(name, f"between 1 and {k_max} keypoints (the model pads every category to {k_max})",
                         int(count), f"Categories with more than {k_max} keypoints are not supported by FMMP.")
    return int(count)


def as_points(value: Any, name: str, count: int | None = None, dtype: type = np.float32) -> np.ndarray:
    """(K, 2) finite real array of (x, y) -> ``dtype``. ``count`` fixes K when given."""
    expected = f"a ({'K' if count is None else count}, 2) array of finite (x, y) numbers"
    arr = _to_array(value, name, expected)
    _require_numeric(arr, name, expected)
    if arr.ndim != 2 or arr.shape[1] != 2 or (count is not None and arr.shape[0] != count):
        raise InputError(name, expected, _describe(arr))
    _require_finite(arr, name, expected)
    # finite here, infinite once cast (1e300 as float32): refused rather than passed on as inf
    if arr.size and np.issubdtype(dtype, np.floating) and np.abs(arr).max() > np.finfo(dtype).max:
        raise InputError(name, expected + f" within {np.dtype(dtype).name} range",
                         f"{np.abs(arr).max():g}")
    return arr.astype(dtype, copy=False)


def as_visible(value: Any, name: str, count: int | None = None) -> np.ndarray:
    """(K,) visibility: bool, or numbers that are exactly 0/1 -> bool. ``count`` fixes K when given."""
    expected = f"a ({'K' if count is None else count},) array of booleans (or 0/1)"
    arr = _to_array(value, name, expected)
    if arr.ndim != 1 or (count is not None and arr.shape[0] != count):
        raise InputError(name, expected, _describe(arr))
    if arr.dtype == np.bool_:
        return arr.copy()
    _require_numeric(arr, name, expected)
    if not np.all((arr == 0) | (arr == 1)):
        raise InputError(name, expected, f"values {sorted(set(np.unique(arr).tolist()))[:6]}")
    return arr.astype(bool)


def as_skeleton(value: Any, name: str, num_keypoints: int) -> np.ndarray:
    """Non-empty list of 0-based (a, b) integer index pairs, all < ``num_keypoints`` -> (E, 2) int64.

    Self-loops and repeated edges are accepted (the official pipeline accepts them too).
    """
    expected = f"a non-empty (E, 2) list of 0-based integer keypoint index pairs, each in [0, {num_keypoints})"
    arr = _to_array(value, name, expected)
    if arr.size == 0:
        raise InputError(name, expected, "an empty skeleton",
                         "FMMP pads keypoints along skeleton edges and needs at least one edge "
                         "(the official code crashes here); link the keypoints, e.g. [[0, 1]].")
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InputError(name, expected, _describe(arr))
    if not np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
        raise InputError(name, expected, f"dtype {arr.dtype}", "Use Python/NumPy integers for indices.")
    if arr.min() < 0:
        raise InputError(name, expected, f"a negative index {int(arr.min())}",
                         "Skeleton indices are 0-based; convert 1-based COCO skeletons by subtracting 1.")
    if arr.max() >= num_keypoints:
        raise InputError(name, expected, f"index {int(arr.max())} with only {num_keypoints} keypoints",
                         "Is the skeleton 1-based, or does it belong to another category?")
    return arr.astype(np.int64)


def as_bbox(value: Any, name: str = "bbox_xywh") -> np.ndarray:
    """[x, y, w, h] with finite numbers and w, h > 0 -> (4,) float64."""
    expected = "[x, y, w, h] of 4 finite numbers with w > 0 and h > 0"
    arr = _to_array(value, name, expected)
    _require_numeric(arr, name, expected)
    if arr.shape != (4,):
        raise InputError(name, expected, _describe(arr))
    _require_finite(arr, name, expected)
    arr = arr.astype(np.float64)
    if arr[2] <= 0 or arr[3] <= 0:
        raise InputError(name, expected, f"w={arr[2]:g}, h={arr[3]:g} (degenerate box)")
    return arr


def as_image(value: Any, name: str = "img_rgb") -> np.ndarray:
    """(H, W, 3) uint8 RGB image, H, W >= 1 (returned as is, C-contiguous)."""
    expected = "an (H, W, 3) uint8 RGB image"
    if not isinstance(value, np.ndarray):
        raise InputError(name, expected, type(value).__name__)
    if value.ndim != 3 or value.shape[2] != 3 or value.shape[0] < 1 or value.shape[1] < 1:
        raise InputError(name, expected, _describe(value))
    if value.dtype != np.uint8:
        raise InputError(name, expected, _describe(value), "Load images with cv2/PIL as 8-bit RGB.")
    return np.ascontiguousarray(value)


def as_keypoints_xyv(value: Any, name: str = "keypoints_xyv") -> np.ndarray:
    """(K, 3) finite (x, y, v) rows in image pixels -> float64. v > 0 means annotated/visible."""
    expected = "a (K, 3) array of finite (x, y, visibility) rows in image pixels"
    arr = _to_array(value, name, expected)
    _require_numeric(arr, name, expected)
    if arr.ndim == 1 and arr.size % 3 == 0 and arr.size > 0:
        arr = arr.reshape(-1, 3)  # COCO stores keypoints as a flat [x1, y1, v1, x2, ...] list
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0:
        raise InputError(name, expected, _describe(arr))
    _require_finite(arr, name, expected)
    check_keypoint_count(arr.shape[0], name=f"{name} (keypoint count)")
    return arr.astype(np.float64)


def as_batch_points(value: Any, name: str) -> np.ndarray:
    """(B, K, 2) finite predictions -> float64."""
    expected = "a (B, K, 2) array of finite (x, y) normalised crop coordinates"
    arr = _to_array(value, name, expected)
    _require_numeric(arr, name, expected)
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise InputError(name, expected, _describe(arr))
    _require_finite(arr, name, expected)
    return arr.astype(np.float64)


def as_batch_pairs(value: Any, name: str, batch: int, positive: bool = False) -> np.ndarray:
    """(B, 2) finite numbers (centers, or scales when ``positive``) -> float32 (the official meta dtype)."""
    expected = f"a ({batch}, 2) array of finite{' positive' if positive else ''} numbers"
    arr = _to_array(value, name, expected)
    _require_numeric(arr, name, expected)
    if arr.ndim == 1 and batch == 1 and arr.shape == (2,):
        arr = arr[None]
    if arr.shape != (batch, 2):
        raise InputError(name, expected, _describe(arr))
    _require_finite(arr, name, expected)
    if positive and np.any(arr <= 0):
        raise InputError(name, expected, f"a non-positive value {arr[arr <= 0][0]:g}")
    return arr.astype(np.float32)


def as_pair(value: Any, name: str, positive: bool = False) -> np.ndarray:
    """A finite (x, y) pair (center, or scale when ``positive``) -> (2,), keeping a float dtype (ints -> float64)."""
    expected = f"2 finite{' positive' if positive else ''} numbers"
    arr = _to_array(value, name, expected)
    _require_numeric(arr, name, expected)
    if arr.size != 2:
        raise InputError(name, expected, _describe(arr))
    arr = arr.reshape(2)
    _require_finite(arr, name, expected)
    if positive and np.any(arr <= 0):
        raise InputError(name, expected, arr.tolist())
    return arr if np.issubdtype(arr.dtype, np.floating) else arr.astype(np.float64)


def as_crop_size(value: Any, name: str = "size") -> int:
    """Crop side: a positive multiple of the heatmap stride (the model itself needs 256)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0 or value % 4:
        raise InputError(name, "a positive integer multiple of 4 (FMMP uses 256)", value)
    return int(value)
