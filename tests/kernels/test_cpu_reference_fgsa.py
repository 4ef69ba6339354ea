"""The kernels' fused FGSAAttention math (compiled CPU reference) against fgsa.ops.reference.fgsa_attention.

FMMP sizes: K = 70 keypoints, 8 side heads x 8 heads, Dh = 32, L = 3 levels, P = 4 points; S = 5 support
shots run as a batch of 5.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fgsa.errors import InputError
from fgsa.ops import reference
from kernels.tools import cases

SHAPES = cases.FMMP_SHAPES
LEN_IN = sum(h * w for h, w in SHAPES)
K, HS, M, DH, L, P = 70, 8, 8, 32, 3, 4
SHOTS = 5
F64_ATOL = 1e-12


def _run(cpu_reference, case: cases.FgsaCase, **kw) -> np.ndarray:
    return cpu_reference.fgsa_attention(case.value.numpy(), case.spatial_shapes, case.ref_points.numpy(),
                                        case.links.numpy(), case.offsets.numpy(), case.logits.numpy(), **kw)


@pytest.fixture(scope="module")
def shots_case() -> cases.FgsaCase:
    """Five support shots with invisible keypoints, border points, far offsets and links outside [0, K)."""
    case = cases.make_fgsa_case(SHOTS, seed=2025)
    assert case.invalid_links.any() and (case.ref_points == 0).all(-1).any()
    return case


@pytest.fixture(scope="module")
def shots_expected(shots_case) -> np.ndarray:
    return cases.expected_fgsa(shots_case).numpy()


@pytest.mark.parametrize("vec,groups", [(1, 1), (4, 4), (8, 8), (4, 1)])
def test_float64_matches_reference_k70_five_shots(cpu_reference, shots_case, shots_expected, vec, groups):
    got = _run(cpu_reference, shots_case, vec=vec, groups=groups)
    assert got.shape == (SHOTS, K, HS * M * DH)
    np.testing.assert_allclose(got, shots_expected, rtol=0, atol=F64_ATOL)


def test_float32_error_is_within_twice_pytorch_float32_error(cpu_reference, shots_case):
    c = shots_case
    f32 = [t.to(torch.float32) for t in (c.value, c.ref_points, c.offsets, c.logits)]
    rounded = cases.FgsaCase(f32[0].double(), f32[1].double(), c.links, f32[2].double(), f32[3].double(), SHAPES)
    expected = cases.expected_fgsa(rounded)
    torch_err = (cases.expected_fgsa(rounded, torch.float32).double() - expected).abs().max().item()
    got = cpu_reference.fgsa_attention(f32[0].numpy(), SHAPES, f32[1].numpy(), c.links.numpy(), f32[2].numpy(),
                                       f32[3].numpy(), vec=4, groups=4)
    assert got.dtype == np.float32
    assert np.abs(got - expected.numpy()).max() <= 2 * torch_err


def test_links_outside_range_give_zeros_and_leave_other_heads_alone(cpu_reference):
    case = cases.make_fgsa_case(1, invalid_links=False, seed=7)
    valid = _run(cpu_reference, case)
    links = case.links.clone()
    links[0, 3, 2] = K  # one past the end
    links[0, 10, 7] = -1
    links[0, 69, :] = 2**31 - 1
    case.links = links
    got = _run(cpu_reference, case).reshape(1, K, HS, -1)
    valid = valid.reshape(1, K, HS, -1)
    bad = case.invalid_links.numpy()
    assert bad.sum() == 2 + HS
    assert not got[bad].any()
    np.testing.assert_array_equal(got[~bad], valid[~bad])


def test_link_to_last_keypoint_is_valid(cpu_reference):
    case = cases.make_fgsa_case(1, invalid_links=False, seed=9)
    case.links[0, 0, :] = K - 1
    got = _run(cpu_reference, case)
    np.testing.assert_allclose(got, cases.expected_fgsa(case).numpy(), rtol=0, atol=F64_ATOL)
    assert np.abs(got[0, 0]).max() > 0


def test_links_to_invisible_keypoints_sample_around_origin(cpu_reference):
    """Every keypoint invisible at (0, 0) with zero offsets: each sample is the bilinear value at pixel
    (-0.5, -0.5) of every level, i.e. a quarter of the level's first pixel."""
    case = cases.make_fgsa_case(2, invalid_links=False, seed=3)
    case.ref_points.zero_()
    case.offsets.zero_()
    got = _run(cpu_reference, case)
    np.testing.assert_allclose(got, cases.expected_fgsa(case).numpy(), rtol=0, atol=F64_ATOL)
    weights = torch.softmax(case.logits, -1).view(2, K, HS * M, L, P).sum(-1)  # per level
    firsts = torch.stack([case.value[:, start] for start in reference.level_starts(SHAPES)], dim=1)  # [B, L, HM, Dh]
    manual = 0.25 * torch.einsum("bkhl,blhc->bkhc", weights, firsts).reshape(2, K, -1)
    np.testing.assert_allclose(got, manual.numpy(), rtol=0, atol=F64_ATOL)


def test_softmax_is_stable_for_huge_logits(cpu_reference):
    case = cases.make_fgsa_case(1, invalid_links=False, seed=4)
    case.logits.zero_()
    case.logits[..., 5] = 1e4  # exp(1e4) overflows without the max subtraction; weight becomes one-hot
    got = _run(cpu_reference, case)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, cases.expected_fgsa(case).numpy(), rtol=0, atol=F64_ATOL)


def test_every_output_element_is_written(cpu_reference, shots_case, shots_expected):
    out = np.full(shots_expected.shape, np.nan)
    _run(cpu_reference, shots_case, vec=8, groups=8, out=out)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, shots_expected, rtol=0, atol=F64_ATOL)


def test_general_sizes_not_only_fmmp(cpu_reference):
    shapes = ((5, 7), (3, 4))
    case = cases.make_fgsa_case(2, keypoints=11, side_heads=3, heads=4, head_dim=16, points=2, spatial_shapes=shapes,
                                seed=12)
    for vec, groups in ((1, 1), (4, 0), (8, 0), (2, 2)):
        got = _run(cpu_reference, case, vec=vec, groups=groups)
        np.testing.assert_allclose(got, cases.expected_fgsa(case).numpy(), rtol=0, atol=F64_ATOL)


def test_shape_errors_name_the_tensor(cpu_reference):
    c = cases.make_fgsa_case(1, keypoints=6, seed=1)
    args = dict(value=c.value.numpy(), ref=c.ref_points.numpy(), links=c.links.numpy(), off=c.offsets.numpy(),
                logits=c.logits.numpy())

    def run(**over):
        a = {**args, **over}
        return cpu_reference.fgsa_attention(a["value"], SHAPES, a["ref"], a["links"], a["off"], a["logits"])

    with pytest.raises(InputError, match=r"links: expected \[B, K, Hs\]"):
        run(links=args["links"][:, :5])
    with pytest.raises(InputError, match=r"logits: expected \[B, K, Hs\*M, L\*P\]"):
        run(logits=args["logits"][..., :11])
    with pytest.raises(InputError, match=r"value: expected dim 2 = Hs\*M"):
        run(links=np.zeros((1, 6, 3), np.int32))
    with pytest.raises(InputError, match=r"ref_points: expected \[B, K, 2\]"):
        run(ref=args["ref"][..., :1])
    with pytest.raises(InputError, match="links"):
        run(links=args["links"].astype(np.float32))
