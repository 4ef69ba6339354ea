"""Sine positional encodings of keypoints, as capeformer's ``SinePositionalEncoding(num_feats=d/2)``.

Channels 2j and 2j+1 share the frequency: ``[sin(a/t_0), cos(a/t_0), sin(a/t_1), cos(a/t_1), ...]`` with
``t_j = 10000 ** (2j / num_feats)``. The y half comes first. The divisor table is float32 in the official
code even when the model runs in float64; we keep that so float64 parity holds to rounding.
"""

from __future__ import annotations

import math

import torch

TEMPERATURE = 10000.0
SCALE = 2 * math.pi
EPS = 1e-6


def _divisors(num_feats: int, device: torch.device) -> torch.Tensor:
    i = torch.arange(num_feats, dtype=torch.float32, device=device)
    return TEMPERATURE ** (2 * torch.div(i, 2, rounding_mode="floor") / num_feats)


def _encode(angles: torch.Tensor, num_feats: int) -> torch.Tensor:
    """[...] angles -> [..., num_feats] interleaved sin/cos."""
    pos = angles[..., None] / _divisors(num_feats, angles.device).to(angles.dtype)
    return torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=-1).flatten(-2)


def encode_points(points: torch.Tensor, d_model: int) -> torch.Tensor:
    """[B, K, 2] (x, y) in [0, 1] -> [B, K, d_model] = concat(enc(2*pi*y), enc(2*pi*x)); dtype of points."""
    half = d_model // 2
    return torch.cat((_encode(points[..., 1] * SCALE, half), _encode(points[..., 0] * SCALE, half)), dim=-1)


def encode_keypoint_order(shot0_x: torch.Tensor, d_model: int) -> torch.Tensor:
    """The official ``query_order``: [B, K] x coordinates of support shot 0 -> [B, K, d_model] float32.

    Quirk Q1 reproduced: the x coordinates are used as a padding "mask" cast to int (truncation toward 0),
    so ``n = 1 - trunc(x)`` is 1 for every x in (-1, 1) and the encoding is a keypoint-index encoding
    ``concat(enc(2*pi/(1+eps)), enc(2*pi*(k+1)/(K+eps)))``. A point with |x| >= 1 changes the cumulative
    sum for its sample, exactly as in the authors' code. Always computed in float32, as there.
    """
    half = d_model // 2
    n = (1 - shot0_x.float().to(torch.int32)).to(torch.float32)  # [B, K]
    x_emb = torch.cumsum(n, dim=-1)
    y = n / (n + EPS) * SCALE
    x = x_emb / (x_emb[..., -1:] + EPS) * SCALE
    return torch.cat((_encode(y, half), _encode(x, half)), dim=-1)
