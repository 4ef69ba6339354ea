"""The item layout (LaunchConfig::layout = kItem, fgsa/item_layout.h) on the CPU reference: the same
functions as the GPU kernel, with the shuffles replaced by what the source lane holds. Both layouts must
equal the float64 reference; FP32 stays within 2x PyTorch's own FP32 error.

Item-layout paths covered: L and P compile-time (FMMP 3 x 4, 32-bit indices), runtime L and P (other
pyramids), 64-bit indices, every group count a warp allows, vec 1 / 4 / 8, chunks of staged samples
(team < L*P) and one chunk (team >= L*P).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fgsa.errors import InputError
from kernels.tools import cases

SHAPES = cases.FMMP_SHAPES
F64_ATOL = 1e-12
K, HS, M, DH = 70, 8, 8, 32


def _fgsa(cpu_reference, case: cases.FgsaCase, **kw) -> np.ndarray:
    return cpu_reference.fgsa_attention(case.value.numpy(), case.spatial_shapes, case.ref_points.numpy(),
                                        case.links.numpy(), case.offsets.numpy(), case.logits.numpy(), **kw)


def _msda(cpu_reference, case: cases.MsdaCase, **kw) -> np.ndarray:
    return cpu_reference.msda(case.value.numpy(), case.spatial_shapes, case.sampling_locations.numpy(),
                              case.attention_weights.numpy(), **kw)


@pytest.fixture(scope="module")
def fgsa_case() -> cases.FgsaCase:
    case = cases.make_fgsa_case(3, seed=int(np.random.default_rng().integers(1 << 30)))
    assert case.invalid_links.any()
    return case


@pytest.fixture(scope="module")
def fgsa_expected(fgsa_case) -> np.ndarray:
    return cases.expected_fgsa(fgsa_case).numpy()


# (vec, groups, index_bits): groups 0 = from the item count; 4 x 1 makes teams of 8 lanes for 12 samples
# (two chunks), 8 x 8 one chunk of 32 lanes, 1 x 1 a 32-lane channel row.
ITEM_PLANS = [(1, 1, 0), (4, 0, 0), (8, 0, 0), (4, 1, 0), (4, 4, 32), (8, 8, 0), (8, 2, 64), (2, 2, 64)]


@pytest.mark.parametrize("vec,groups,index_bits", ITEM_PLANS)
def test_fgsa_item_layout_float64_matches_reference(cpu_reference, fgsa_case, fgsa_expected, vec, groups, index_bits):
    out = np.full(fgsa_expected.shape, np.nan)
    _fgsa(cpu_reference, fgsa_case, vec=vec, groups=groups, layout="item", index_bits=index_bits, out=out)
    np.testing.assert_allclose(out, fgsa_expected, rtol=0, atol=F64_ATOL)  # also: no NaN left from the poison


def test_both_layouts_agree_on_fmmp_shots(cpu_reference, fgsa_case, fgsa_expected):
    team = _fgsa(cpu_reference, fgsa_case, vec=8, groups=8, layout="team")
    item = _fgsa(cpu_reference, fgsa_case, vec=8, groups=0, layout="item")
    np.testing.assert_allclose(team, fgsa_expected, rtol=0, atol=F64_ATOL)
    np.testing.assert_allclose(item, team, rtol=0, atol=F64_ATOL)
    bad = fgsa_case.invalid_links.numpy()
    assert not item.reshape(*bad.shape, -1)[bad].any()  # links outside [0, K): zeros


def test_index_width_does_not_change_the_result(cpu_reference, fgsa_case):
    narrow = _fgsa(cpu_reference, fgsa_case, vec=4, groups=0, layout="item", index_bits=32)
    wide = _fgsa(cpu_reference, fgsa_case, vec=4, groups=0, layout="item", index_bits=64)
    np.testing.assert_array_equal(narrow, wide)


@pytest.mark.parametrize("vec,groups", [(1, 1), (4, 0), (8, 0), (2, 2)])
def test_fgsa_item_layout_general_sizes(cpu_reference, vec, groups):
    """Runtime L and P (2 levels x 3 points), Dh 16, K 11."""
    case = cases.make_fgsa_case(2, keypoints=11, side_heads=3, heads=4, head_dim=16, points=3,
                                spatial_shapes=((5, 7), (3, 4)), seed=12 + vec)
    got = _fgsa(cpu_reference, case, vec=vec, groups=groups, layout="item")
    np.testing.assert_allclose(got, cases.expected_fgsa(case).numpy(), rtol=0, atol=F64_ATOL)


def test_fgsa_item_layout_huge_logits_and_origin_links(cpu_reference):
    case = cases.make_fgsa_case(1, invalid_links=False, seed=4)
    case.logits.zero_()
    case.logits[..., 5] = 1e4  # the combined softmax statistics must subtract the item's max
    case.ref_points[0, :10] = 0.0
    got = _fgsa(cpu_reference, case, vec=4, groups=0, layout="item")
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, cases.expected_fgsa(case).numpy(), rtol=0, atol=F64_ATOL)


def test_fgsa_item_layout_float32_within_twice_pytorch_error(cpu_reference, fgsa_case):
    c = fgsa_case
    f32 = [t.to(torch.float32) for t in (c.value, c.ref_points, c.offsets, c.logits)]
    rounded = cases.FgsaCase(f32[0].double(), f32[1].double(), c.links, f32[2].double(), f32[3].double(), SHAPES)
    expected = cases.expected_fgsa(rounded)
    torch_err = (cases.expected_fgsa(rounded, torch.float32).double() - expected).abs().max().item()
    got = cpu_reference.fgsa_attention(f32[0].numpy(), SHAPES, f32[1].numpy(), c.links.numpy(), f32[2].numpy(),
                                       f32[3].numpy(), vec=4, groups=0, layout="item")
    assert got.dtype == np.float32
    assert np.abs(got - expected.numpy()).max() <= 2 * torch_err


@pytest.mark.parametrize("vec,groups,index_bits", [(1, 1, 0), (4, 0, 0), (8, 0, 64), (4, 1, 32), (2, 2, 0)])
def test_msda_item_layout_float64_matches_reference(cpu_reference, vec, groups, index_bits):
    case = cases.make_msda_case(2, seed=31 + vec + groups)
    out = np.full((2, 70, 8 * 32), np.nan)
    _msda(cpu_reference, case, vec=vec, groups=groups, layout="item", index_bits=index_bits, out=out)
    np.testing.assert_allclose(out, cases.expected_msda(case).numpy(), rtol=0, atol=F64_ATOL)


def test_msda_item_layout_general_sizes(cpu_reference):
    case = cases.make_msda_case(2, queries=9, heads=3, head_dim=8, points=5, spatial_shapes=((6, 3), (2, 9), (4, 4),
                                                                                            (1, 1)), seed=5)
    got = _msda(cpu_reference, case, vec=4, groups=0, layout="item")
    np.testing.assert_allclose(got, cases.expected_msda(case).numpy(), rtol=0, atol=F64_ATOL)


def test_groups_follow_the_item_count(cpu_reference):
    """FMMP FGSA_Attention (Dh 32, 12 samples): B = 1 has 4480 items and needs every group a warp allows;
    B = 64 has 286720 items, enough threads with one group (no per-item work split at all)."""
    items = {b: b * K * HS * M for b in (1, 5, 64)}
    assert cpu_reference.item_groups(DH, 12, 8, items[1]) == 8  # FP16: 4 lanes per row x 8
    assert cpu_reference.item_groups(DH, 12, 4, items[1]) == 4  # FP32: 8 lanes per row x 4
    assert cpu_reference.item_groups(DH, 12, 8, items[5]) == 2
    assert cpu_reference.item_groups(DH, 12, 8, items[64]) == 1
    assert cpu_reference.item_groups(DH, 2, 8, items[1]) == 2  # never more groups than samples
    assert cpu_reference.item_groups(24, 12, 4, items[1]) == 0  # 6 lanes per row: no shuffle team


@pytest.mark.parametrize("head_dim,vec,team", [(32, 1, 32), (32, 4, 8)])
def test_32_bit_item_indices_hold_every_grid_thread(cpu_reference, head_dim, vec, team):
    """The item kernel's thread index is 32-bit where the planner says so: the thread count, and every
    thread of the grid (whole 256-thread blocks, the last block's padding included), must stay below 2^31.
    One group, one sample: only the thread count (items x team) decides."""
    last = (2**31 - 1) // team  # the most items whose thread count fits in int32
    grid = (last * team + 255) // 256 * 256
    assert grid - 1 <= 2**31 - 1  # 2^31 is a multiple of the block: the padding of `last` items cannot wrap
    assert cpu_reference.item_index_bits(head_dim, 1, vec, 1, last) == 32
    assert cpu_reference.item_index_bits(head_dim, 1, vec, 1, last + 1) == 64  # 2^31 threads
    assert cpu_reference.item_index_bits(head_dim, 1, vec, 1, 1000) == 32


def test_item_layout_rejections_name_the_cause(cpu_reference, fgsa_case):
    with pytest.raises(InputError, match="no thread layout.*item layout"):
        _fgsa(cpu_reference, fgsa_case, vec=8, groups=16, layout="item")  # 4 x 16 lanes > a warp
    with pytest.raises(InputError, match="index_bits=16"):
        _fgsa(cpu_reference, fgsa_case, vec=8, groups=0, layout="item", index_bits=16)
    with pytest.raises(InputError, match="layout"):
        _fgsa(cpu_reference, fgsa_case, layout="rows")
