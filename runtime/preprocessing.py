"""Raw images + annotations -> the graphs' input tensors, through :mod:`fgsa.preprocess` (NumPy + OpenCV).

Nothing here re-implements preprocessing: supports go through :func:`fgsa.preprocess.prepare_instance`
(crop, normalise, pad K_c -> 70 along the skeleton, BFS link table), queries through the same crop and
normalisation (``clean_bbox`` -> ``bbox_to_center_scale`` -> ``crop_image`` -> ``normalize_image``). This
module only checks the arguments first, so errors name what the caller passed (``images[1]``, ``boxes``,
``skeleton`` ...), and stacks the results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fgsa.preprocess import bbox_to_center_scale, clean_bbox, crop_image, normalize_image, prepare_instance
from fgsa.preprocess import validate
from runtime.arrays import as_host_array
from runtime.errors import InputError


@dataclass
class SupportSet:
    """One category's S support shots, ready for the graphs (leading batch axis of 1).

    support (1, S, 3, H, W) f32; points (1, S, 70, 2) f32; visible (1, S, 70) bool; links (1, S, 70, 16) i32;
    k_c: the category's real keypoints; skeleton (L, 2) int64 0-based (the caller's, for drawing);
    state: the support encoder's outputs {name: array} (leading batch axis of 1) once computed, else None.
    """

    support: np.ndarray
    points: np.ndarray
    visible: np.ndarray
    links: np.ndarray
    k_c: int
    skeleton: np.ndarray
    state: dict[str, np.ndarray] | None = None
    tiled: dict = field(default_factory=dict, repr=False)

    @property
    def shots(self) -> int:
        return int(self.support.shape[1])

    def batch(self, b: int, cached: bool) -> dict[str, np.ndarray]:
        """The support inputs repeated for a batch of ``b`` queries (preallocated once per ``b``): the support
        state when ``cached``, else the support images; the keypoint inputs always."""
        key = (b, cached)
        feed = self.tiled.get(key)
        if feed is None:
            src = {"support_points": self.points, "support_visible": self.visible, "support_links": self.links}
            if cached:
                src.update(self.state)
            else:
                src["support"] = self.support
            feed = {k: np.ascontiguousarray(np.broadcast_to(v, (b,) + v.shape[1:])) for k, v in src.items()}
            self.tiled[key] = feed  # one dict assignment: safe under concurrent predict calls
        return feed


def as_image_list(images: Any, name: str) -> list[np.ndarray]:
    """One (H, W, 3) image, an (N, H, W, 3) stack or a sequence of images -> list of uint8 RGB arrays."""
    if isinstance(images, (list, tuple)):
        items = list(images)
    else:
        arr = as_host_array(images, name)
        items = [arr] if arr.ndim == 3 else (list(arr) if arr.ndim == 4 else [arr])
    if not items:
        raise InputError(name, "at least one (H, W, 3) uint8 RGB image", "an empty sequence")
    out = []
    for i, img in enumerate(items):
        label = f"{name}[{i}]"
        img = as_host_array(img, label)
        out.append(validate.as_image(img, label))
    return out


def as_boxes(boxes: Any, images: list[np.ndarray], name: str = "boxes") -> np.ndarray:
    """(N, 4) COCO [x, y, w, h] per image (a single (4,) box when N = 1); None = each whole image."""
    n = len(images)
    if boxes is None:
        return np.array([[0.0, 0.0, img.shape[1], img.shape[0]] for img in images])
    arr = as_host_array(boxes, name)
    if arr.ndim == 1 and n == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape != (n, 4):
        raise InputError(name, f"({n}, 4) boxes [x, y, w, h], one per image", f"shape {tuple(arr.shape)}")
    return np.stack([validate.as_bbox(box, f"{name}[{i}]") for i, box in enumerate(arr)])


def prepare_queries(images: Any, boxes: Any = None, size: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Query images + boxes -> (crops (B, 3, size, size) f32, centers (B, 2) f32, scales (B, 2) f32)."""
    imgs = as_image_list(images, "query_images")
    bxs = as_boxes(boxes, imgs)
    crops, centers, scales = [], [], []
    for i, (img, box) in enumerate(zip(imgs, bxs)):
        try:
            clean = clean_bbox(box, img.shape[1], img.shape[0])
        except InputError as exc:
            raise InputError(f"boxes[{i}]", exc.expected, exc.got, exc.fix) from None
        center, scale = bbox_to_center_scale(clean)
        crops.append(normalize_image(crop_image(img, center, scale, 0.0, size)))
        centers.append(center)
        scales.append(scale)
    return np.stack(crops), np.stack(centers), np.stack(scales)


