"""Pure-PyTorch reference of the two deformable-attention ops (the op boundary of docs/ARCHITECTURE.md).

This is *the* reference math: the model runs it on CPU, the tests compare the CUDA kernels and the
compiled CPU reference against it, and the ONNX Runtime stand-in for our plugin ops calls it. There is
exactly one copy of it.

Conventions (Deformable-DETR):
- points are (x, y) normalised to [0, 1] of the map; a level of width W samples pixel ``x * W - 0.5``
  (``align_corners=False``), bilinear, zero outside the map;
- ``value`` is ``[B, Len_in, heads, head_dim]``, levels flattened row-major and concatenated in the order
  of ``spatial_shapes`` (coarse to fine in FMMP);
- outputs are head-major: channel ``h * head_dim + c``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

Shapes = Sequence[Sequence[int]]


def level_shapes(spatial_shapes: Shapes | torch.Tensor) -> list[tuple[int, int]]:
    """(H, W) per level as Python ints; the shapes are static properties of the input size."""
    if isinstance(spatial_shapes, torch.Tensor):
        spatial_shapes = spatial_shapes.tolist()
    return [(int(h), int(w)) for h, w in spatial_shapes]


def level_starts(spatial_shapes: Shapes | torch.Tensor) -> list[int]:
    starts, acc = [], 0
    for h, w in level_shapes(spatial_shapes):
        starts.append(acc)
        acc += h * w
    return starts


def msda(
    value: torch.Tensor,
    spatial_shapes: Shapes | torch.Tensor,
    level_start: Sequence[int] | torch.Tensor | None,
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Multi-scale deformable attention, Deformable-DETR signature.

    value [B, Len_in, M, Dh]; sampling_locations [B, Q, M, L, P, 2] (x, y in [0, 1]);
    attention_weights [B, Q, M, L, P] (already normalised). Returns [B, Q, M * Dh].
    ``level_start`` is accepted for signature compatibility and derived from ``spatial_shapes``.
    """
    shapes = level_shapes(spatial_shapes)
    starts = level_starts(shapes)
    _, _, M, Dh = value.shape  # the batch stays -1 in reshapes: fewer shape ops when exported
    _, Q, _, L, P, _ = sampling_locations.shape
    grids = 2.0 * sampling_locations - 1.0  # grid_sample's [-1, 1] with align_corners=False
    samples = []
    for lvl, ((h, w), start) in enumerate(zip(shapes, starts)):
        # [B, HW, M, Dh] -> [B*M, Dh, H, W]
        v = value[:, start : start + h * w].permute(0, 2, 3, 1).reshape(-1, Dh, h, w)
        # [B, Q, M, P, 2] -> [B*M, Q, P, 2]
        g = grids[:, :, :, lvl].transpose(1, 2).reshape(-1, Q, P, 2)
        samples.append(F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False))
    sampled = torch.stack(samples, dim=-2).flatten(-2)  # [B*M, Dh, Q, L*P]
    weights = attention_weights.transpose(1, 2).reshape(-1, 1, Q, L * P)
    out = (sampled * weights).sum(-1)  # [B*M, Dh, Q]
    return out.view(-1, M * Dh, Q).transpose(1, 2).contiguous()


def project_values(
    features: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    heads: int,
    spatial_shapes: Shapes | torch.Tensor,
) -> torch.Tensor:
    """The value projection of every head at once, in the layout :func:`fgsa_attention` reads.

    features [B, Len_in, D] (levels flattened as in ``value``); weight [heads * Dh, D]; bias [heads * Dh].
    Returns [B, Len_in, heads, Dh]. Other implementations may return another layout (their sampler's).
    """
    return F.linear(features, weight, bias).view(-1, features.shape[1], heads, weight.shape[0] // heads)


def fgsa_locations(
    spatial_shapes: Shapes | torch.Tensor,
    ref_points: torch.Tensor,
    links: torch.Tensor,
    offsets: torch.Tensor,
) -> torch.Tensor:
    """Sampling locations of every side head: the linked keypoint's point plus level-pixel offsets.

    ref_points [B, K, 2]; links [B, K, Hs] (int, in [0, K)); offsets [B, K, Hs*M, L, P, 2].
    Returns [B, K, Hs*M, L, P, 2].
    """
    shapes = level_shapes(spatial_shapes)
    K, Hs = links.shape[1:]
    HM = offsets.shape[2]
    # ref of side head h for keypoint k is ref_points[b, links[b, k, h]]
    idx = links.long().reshape(-1, K * Hs, 1).expand(-1, -1, 2)
    refs = torch.gather(ref_points, 1, idx).view(-1, K, Hs, 1, 1, 1, 2)
    # x offsets are in level widths, y offsets in level heights
    norm = torch.tensor([[w, h] for h, w in shapes], dtype=offsets.dtype, device=offsets.device)
    off = offsets.view(-1, K, Hs, HM // Hs, len(shapes), offsets.shape[4], 2) / norm.view(len(shapes), 1, 2)
    return (refs + off).view(offsets.shape)


def fgsa_attention(
    value: torch.Tensor,
    spatial_shapes: Shapes | torch.Tensor,
    level_start: Sequence[int] | torch.Tensor | None,
    ref_points: torch.Tensor,
    links: torch.Tensor,
    offsets: torch.Tensor,
    logits: torch.Tensor,
) -> torch.Tensor:
    """All side heads of one FGSA module (StructrualDeformAttnW) in one call, before output projections.

    value      [B, Len_in, Hs*M, Dh]  projected values of every side head, side head major
    ref_points [B, K, 2]              keypoint points (x, y in [0, 1])
    links      [B, K, Hs] int         side head h of keypoint k samples around keypoint links[b, k, h]
    offsets    [B, K, Hs*M, L, P, 2]  raw sampling offsets in level pixels (x, y)
    logits     [B, K, Hs*M, L*P]      raw attention logits; softmax over levels x points per head
    Returns    [B, K, Hs*M*Dh]        side head h's features in channels [h*M*Dh, (h+1)*M*Dh)
    """
    HM = value.shape[2]
    L = len(level_shapes(spatial_shapes))
    K = ref_points.shape[1]
    locations = fgsa_locations(spatial_shapes, ref_points, links, offsets)
    weights = torch.softmax(logits, dim=-1).view(-1, K, HM, L, logits.shape[-1] // L)
    return msda(value, spatial_shapes, level_start, locations, weights)
