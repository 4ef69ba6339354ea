"""libfgsa_ort_ops.so in ONNX Runtime against fgsa.ops.reference in float64, on the kernels' case set.

Cases (kernels/tools/cases.py): every border of every level, points far outside, invisible keypoints at
(0, 0) and links to them, links outside [0, K) (zero channels), K = 70, S = 5 shots and B = 8. Tolerances
are derived, never tuned: float32 within 2x PyTorch's own float32 error on the same (float32-rounded)
inputs. For float16, PyTorch's CPU grid_sample cannot serve as the half reference (it crashes on float16
in torch 2.13), so the half budget is what PyTorch's float32 result rounded to float16 is off by: the
plugin's FP16 path computes in float32 and rounds only its output, so it must stay within 2x that.
Every output is NaN-poisoned before the run.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kernels.tools import cases
from tests.kernels.ort_graphs import (TRT_MSDA_OP, fgsa_feed, library_or_skip, msda_feed, node_model, run_into,
                                      session, trt_msda_feed)

SHAPES = cases.FMMP_SHAPES
K, HS, M, DH = 70, 8, 8, 32


@pytest.fixture(scope="module")
def library():
    return library_or_skip()


def _rounded_fgsa(case: cases.FgsaCase, value_type, coord_type) -> cases.FgsaCase:
    """The case with its float inputs rounded to the types the session gets (float64 again)."""
    r = lambda t, d: torch.from_numpy(t.numpy().astype(d).astype(np.float64))  # noqa: E731
    return cases.FgsaCase(r(case.value, value_type), r(case.ref_points, coord_type), case.links,
                          r(case.offsets, coord_type), r(case.logits, coord_type), case.spatial_shapes)


def _rounded_msda(case: cases.MsdaCase, value_type, coord_type) -> cases.MsdaCase:
    r = lambda t, d: torch.from_numpy(t.numpy().astype(d).astype(np.float64))  # noqa: E731
    return cases.MsdaCase(r(case.value, value_type), r(case.sampling_locations, coord_type),
                          r(case.attention_weights, coord_type), case.spatial_shapes)


def _budget(expected: torch.Tensor, torch_f32: torch.Tensor, value_type) -> float:
    """2x PyTorch's error: its float32 result, rounded to float16 when the output is float16."""
    ours = torch_f32.numpy().astype(value_type).astype(np.float64)
    return 2 * float(np.abs(ours - expected.numpy()).max())


def _poisoned(shape, dtype) -> np.ndarray:
    return np.full(shape, np.nan, dtype=dtype)


FGSA_TYPES = [(np.float32, np.float32), (np.float16, np.float16), (np.float16, np.float32)]


@pytest.mark.parametrize("value_type,coord_type", FGSA_TYPES, ids=["fp32", "fp16", "fp16-value-fp32-coord"])
@pytest.mark.parametrize("batch", [5, 8], ids=["S5", "B8"])
def test_fgsa_attention_matches_reference(library, batch, value_type, coord_type):
    case = cases.make_fgsa_case(batch, seed=100 + batch)
    assert case.invalid_links.any() and (case.ref_points == 0).all(-1).any()
    feed = fgsa_feed(case, value_type, coord_type)
    rounded = _rounded_fgsa(case, value_type, coord_type)
    expected = cases.expected_fgsa(rounded)
    budget = _budget(expected, cases.expected_fgsa(rounded, torch.float32), value_type)
    sess = session(library, node_model("FGSA_Attention", feed, SHAPES))
    got = run_into(sess, feed, _poisoned((batch, K, HS * M * DH), value_type))
    assert np.isfinite(got).all()
    err = np.abs(got.astype(np.float64) - expected.numpy()).max()
    assert err <= budget, (err, budget)
    # the out-of-range links' channels are exactly zero
    assert not got.reshape(batch, K, HS, -1)[case.invalid_links.numpy()].any()


