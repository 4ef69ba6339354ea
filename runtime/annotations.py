"""Support annotations for ``python -m runtime.predict``: a small JSON format, or an MP-100 / COCO file.

Small format (one support instance; comments are not part of the file)::

    {
      "keypoints": [[x, y, v], ...],     // or flat [x1, y1, v1, x2, ...]; image pixels; v: 0 unlabelled,
                                         //   1 labelled but occluded, 2 visible (v > 0 counts as visible)
      "skeleton": [[0, 1], [1, 2]],      // keypoint index pairs, 0-based (set "skeleton_base": 1 for COCO's)
      "bbox": [x, y, w, h],              // optional: the object's box (default: the whole image)
      "visible": [1, 1, 0],              // optional: overrides v
      "keypoint_names": ["head", ...],   // optional, for reports
      "skeleton_base": 0                 // optional
    }

MP-100 / COCO keypoint files (``images``, ``annotations``, ``categories``) are read with
:mod:`fgsa.data.mp100` (same skeleton-base rules as training and evaluation); ``ann_id`` picks the
annotation, or, without it, the only annotation of the image whose ``file_name`` ends the support image's path;
an ``ann_id`` whose image's ``file_name`` has another name than the support image is an error naming both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fgsa.data.mp100 import load_mp100
from fgsa.files.jsonfile import read_json
from runtime.errors import InputError


@dataclass
class SupportAnnotation:
    keypoints: np.ndarray            # (K, 3) float64 [x, y, v]
    skeleton: np.ndarray             # (L, 2) int64, 0-based
    bbox: list[float] | None = None  # [x, y, w, h], None = whole image
    names: list[str] = field(default_factory=list)
    source: str = ""
    category_id: int | None = None   # the COCO category id, for results files (None: a small-format file)


def _field(path: Path) -> str:
    return f"--support-ann {path}"


def read_support_annotation(path: str | Path, ann_id: int | None = None,
                            image_name: str | None = None) -> SupportAnnotation:
    path = Path(path)
    data = read_json(path, _field(path))  # bounded size and depth: the file may come from anywhere
    if not isinstance(data, dict):
        raise InputError(_field(path), "a JSON object", type(data).__name__)
    if "annotations" in data and "categories" in data:
        return _from_coco(path, data, ann_id, image_name)
    if ann_id is not None:
        raise InputError("--ann-id", "no annotation id for a small-format --support-ann (it holds one shot)",
                         f"{ann_id} with {path}", "drop --ann-id, or pass an MP-100 / COCO file")
    return _from_small(path, data)


def _numbers(value, name: str, what: str) -> np.ndarray:
    """float64 array of ``value`` when it is (nested lists of) JSON numbers only: strings such as "12" or
    booleans are refused, not converted."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        elif not (isinstance(v, (int, float)) and not isinstance(v, bool)):
            raise InputError(name, what, repr(value)[:80], "write plain JSON numbers")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):  # ragged lists
        raise InputError(name, what, repr(value)[:80]) from None
    return arr


def _from_small(path: Path, data: dict) -> SupportAnnotation:
    name = _field(path)
    missing = [k for k in ("keypoints", "skeleton") if k not in data]
    if missing:
        raise InputError(name, "the keys 'keypoints' and 'skeleton' (see runtime/README.md, support JSON)",
                         f"missing {missing}")
    kp = _numbers(data["keypoints"], f"{name}: keypoints", "numbers [[x, y, v], ...]")
    if kp.ndim == 1 and kp.size % 3 == 0:
        kp = kp.reshape(-1, 3)
    if kp.ndim != 2 or kp.shape[1] not in (2, 3) or kp.shape[0] == 0:
        raise InputError(f"{name}: keypoints", "[[x, y, v], ...] or [[x, y], ...] rows", f"shape {kp.shape}")
    if kp.shape[1] == 2:
        kp = np.concatenate([kp, np.full((len(kp), 1), 2.0)], axis=1)
    if not np.isfinite(kp).all():
        raise InputError(f"{name}: keypoints", "finite numbers", "NaN or infinity")
    if "visible" in data:
        vis = _numbers(data["visible"], f"{name}: visible", "a list of numbers or booleans"
                       ) if not _all_bools(data["visible"]) else np.asarray(data["visible"], np.float64)
        vis = vis.reshape(-1)
        if vis.shape != (len(kp),):
            raise InputError(f"{name}: visible", f"{len(kp)} flags", f"{vis.size} flags")
        kp[:, 2] = vis
    base = data.get("skeleton_base", 0)
    if base not in (0, 1) or isinstance(base, bool):
        raise InputError(f"{name}: skeleton_base", "0 or 1", repr(base)[:40])
    raw = data["skeleton"]
    pairs = _numbers(raw, f"{name}: skeleton", "[[a, b], ...] integer pairs")
    if pairs.size % 2 or not np.isfinite(pairs).all() or (pairs != np.round(pairs)).any():
        raise InputError(f"{name}: skeleton", "[[a, b], ...] integer pairs", repr(raw)[:80])
    skel = pairs.astype(np.int64).reshape(-1, 2) - base
    bbox = data.get("bbox")
    if bbox is not None:
        box = _numbers(bbox, f"{name}: bbox", "4 numbers [x, y, w, h]")
        if box.shape != (4,):
            raise InputError(f"{name}: bbox", "4 numbers [x, y, w, h]", repr(bbox)[:80])
        bbox = [float(v) for v in box]
    names = data.get("keypoint_names") or []
    if not isinstance(names, list):
        raise InputError(f"{name}: keypoint_names", "a list of names", repr(names)[:80])
    return SupportAnnotation(kp, skel, bbox, [str(n) for n in names], str(path))


def _all_bools(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, bool) for v in value)


def _from_coco(path: Path, data: dict, ann_id: int | None, image_name: str | None) -> SupportAnnotation:
    # the support image comes from --support, never from the file's file_name: no path check needed
    ann = load_mp100(data, image_root=path.parent, check_image_paths=False, source=_field(path))
    if ann_id is None:
        wanted = Path(image_name).resolve().as_posix() if image_name else ""
        matches = [i for i in ann.instances if image_name and wanted.endswith("/" + Path(i.file_name).as_posix())]
        if len(matches) != 1:
            raise InputError("--ann-id", "the annotation id of the support instance in this COCO file",
                             "none given" + (f" and {len(matches)} annotations match the image name" if image_name
                                             else ""), "pass --ann-id ID")
        inst = matches[0]
    else:
        inst = ann.instance(ann_id)
        # an id of another image would put that image's keypoints on this one, silently
        if image_name and Path(inst.file_name).name != Path(image_name).name:
            raise InputError("--ann-id", f"an annotation of the support image {image_name}",
                             f"annotation {ann_id} of image {inst.file_name!r} in {path}",
                             "pass the image that annotation belongs to, or the id of an annotation of this image")
    cat = ann.categories[inst.category_id]
    kp = np.concatenate([inst.keypoints.astype(np.float64), inst.visibility[:, None].astype(np.float64)], axis=1)
    return SupportAnnotation(kp, np.asarray(cat.skeleton, dtype=np.int64).reshape(-1, 2), list(inst.bbox),
                             list(cat.keypoint_names), f"{path} annotation {inst.ann_id} ({cat.name})",
                             inst.category_id)
