"""Random inputs of both ops that hit every border the kernels must get right, and their expected outputs.

Used by the CPU-reference tests (tests/kernels) and the GPU check (kernels/tools/gpu_check.py), so the
same hard cases reach both. Each case mixes:
  - ordinary points inside the maps;
  - for every level, coordinates exactly at 0 and 1, at pixel centres 0.5/W and 1 - 0.5/W, at the zero-
    contribution edges -0.5/W and 1 + 0.5/W, and a hair inside and outside each of those;
  - points far outside (±10 to ±3e4, all representable in FP16);
  - FGSAAttention only: invisible keypoints at (0, 0) that other keypoints link to, links outside [0, K)
    (the kernels define their output as zero), zero offsets from border reference points, and logits of
    large magnitude (softmax stability).
Tensors are float64 on the requested device; cast them for lower-precision runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from fgsa.ops import reference

FMMP_SHAPES: tuple[tuple[int, int], ...] = ((8, 8), (16, 16), (32, 32))
FAR_COORDINATES = (-3e4, -1e4, -10.0, 10.0, 1e4, 3e4)
_EPS = 1e-4  # in pixels: "a hair" inside or outside an edge, well above float32 rounding of a coordinate


def border_coordinates(size: int) -> list[float]:
    """Normalised coordinates on the borders of a level `size` pixels wide (x) or high (y)."""
    s = float(size)
    edges = [0.0, 1.0, 0.5 / s, 1.0 - 0.5 / s, -0.5 / s, 1.0 + 0.5 / s]
    hairs = [e + d * _EPS / s for e in edges for d in (-1.0, 1.0)]
    return edges + hairs


@dataclass
class MsdaCase:
    value: torch.Tensor  # [B, Len_in, M, Dh]
    sampling_locations: torch.Tensor  # [B, Q, M, L, P, 2]
    attention_weights: torch.Tensor  # [B, Q, M, L, P]
    spatial_shapes: tuple[tuple[int, int], ...]


@dataclass
class FgsaCase:
    value: torch.Tensor  # [B, Len_in, Hs*M, Dh]
    ref_points: torch.Tensor  # [B, K, 2]
    links: torch.Tensor  # [B, K, Hs] int32, may hold values outside [0, K)
    offsets: torch.Tensor  # [B, K, Hs*M, L, P, 2]
    logits: torch.Tensor  # [B, K, Hs*M, L*P]
    spatial_shapes: tuple[tuple[int, int], ...]

    @property
    def invalid_links(self) -> torch.Tensor:
        """[B, K, Hs] bool: links outside [0, K), whose side head outputs zeros."""
        K = self.ref_points.shape[1]
        return (self.links < 0) | (self.links >= K)


def _uniform(shape: Sequence[int], low: float, high: float, g: torch.Generator, device: str) -> torch.Tensor:
    return torch.rand(tuple(shape), generator=g, dtype=torch.float64, device=device) * (high - low) + low


def _pick(values: Sequence[float], shape: Sequence[int], g: torch.Generator, device: str) -> torch.Tensor:
    table = torch.tensor(list(values), dtype=torch.float64, device=device)
    return table[torch.randint(len(values), tuple(shape), generator=g, device=device)]


def _mask(shape: Sequence[int], fraction: float, g: torch.Generator, device: str) -> torch.Tensor:
    return torch.rand(tuple(shape), generator=g, device=device) < fraction


def _special_locations(loc: torch.Tensor, shapes: Sequence[tuple[int, int]], g: torch.Generator, device: str) -> None:
    """Overwrites, in place, a share of loc [..., L, P, 2] with border and far coordinates per level."""
    for lvl, (h, w) in enumerate(shapes):
        for axis, size in ((0, w), (1, h)):
            part = loc[..., lvl, :, axis]
            border = _mask(part.shape, 0.25, g, device)
            part[border] = _pick(border_coordinates(size), part.shape, g, device)[border]
            far = _mask(part.shape, 0.05, g, device)
            part[far] = _pick(FAR_COORDINATES, part.shape, g, device)[far]


def make_msda_case(
    batch: int,
    *,
    queries: int = 70,
    heads: int = 8,
    head_dim: int = 32,
    points: int = 4,
    spatial_shapes: Sequence[tuple[int, int]] = FMMP_SHAPES,
    seed: int = 0,
    device: str = "cpu",
) -> MsdaCase:
    g = torch.Generator(device=device).manual_seed(seed)
    shapes = tuple((int(h), int(w)) for h, w in spatial_shapes)
    L, length = len(shapes), sum(h * w for h, w in shapes)
    value = torch.randn((batch, length, heads, head_dim), generator=g, dtype=torch.float64, device=device)
    loc = _uniform((batch, queries, heads, L, points, 2), -0.1, 1.1, g, device)
    _special_locations(loc, shapes, g, device)
    logits = torch.randn((batch, queries, heads, L * points), generator=g, dtype=torch.float64, device=device)
    weights = torch.softmax(2.0 * logits, dim=-1).view(batch, queries, heads, L, points)
    return MsdaCase(value, loc, weights, shapes)


def make_fgsa_case(
    batch: int,
    *,
    keypoints: int = 70,
    side_heads: int = 8,
    heads: int = 8,
    head_dim: int = 32,
    points: int = 4,
    spatial_shapes: Sequence[tuple[int, int]] = FMMP_SHAPES,
    invalid_links: bool = True,
    seed: int = 0,
    device: str = "cpu",
) -> FgsaCase:
    g = torch.Generator(device=device).manual_seed(seed)
    shapes = tuple((int(h), int(w)) for h, w in spatial_shapes)
    L, length, K, HM = len(shapes), sum(h * w for h, w in shapes), keypoints, side_heads * heads
    value = torch.randn((batch, length, HM, head_dim), generator=g, dtype=torch.float64, device=device)

    ref = _uniform((batch, K, 2), 0.0, 1.0, g, device)
    on_border = _mask((batch, K, 2), 0.1, g, device)
    ref[on_border] = _pick(border_coordinates(shapes[-1][1]), (batch, K, 2), g, device)[on_border]
    invisible = _mask((batch, K), 0.2, g, device)
    ref[invisible] = 0.0  # padded / invisible keypoints sit at (0, 0)

    # Column 0 is the keypoint itself (as in the BFS table); the others are random keypoints, visible or not.
    links = torch.randint(K, (batch, K, side_heads), generator=g, device=device)
    links[..., 0] = torch.arange(K, device=device)
    if invalid_links:
        bad = _mask(links.shape, 0.03, g, device)
        bad_values = torch.tensor([-1, K, K + 5, -1000, 2**31 - 1], device=device)
        links[bad] = bad_values[torch.randint(len(bad_values), links.shape, generator=g, device=device)][bad]
    links = links.to(torch.int32)

    offsets = 2.0 * torch.randn((batch, K, HM, L, points, 2), generator=g, dtype=torch.float64, device=device)
    zero = _mask(offsets.shape[:-1], 0.1, g, device)  # the sample lands exactly on the reference point
    offsets[zero] = 0.0
    far = _mask(offsets.shape, 0.03, g, device)
    offsets[far] = _pick(FAR_COORDINATES, offsets.shape, g, device)[far]

    logits = 3.0 * torch.randn((batch, K, HM, L * points), generator=g, dtype=torch.float64, device=device)
    loud = _mask((batch, K, HM), 0.05, g, device)
    logits[loud] *= 20.0  # |logit| up to ~200: exp overflows without the max subtraction
    return FgsaCase(value, ref, links, offsets, logits, shapes)


def expected_msda(case: MsdaCase, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The PyTorch reference (grid_sample) on the case's inputs cast to `dtype`."""
    return reference.msda(case.value.to(dtype), case.spatial_shapes, None, case.sampling_locations.to(dtype),
                          case.attention_weights.to(dtype))


def expected_fgsa(case: FgsaCase, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The PyTorch reference with the kernels' rule for links outside [0, K): that side head outputs zeros.

    The reference itself only accepts valid links, so those are replaced by 0 and their channels zeroed.
    """
    invalid = case.invalid_links
    links = torch.where(invalid, torch.zeros_like(case.links), case.links).long()
    out = reference.fgsa_attention(case.value.to(dtype), case.spatial_shapes, None, case.ref_points.to(dtype), links,
                                   case.offsets.to(dtype), case.logits.to(dtype))
    B, K, Hs = invalid.shape
    per_side = out.view(B, K, Hs, -1)
    return per_side.masked_fill(invalid[..., None], 0.0).view(B, K, -1)
