"""Validation of the forward contract's tensors, with errors that name the argument.

Run eagerly before the traceable forward (the forward itself must stay free of data-dependent control
flow so it exports); :class:`fgsa.model.FMMP` calls it unless tracing or exporting.
"""

from __future__ import annotations

import torch

from fgsa.errors import InputError
from fgsa.model.config import ModelConfig

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
INT_DTYPES = (torch.int32, torch.int64)


def _shape(t: torch.Tensor) -> str:
    return f"{tuple(t.shape)} {str(t.dtype).replace('torch.', '')}"


def check_tensor(name: str, t, rank: int, dims: dict[int, int], dtypes, dims_desc: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise InputError(name, f"a torch.Tensor {dims_desc}", type(t).__name__)
    if t.dim() != rank:
        raise InputError(name, f"rank {rank} {dims_desc}", _shape(t))
    for axis, size in dims.items():
        if t.shape[axis] != size:
            raise InputError(name, f"size {size} on axis {axis} {dims_desc}", _shape(t))
    if t.dtype not in dtypes:
        raise InputError(name, "dtype " + " or ".join(str(d).replace("torch.", "") for d in dtypes), _shape(t))


def check_finite(name: str, t: torch.Tensor) -> None:
    bad = ~torch.isfinite(t)
    if bad.any():
        first = tuple(int(i) for i in bad.nonzero()[0])
        raise InputError(name, "finite values", f"{int(bad.sum())} NaN/inf values (first at index {first})")


def check_images(name: str, images: torch.Tensor, cfg: ModelConfig, lead: str) -> None:
    size = cfg.input_size
    rank = 4 if lead == "B" else 5
    check_tensor(name, images, rank, {-3: 3, -2: size, -1: size}, FLOAT_DTYPES, f"[{lead}, 3, {size}, {size}]")
    check_finite(name, images)


def check_keypoints(cfg: ModelConfig, support_points, support_visible, support_links, batch: int, shots: int) -> int:
    """Returns K."""
    check_tensor("support_points", support_points, 4, {0: batch, 1: shots, 3: 2}, FLOAT_DTYPES, "[B, S, K, 2]")
    K = support_points.shape[2]
    if not 1 <= K <= cfg.max_keypoints:
        raise InputError("support_points", f"1 <= K <= {cfg.max_keypoints} keypoints (axis 2)", K,
                         "pad categories to K with fgsa.preprocess")
    check_finite("support_points", support_points)
    check_tensor("support_visible", support_visible, 3, {0: batch, 1: shots, 2: K},
                 (torch.bool,) + INT_DTYPES + FLOAT_DTYPES, "[B, S, K]")
    if support_visible.dtype != torch.bool and not ((support_visible == 0) | (support_visible == 1)).all():
        raise InputError("support_visible", "0/1 or bool flags", "other values")
    if not (support_visible != 0).any(dim=2).all():
        raise InputError("support_visible", "at least one visible keypoint in every support shot",
                         "a shot with none", "drop that shot or fix its annotation")
    check_tensor("support_links", support_links, 4, {0: batch, 1: shots, 2: K, 3: cfg.link_width},
                 INT_DTYPES, f"[B, S, K, {cfg.link_width}]")
    bad = (support_links < 0) | (support_links >= K)
    if bad.any():
        first = tuple(int(i) for i in bad.nonzero()[0])
        raise InputError("support_links", f"keypoint indices in [0, {K})",
                         f"{int(support_links[first])} at index {first}", "build the table with fgsa.preprocess")
    return K


def validate_inputs(cfg: ModelConfig, query, support, support_points, support_visible, support_links) -> None:
    check_images("query", query, cfg, "B")
    check_images("support", support, cfg, "B, S")
    B, S = support.shape[:2]
    if support.shape[0] != query.shape[0]:
        raise InputError("support", f"the batch size of query ({query.shape[0]}) on axis 0", _shape(support))
    if S < 1:
        raise InputError("support", "at least one support shot (axis 1)", _shape(support))
    check_keypoints(cfg, support_points, support_visible, support_links, B, S)