@pytest.mark.parametrize("value_type,coord_type", FGSA_TYPES, ids=["fp32", "fp16", "fp16-value-fp32-coord"])
def test_msda_matches_reference(library, value_type, coord_type):
    case = cases.make_msda_case(8, seed=31)
    feed = msda_feed(case, value_type, coord_type)
    rounded = _rounded_msda(case, value_type, coord_type)
    expected = cases.expected_msda(rounded)
    budget = _budget(expected, cases.expected_msda(rounded, torch.float32), value_type)
    sess = session(library, node_model("FGSA_MSDA", feed, SHAPES))
    got = run_into(sess, feed, _poisoned((8, 70, M * DH), value_type))
    assert np.isfinite(got).all()
    assert np.abs(got.astype(np.float64) - expected.numpy()).max() <= budget


@pytest.mark.parametrize("float_type", [np.float32, np.float16], ids=["fp32", "fp16"])
def test_tensorrt_builtin_msda_matches_reference(library, float_type):
    """TensorRT's op: level geometry as int32 tensors, output [B, Q, M, Dh]."""
    case = cases.make_msda_case(5, queries=70, seed=32)
    feed = trt_msda_feed(case, float_type)
    rounded = _rounded_msda(case, float_type, float_type)
    expected = cases.expected_msda(rounded).reshape(5, 70, M, DH)
    budget = _budget(expected, cases.expected_msda(rounded, torch.float32).reshape(5, 70, M, DH), float_type)
    sess = session(library, node_model(TRT_MSDA_OP, feed))
    got = run_into(sess, feed, _poisoned((5, 70, M, DH), float_type))
    assert np.isfinite(got).all()
    assert np.abs(got.astype(np.float64) - expected.numpy()).max() <= budget


def test_general_sizes_and_odd_head_dim(library):
    """Not only FMMP sizes: 2 levels of odd sizes, Dh = 6 (channel chunks of 2), P = 3."""
    shapes = ((5, 7), (3, 4))
    case = cases.make_fgsa_case(2, keypoints=11, side_heads=3, heads=4, head_dim=6, points=3, spatial_shapes=shapes,
                                seed=12)
    feed = fgsa_feed(case)
    rounded = _rounded_fgsa(case, np.float32, np.float32)
    expected = cases.expected_fgsa(rounded)
    budget = _budget(expected, cases.expected_fgsa(rounded, torch.float32), np.float32)
    got = run_into(session(library, node_model("FGSA_Attention", feed, shapes)), feed, _poisoned((2, 11, 72), np.float32))
    assert np.abs(got - expected.numpy()).max() <= budget


def test_float16_values_round_trip_exactly(library):
    """Every finite float16 value sampled at a pixel centre with weight 1 comes back bit for bit: the
    library's float16 widening and rounding are exact where they must be (normals and subnormals; -0 sums
    to +0 in the accumulator, as on the GPU)."""
    bits = np.arange(65536, dtype=np.uint16).view(np.float16)
    finite = bits[np.isfinite(bits)]
    pixels = int(np.ceil(finite.size / 8))
    value = np.zeros((1, pixels, 1, 8), np.float16)
    value.reshape(-1)[:finite.size] = finite
    # one query per pixel, sampling its centre ((x + 0.5) / W) on a 1 x pixels map with weight 1
    xs = (np.arange(pixels) + 0.5) / pixels
    loc = np.zeros((1, pixels, 1, 1, 1, 2), np.float32)
    loc[0, :, 0, 0, 0, 0], loc[..., 1] = xs, 0.5
    feed = {"value": value, "sampling_locations": loc, "attention_weights": np.ones((1, pixels, 1, 1, 1), np.float32)}
    got = run_into(session(library, node_model("FGSA_MSDA", feed, [(1, pixels)])), feed,
                   _poisoned((1, pixels, 8), np.float16))
    got = got.reshape(-1)[:finite.size]
    nonzero = finite != 0
    np.testing.assert_array_equal(got[nonzero].view(np.uint16), finite[nonzero].view(np.uint16))
    assert not got[~nonzero].any()


def test_empty_batch_runs_and_writes_nothing(library):
    case = cases.make_fgsa_case(1, keypoints=4, seed=5)
    feed = {k: v[:0] for k, v in fgsa_feed(case).items()}
    sess = session(library, node_model("FGSA_Attention", feed, SHAPES))
    assert sess.run(None, feed)[0].shape == (0, 4, HS * M * DH)
