"""Invalid forward inputs raise InputError naming the argument; nothing runs on bad data."""

import pytest
import torch

from fgsa.errors import InputError
from fgsa.model import FMMP
from fgsa.model.examples import random_inputs


@pytest.fixture(scope="module")
def tiny():
    return FMMP("fmmp-tiny").eval()


def bad(tiny, field, match, **change):
    inputs = random_inputs(tiny.cfg, batch=2, shots=2, keypoints=10, seed=0)
    inputs.update(change)
    with pytest.raises(InputError, match=match) as info:
        tiny(**inputs)
    assert info.value.field == field
    return info.value


def test_valid_inputs_pass(tiny):
    """Valid inputs run: one point per layer, episode and keypoint, finite and normalised (a sigmoid) in [0, 1]."""
    with torch.no_grad():
        points = tiny(**random_inputs(tiny.cfg, batch=2, shots=2, keypoints=10, seed=0))
    assert points.shape == (tiny.cfg.n_layers, 2, 10, 2) and points.dtype == torch.float32
    assert torch.isfinite(points).all() and points.min() >= 0.0 and points.max() <= 1.0


def test_too_many_keypoints(tiny):
    inputs = random_inputs(tiny.cfg, batch=1, shots=1, keypoints=70, seed=0)
    pts = torch.rand(1, 1, 71, 2)
    with pytest.raises(InputError, match=r"support_points: expected 1 <= K <= 70"):
        tiny(inputs["query"], inputs["support"], pts, torch.ones(1, 1, 71, dtype=torch.bool),
             torch.zeros(1, 1, 71, 16, dtype=torch.int32))


def test_link_index_out_of_range(tiny):
    links = random_inputs(tiny.cfg, batch=2, shots=2, keypoints=10)["support_links"]
    links[1, 0, 3, 5] = 10
    err = bad(tiny, "support_links", r"indices in \[0, 10\)", support_links=links)
    assert "(1, 0, 3, 5)" in str(err)
    links[1, 0, 3, 5] = -1
    bad(tiny, "support_links", "indices", support_links=links)


def test_nan_points(tiny):
    pts = torch.rand(2, 2, 10, 2)
    pts[0, 1, 4, 0] = float("nan")
    bad(tiny, "support_points", "finite", support_points=pts)


def test_nan_image(tiny):
    q = torch.randn(2, 3, 256, 256)
    q[1, 0, 0, 0] = float("inf")
    bad(tiny, "query", "finite", query=q)


def test_zero_shots(tiny):
    bad(tiny, "support", "support shot", support=torch.randn(2, 0, 3, 256, 256),
        support_points=torch.rand(2, 0, 10, 2), support_visible=torch.ones(2, 0, 10, dtype=torch.bool),
        support_links=torch.zeros(2, 0, 10, 16, dtype=torch.int32))


def test_wrong_dtype_and_rank(tiny):
    bad(tiny, "support_links", "dtype int32 or int64", support_links=torch.zeros(2, 2, 10, 16))
    bad(tiny, "support_points", "rank 4", support_points=torch.rand(2, 10, 2))
    bad(tiny, "query", "size 256 on axis -1", query=torch.randn(2, 3, 256, 128))
    bad(tiny, "support", "batch size of query", support=torch.randn(3, 2, 3, 256, 256))
    bad(tiny, "query", "torch.Tensor", query=[1, 2])


def test_shot_without_visible_keypoint(tiny):
    vis = torch.ones(2, 2, 10, dtype=torch.bool)
    vis[1, 1] = False
    bad(tiny, "support_visible", "at least one visible", support_visible=vis)
