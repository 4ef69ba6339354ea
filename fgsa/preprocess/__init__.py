"""FMMP pre- and post-processing in NumPy + OpenCV (no torch, so the torch-free runtime can reuse it).

Test pipeline for one support/query instance: :func:`prepare_instance`. Building blocks:

- ``crop``: box cleaning, center/scale, affine crop, normalisation, keypoints into the crop,
  :func:`decode_points` (predictions back to image pixels, every batch row);
- ``padding``: K_c keypoints -> 70 along the skeleton (``eqdiv`` at test time, ``mixup`` for training);
- ``links``: the 16-wide BFS reference-index table (``support_links`` = its index plane, int32);
- ``validate``: argument checks raising :class:`fgsa.errors.InputError`.

Conventions: points are (x, y); normalised crop coordinates are crop pixels / 256; skeletons are 0-based.
"""

from __future__ import annotations

from fgsa.preprocess.constants import CROP_SIZE, IMAGE_MEAN, IMAGE_STD, K_MAX, LINK_WIDTH
from fgsa.preprocess.crop import (bbox_to_center_scale, clean_bbox, crop_image, decode_points,
                                  get_affine_transform, heatmap_visibility, keypoints_to_crop, normalize_image,
                                  transform_points)
from fgsa.preprocess.instance import category_keypoint_count, prepare_instance
from fgsa.preprocess.links import bfs_link_table, support_links
from fgsa.preprocess.padding import MixupDraws, PaddedPose, draw_mixup, eqdiv_padding, mixup_padding

__all__ = [
    "CROP_SIZE", "IMAGE_MEAN", "IMAGE_STD", "K_MAX", "LINK_WIDTH",
    "bbox_to_center_scale", "clean_bbox", "crop_image", "decode_points", "get_affine_transform",
    "heatmap_visibility", "keypoints_to_crop", "normalize_image", "transform_points",
    "category_keypoint_count", "prepare_instance",
    "bfs_link_table", "support_links",
    "MixupDraws", "PaddedPose", "draw_mixup", "eqdiv_padding", "mixup_padding",
]
