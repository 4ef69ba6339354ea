"""Each ONNX form's eager math is the reference's: value projection + FGSA attention in float64.

The standard-op form lays values out per level for GridSample and folds the location arithmetic
(export/forms.py); these tests pin that rewrite to the reference on fresh random inputs, with points on
every border, far outside, and links to an invisible keypoint at (0, 0).
"""

import pytest
import torch

from export.forms import FORMS, attention_form
from fgsa import ops
from fgsa.ops import reference

SHAPES = [(2, 3), (4, 5), (3, 1)]  # non-square levels catch x/y swaps


def _case(seed: int, dt=torch.float64):
    g = torch.Generator().manual_seed(seed)
    B, K, Hs, M, Dh, D, P = 2, 7, 3, 2, 4, 5, 2
    L, length = len(SHAPES), sum(h * w for h, w in SHAPES)
    features = torch.randn(B, length, D, generator=g, dtype=dt)
    weight = torch.randn(Hs * M * Dh, D, generator=g, dtype=dt)
    bias = torch.randn(Hs * M * Dh, generator=g, dtype=dt)
    ref = torch.rand(B, K, 2, generator=g, dtype=dt) * 1.4 - 0.2
    ref[:, -1] = 0.0  # an invisible keypoint's raw (0, 0), reachable through links
    ref[0, 0] = torch.tensor([1.0, 0.0])  # on two borders at once
    links = torch.randint(0, K, (B, K, Hs), generator=g, dtype=torch.int32)
    offsets = torch.randn(B, K, Hs * M, L, P, 2, generator=g, dtype=dt) * 3  # some land far outside
    logits = torch.randn(B, K, Hs * M, L * P, generator=g, dtype=dt)
    return features, weight, bias, Hs * M, ref, links, offsets, logits


def _run(features, weight, bias, heads, ref, links, offsets, logits):
    values = ops.project_values(features, weight, bias, heads, SHAPES)
    return ops.fgsa_attention(values, SHAPES, None, ref, links, offsets, logits)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_form_equals_reference_in_float64(form, seed):
    case = _case(seed)
    want = _run(*case)  # the reference implementation (no form active)
    with attention_form(form):
        got = _run(*case)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_portable_value_layout_is_per_level_gridsample_maps():
    features, weight, bias, heads, *_ = _case(3)
    with attention_form("portable"):
        levels = ops.project_values(features, weight, bias, heads, SHAPES)
    flat = reference.project_values(features, weight, bias, heads, SHAPES)  # [B, Len, heads, Dh]
    assert [tuple(v.shape) for v in levels] == [(2, heads, 4, h, w) for h, w in SHAPES]
    for v, (h, w), start in zip(levels, SHAPES, reference.level_starts(SHAPES)):
        # [B, heads, Dh, H, W] holds the reference's [B, H*W, heads, Dh] slice of that level
        want = flat[:, start:start + h * w].permute(0, 2, 3, 1).reshape(2, heads, 4, h, w)
        torch.testing.assert_close(v, want, rtol=1e-12, atol=1e-12)