def _keypoints(keypoints: Any, visible: Any, shots: int) -> np.ndarray:
    """-> (S, K_c, 3) float64 [x, y, v] rows (v from ``visible`` when given, else the third column, else 2)."""
    kp = as_host_array(keypoints, "keypoints")
    if kp.dtype.kind not in "iuf" or kp.dtype == np.bool_:
        raise InputError("keypoints", "numeric (S, K_c, 2) or (S, K_c, 3) keypoints in image pixels",
                         f"dtype {kp.dtype}")
    if kp.ndim == 2 and shots == 1:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[0] != shots or kp.shape[2] not in (2, 3) or kp.shape[1] == 0:
        raise InputError("keypoints", f"({shots}, K_c, 2) or ({shots}, K_c, 3) keypoints in image pixels, one row "
                         "per support shot", f"shape {tuple(kp.shape)}")
    kp = kp.astype(np.float64)
    if not np.isfinite(kp).all():
        raise InputError("keypoints", "finite coordinates", "NaN/inf",
                         "give unlabelled keypoints (0, 0) and visibility 0 instead of NaN")
    k_c = validate.check_keypoint_count(kp.shape[1], "keypoints (K_c, keypoints per shot)")
    if visible is None:
        v = kp[:, :, 2] if kp.shape[2] == 3 else np.full(kp.shape[:2], 2.0)
    else:
        v = as_host_array(visible, "visible")
        if v.ndim == 1 and shots == 1:
            v = v[None]
        if v.shape != (shots, k_c):
            raise InputError("visible", f"({shots}, {k_c}) flags (bool, or COCO v in 0/1/2), one row per shot",
                             f"shape {tuple(v.shape)}")
        if v.dtype.kind not in "biuf":
            raise InputError("visible", "bool or numeric flags", f"dtype {v.dtype}")
        v = v.astype(np.float64)
    if not np.isfinite(v).all() or (v < 0).any():
        raise InputError("visible", "flags >= 0 (0: not labelled, 1/2 or True: labelled)", "negative or NaN values")
    return np.concatenate([kp[:, :, :2], v[:, :, None]], axis=2)


def prepare_support(images: Any, keypoints: Any, visible: Any, skeleton: Any, boxes: Any = None,
                    shots: int = 1, size: int = 256) -> SupportSet:
    """S support images of one category -> a :class:`SupportSet` (its state is not computed here).

    images: S images (H, W, 3) uint8 RGB; keypoints (S, K_c, 2|3) image pixels; visible (S, K_c) or None;
    skeleton (L, 2) 0-based pairs over the K_c keypoints; boxes (S, 4) [x, y, w, h] or None (whole images).
    """
    imgs = as_image_list(images, "images")
    if len(imgs) != shots:
        raise InputError("images", f"{shots} support image(s): the engine was exported with --shots {shots}",
                         f"{len(imgs)} image(s)", f"re-export with --shots {len(imgs)} for {len(imgs)}-shot support")
    bxs = as_boxes(boxes, imgs)
    xyv = _keypoints(keypoints, visible, shots)
    k_c = xyv.shape[1]
    if skeleton is None:
        raise InputError("skeleton", "a non-empty (L, 2) list of 0-based keypoint index pairs", None)
    edges = validate.as_skeleton(as_host_array(skeleton, "skeleton") if not isinstance(skeleton, (list, tuple))
                                 else skeleton, "skeleton", k_c)
    shots_out = []
    for i, (img, box, kp) in enumerate(zip(imgs, bxs, xyv)):
        try:
            clean_bbox(box, img.shape[1], img.shape[0])
        except InputError as exc:
            raise InputError(f"boxes[{i}]", exc.expected, exc.got, exc.fix) from None
        inst = prepare_instance(img, box, kp, edges, size)
        if not inst["visible"].any():
            raise InputError("visible", f"at least one labelled keypoint inside the crop of support shot {i}",
                             "none", "check the keypoints, their visibility flags and the box of that shot")
        shots_out.append(inst)
    stack = lambda key: np.stack([s[key] for s in shots_out])[None]  # noqa: E731
    return SupportSet(support=stack("image"), points=stack("points"), visible=stack("visible"),
                      links=stack("links"), k_c=k_c, skeleton=edges)
