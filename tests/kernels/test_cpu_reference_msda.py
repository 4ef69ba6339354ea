"""The kernels' MSDA math (compiled CPU reference) against fgsa.ops.reference.msda."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fgsa.errors import InputError
from fgsa.ops import reference
from kernels.tools import cases

SHAPES = cases.FMMP_SHAPES
LEN_IN = sum(h * w for h, w in SHAPES)
F64_ATOL = 1e-12  # float64 against float64: only summation order differs


def _np(case: cases.MsdaCase) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return case.value.numpy(), case.sampling_locations.numpy(), case.attention_weights.numpy()


@pytest.mark.parametrize("vec,groups", [(1, 1), (4, 4), (8, 4), (2, 2), (4, 1)])
def test_float64_matches_reference_for_every_thread_layout(cpu_reference, vec, groups):
    case = cases.make_msda_case(2, seed=11 + vec * 7 + groups)
    got = cpu_reference.msda(case.value.numpy(), SHAPES, *_np(case)[1:], vec=vec, groups=groups)
    np.testing.assert_allclose(got, cases.expected_msda(case).numpy(), rtol=0, atol=F64_ATOL)


def test_float32_error_is_within_twice_pytorch_float32_error(cpu_reference):
    case = cases.make_msda_case(5, seed=5)
    value, loc, weights = (a.astype(np.float32) for a in _np(case))
    rounded = cases.MsdaCase(*(torch.from_numpy(a).double() for a in (value, loc, weights)), SHAPES)
    expected = cases.expected_msda(rounded)
    torch_err = (cases.expected_msda(rounded, torch.float32).double() - expected).abs().max().item()
    got = cpu_reference.msda(value, SHAPES, loc, weights, vec=4, groups=4)
    assert got.dtype == np.float32
    assert np.abs(got - expected.numpy()).max() <= 2 * torch_err


def _single_point_locations(points: list[tuple[float, float]], level: int) -> tuple[np.ndarray, np.ndarray]:
    """One query per point, sampled only at `level` with weight 1: the output is that one bilinear sample."""
    Q, L = len(points), len(SHAPES)
    loc = np.full((1, Q, 1, L, 1, 2), 0.5)
    loc[0, :, 0, level, 0] = points
    weights = np.zeros((1, Q, 1, L, 1))
    weights[0, :, 0, level, 0] = 1.0
    return loc, weights


@pytest.mark.parametrize("level", range(len(SHAPES)))
def test_every_border_and_far_point_alone(cpu_reference, level):
    h, w = SHAPES[level]
    xs = cases.border_coordinates(w) + list(cases.FAR_COORDINATES)
    ys = cases.border_coordinates(h) + list(cases.FAR_COORDINATES)
    points = [(x, y) for x in xs for y in ys]
    loc, weights = _single_point_locations(points, level)
    value = np.random.default_rng(level).standard_normal((1, LEN_IN, 1, 8))
    got = cpu_reference.msda(value, SHAPES, loc, weights, vec=4, groups=1)
    expected = reference.msda(torch.from_numpy(value), SHAPES, None, torch.from_numpy(loc), torch.from_numpy(weights))
    np.testing.assert_allclose(got, expected.numpy(), rtol=0, atol=F64_ATOL)
    # Points at or beyond the zero-contribution edges (pixel -1 or W/H) and far points give exact zeros.
    dead = [i for i, (x, y) in enumerate(points)
            if x <= -0.5 / w or x >= 1 + 0.5 / w or y <= -0.5 / h or y >= 1 + 0.5 / h]
    assert len(dead) > len(points) // 2
    assert not got[0, dead].any()


def test_pixel_centre_returns_that_pixel(cpu_reference):
    h, w = SHAPES[1]
    value = np.random.default_rng(3).standard_normal((1, LEN_IN, 1, 4))
    loc, weights = _single_point_locations([((2 + 0.5) / w, (5 + 0.5) / h)], level=1)
    got = cpu_reference.msda(value, SHAPES, loc, weights)
    start = SHAPES[0][0] * SHAPES[0][1]
    np.testing.assert_allclose(got[0, 0], value[0, start + 5 * w + 2, 0], rtol=0, atol=F64_ATOL)


def test_every_output_element_is_written(cpu_reference):
    case = cases.make_msda_case(3, seed=8)
    out = np.full((3, 70, 8 * 32), np.nan)
    cpu_reference.msda(*(_np(case)[:1]), SHAPES, *_np(case)[1:], vec=8, groups=4, out=out)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, cases.expected_msda(case).numpy(), rtol=0, atol=F64_ATOL)


def test_general_sizes_not_only_fmmp(cpu_reference):
    shapes = ((5, 7), (3, 4))
    case = cases.make_msda_case(2, queries=9, heads=3, head_dim=12, points=3, spatial_shapes=shapes, seed=4)
    for vec, groups in ((1, 1), (4, 0), (2, 0)):
        got = cpu_reference.msda(case.value.numpy(), shapes, *_np(case)[1:], vec=vec, groups=groups)
        np.testing.assert_allclose(got, cases.expected_msda(case).numpy(), rtol=0, atol=F64_ATOL)


def test_empty_batch_is_valid(cpu_reference):
    out = cpu_reference.msda(np.zeros((0, LEN_IN, 8, 32)), SHAPES, np.zeros((0, 70, 8, 3, 4, 2)),
                             np.zeros((0, 70, 8, 3, 4)))
    assert out.shape == (0, 70, 256)


def test_shape_errors_name_the_tensor(cpu_reference):
    case = cases.make_msda_case(1, seed=1)
    value, loc, weights = _np(case)
    with pytest.raises(InputError, match=r"value: expected Len_in = sum of H\*W .* = 1344"):
        cpu_reference.msda(value[:, :-1], SHAPES, loc, weights)
    with pytest.raises(InputError, match=r"sampling_locations: expected \[B, Q, M, L, P, 2\]"):
        cpu_reference.msda(value, SHAPES, loc[:, :, :, :2], weights)
    with pytest.raises(InputError, match=r"attention_weights: expected \[B, Q, M, L, P\]"):
        cpu_reference.msda(value, SHAPES, loc, weights[:, :, :, :, :3])
    with pytest.raises(InputError, match="spatial_shapes"):
        cpu_reference.msda(value, [(8, 8), (16, 0), (32, 32)], loc, weights)
    with pytest.raises(InputError, match="no thread layout"):
        cpu_reference.msda(value, SHAPES, loc, weights, vec=2, groups=8)  # 16 threads x 8 groups > a warp
