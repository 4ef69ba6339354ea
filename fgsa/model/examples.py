"""Random but valid forward inputs: for tests, the demo, and export's parity checks on fresh data.

Points include invisible keypoints holding raw coordinates and visible ones slightly outside the crop
(both occur in real batches, spec Q1/D3); link tables start with the keypoint itself (column 0).
"""

from __future__ import annotations

import torch

from fgsa.model.config import ModelConfig


def random_inputs(
    cfg: ModelConfig,
    batch: int = 1,
    shots: int = 1,
    keypoints: int | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    outside: bool = True,
) -> dict[str, torch.Tensor]:
    """-> {query, support, support_points, support_visible, support_links} for ``FMMP.forward``."""
    g = torch.Generator().manual_seed(seed)
    K = keypoints or cfg.max_keypoints
    size = cfg.input_size
    query = torch.randn(batch, 3, size, size, generator=g, dtype=dtype)
    support = torch.randn(batch, shots, 3, size, size, generator=g, dtype=dtype)
    points = torch.rand(batch, shots, K, 2, generator=g, dtype=dtype)
    visible = torch.rand(batch, shots, K, generator=g) > 0.25
    visible[:, :, 0] = True  # every shot keeps at least one visible keypoint
    if outside and K >= 4:
        points[:, :, 1] = torch.tensor([-0.06, 1.04], dtype=dtype)  # visible, outside the crop
        points[:, :, 2] = torch.tensor([1.3, 0.5], dtype=dtype)  # invisible, raw coordinates >= 256 px
        visible[:, :, 1], visible[:, :, 2] = True, False
    links = torch.randint(0, K, (batch, shots, K, cfg.link_width), generator=g, dtype=torch.int32)
    links[..., 0] = torch.arange(K, dtype=torch.int32)
    return {"query": query, "support": support, "support_points": points,
            "support_visible": visible, "support_links": links}
