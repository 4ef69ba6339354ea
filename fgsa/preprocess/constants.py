"""Fixed numbers of the FMMP data pipeline (docs/FMMP_MODEL.md §4, s1 config).

Kept in one leaf module so every preprocess module (and the torch-free runtime) reads the same values.
"""

from __future__ import annotations

import numpy as np

K_MAX: int = 70
"""Keypoints per instance after padding (``max_kpt_num`` / ``keypoint_padding.num``)."""

LINK_WIDTH: int = 16
"""Columns of the BFS reference-index table (``N_max_pad``); the model reads the first 8 (side heads)."""

CROP_SIZE: int = 256
"""Side of the square network input crop in pixels; point coordinates are normalised by it."""

PIXEL_STD: float = 200.0
"""mmpose ``scale`` unit: one unit of scale is 200 pixels."""

BBOX_PADDING: float = 1.25
"""Context factor applied to the (squared) box when turning it into a scale."""

HEATMAP_STRIDE: int = 4
"""Crop pixels per heatmap cell (256 -> 64); only the heatmap-bound visibility rule uses it."""

HEATMAP_SIGMA: int = 2
"""Gaussian sigma of the (unused) target heatmap; its 3-sigma window decides the visibility bound."""

IMAGE_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGE_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
"""ImageNet RGB statistics applied after ÷255 (mmpose NormalizeTensor), float32 like torchvision."""
