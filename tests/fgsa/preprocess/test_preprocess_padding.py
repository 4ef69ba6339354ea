"""eqdiv (test) and mixup (train) padding to 70 points: hand-computed cases and structural properties."""

import numpy as np
import pytest

from fgsa.preprocess import K_MAX, MixupDraws, draw_mixup, eqdiv_padding, mixup_padding
from fgsa.preprocess.padding import torch_linspace_f32

P = np.array([[0.0, 0.0], [0.4, 0.0], [0.4, 0.8]], dtype=np.float32)
CHAIN3 = [[0, 1], [1, 2]]


def random_pose(rng, k_c, n_edges, p_visible=0.8):
    pts = rng.uniform(-0.2, 1.2, (k_c, 2)).astype(np.float32)
    vis = rng.random(k_c) < p_visible
    a = rng.integers(0, k_c, n_edges)
    b = rng.integers(0, k_c, n_edges)
    a[0], b[0] = 0, k_c - 1  # some edge touches the last index, so K_c is the skeleton's too
    return pts, vis, np.stack([a, b], 1)


# ---------------------------------------------------------------- eqdiv, by hand
def test_eqdiv_tiny_case_by_hand():
    # K_c = 3, 2 edges, k_max = 8: n, tail = divmod(5, 2) = (2, 1); t = (1/3, 2/3), first point nearest e.
    out = eqdiv_padding(P, [True, True, True], CHAIN3, k_max=8)
    expected = np.array([
        [0, 0], [0.4, 0], [0.4, 0.8],
        [0.4 * 2 / 3, 0], [0.4 / 3, 0],          # edge (0,1): id 3 nearest P1, id 4 nearest P0
        [0.4, 0.8 * 2 / 3], [0.4, 0.8 / 3],      # edge (1,2): id 5 nearest P2, id 6 nearest P1
        [0, 0],                                   # tail
    ])
    np.testing.assert_allclose(out.points, expected, atol=1e-7)
    assert out.points.dtype == np.float32 and out.points.shape == (8, 2)
    np.testing.assert_array_equal(out.visible, [1, 1, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(out.skeleton, [[0, 1], [1, 2], [0, 3], [3, 4], [4, 1], [1, 5], [5, 6], [6, 2]])


def test_eqdiv_invisible_endpoint_hides_the_edge_points_and_chain():
    out = eqdiv_padding(P, [True, True, False], CHAIN3, k_max=8)
    np.testing.assert_array_equal(out.visible, [1, 1, 0, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(out.skeleton, [[0, 1], [1, 2], [0, 3], [3, 4], [4, 1]])
    # geometry is still interpolated, invisible or not
    np.testing.assert_allclose(out.points[5], [0.4, 0.8 * 2 / 3], atol=1e-7)


def test_eqdiv_star_and_default_size():
    # star: 5 leaves around node 0, K_c = 6, 70 - 6 = 64 = 5 * 12 + 4 -> 12 points per edge, 4 tail zeros
    rng = np.random.default_rng(1)
    pts = rng.random((6, 2)).astype(np.float32)
    star = [[0, i] for i in range(1, 6)]
    out = eqdiv_padding(pts, np.ones(6, bool), star)
    assert out.points.shape == (K_MAX, 2) and out.visible.shape == (K_MAX,)
    np.testing.assert_array_equal(out.points[-4:], 0)
    assert not out.visible[-4:].any() and out.visible[:-4].all()
    assert out.skeleton.shape == (5 + 5 * 13, 2)
    t = np.arange(1, 13) / 13
    for j, (s, e) in enumerate(star):
        block = out.points[6 + 12 * j: 6 + 12 * (j + 1)]
        np.testing.assert_allclose(block, t[:, None] * pts[s] + (1 - t[:, None]) * pts[e], atol=1e-6)
    # the chain of edge j: s -> 6+12j -> ... -> 6+12j+11 -> e
    chain = out.skeleton[5:5 + 13]
    np.testing.assert_array_equal(chain[:, 0], [0] + list(range(6, 18)))
    np.testing.assert_array_equal(chain[:, 1], list(range(6, 18)) + [1])


def test_eqdiv_k69_one_edge_midpoint_and_k70_no_padding():
    rng = np.random.default_rng(2)
    pts = rng.random((69, 2)).astype(np.float32)
    out = eqdiv_padding(pts, np.ones(69, bool), [[3, 68]])
    np.testing.assert_allclose(out.points[69], 0.5 * pts[3] + 0.5 * pts[68], atol=1e-7)
    np.testing.assert_array_equal(out.skeleton, [[3, 68], [3, 69], [69, 68]])

    out2 = eqdiv_padding(pts, np.ones(69, bool), [[3, 68], [0, 1]])  # 1 < L_c: only a tail zero
    np.testing.assert_array_equal(out2.points[69], [0, 0])
    assert not out2.visible[69]
    np.testing.assert_array_equal(out2.skeleton, [[3, 68], [0, 1]])

    pts70 = rng.random((70, 2)).astype(np.float32)
    vis70 = rng.random(70) < 0.5
    out3 = eqdiv_padding(pts70, vis70, [[0, 69]])
    np.testing.assert_array_equal(out3.points, pts70)
    np.testing.assert_array_equal(out3.visible, vis70)
    np.testing.assert_array_equal(out3.skeleton, [[0, 69]])


def test_eqdiv_fewer_pads_than_edges_gives_only_tail_zeros():
    rng = np.random.default_rng(3)
    pts, vis, edges = random_pose(rng, 60, 15)  # 70 - 60 = 10 < 15 edges
    out = eqdiv_padding(pts, vis, edges)
    np.testing.assert_array_equal(out.points[60:], 0)
    assert not out.visible[60:].any()
    np.testing.assert_array_equal(out.skeleton, edges)


def test_eqdiv_random_structure():
    rng = np.random.default_rng(4)
    for _ in range(30):
        k_c = int(rng.integers(2, 60))
        n_edges = int(rng.integers(1, 25))
        pts, vis, edges = random_pose(rng, k_c, n_edges)
        out = eqdiv_padding(pts, vis, edges)
        n, tail = divmod(K_MAX - k_c, n_edges)
        np.testing.assert_array_equal(out.points[:k_c], pts)
        np.testing.assert_array_equal(out.visible[:k_c], vis)
        np.testing.assert_array_equal(out.skeleton[:n_edges], edges)
        for j, (s, e) in enumerate(edges):
            ids = slice(k_c + j * n, k_c + (j + 1) * n)
            assert np.all(out.visible[ids] == (vis[s] & vis[e]))
        if tail:
            np.testing.assert_array_equal(out.points[-tail:], 0)
        # every chain edge touches a padded id, and chains exist exactly for edges with both ends visible
        n_vis_edges = int(np.sum(vis[edges[:, 0]] & vis[edges[:, 1]]))
        assert len(out.skeleton) == n_edges + (n_vis_edges * (n + 1) if n else 0)


def test_linspace_matches_torch_bit_for_bit():
    torch = pytest.importorskip("torch")
    for steps in range(2, 75):
        np.testing.assert_array_equal(torch_linspace_f32(steps), torch.linspace(0, 1, steps).numpy(), err_msg=steps)


# ---------------------------------------------------------------- mixup
def test_mixup_tiny_case_by_hand():
    # K_c = 3, k_max = 8, 5 pads: edge 1 chosen 3 times, edge 0 twice -> edge 0 first (ascending ids).
    lam = np.array([0, 0, 0, 0.75, 0.25, 0.9, 0.1, 0.5])
    draws = MixupDraws(lam, np.ones(8, bool), np.array([1, 0, 1, 1, 0, 9, 9, 9]))
    out = mixup_padding(P, [True, True, True], CHAIN3, draws=draws, k_max=8)
    # edge 0 (0->1) uses ids 3,4 with sorted lam[3:5] = (0.25, 0.75); edge 1 (1->2) ids 5..7, sorted (0.1, 0.5, 0.9)
    expected = np.array([
        [0, 0], [0.4, 0], [0.4, 0.8],
        [0.4 * 0.75, 0], [0.4 * 0.25, 0],
        [0.4, 0.8 * 0.9], [0.4, 0.8 * 0.5], [0.4, 0.8 * 0.1],
    ])
    np.testing.assert_allclose(out.points, expected, atol=1e-7)
    assert out.visible.all()
    np.testing.assert_array_equal(out.skeleton,
                                  [[0, 1], [1, 2], [0, 3], [3, 4], [4, 1], [1, 5], [5, 6], [6, 7], [7, 2]])


def test_mixup_nonzero_mask_and_partial_chain():
    lam = np.linspace(0, 1, 8)
    nonzero = np.array([1, 1, 1, 1, 0, 1, 0, 1], bool)
    draws = MixupDraws(lam, nonzero, np.array([0, 0, 0, 0, 0, 1, 1, 1]))
    out = mixup_padding(P, [True, True, True], CHAIN3, draws=draws, k_max=8)
    # all 5 pads on edge 0 (ids 3..7); ids 4 and 6 masked -> chain 0 -> 3 -> 5 -> 7 -> 1
    np.testing.assert_array_equal(out.visible, [1, 1, 1, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(out.skeleton, [[0, 1], [1, 2], [0, 3], [3, 5], [5, 7], [7, 1]])


def _edge_blocks(k_c, selected):
    """(edge id, first id, count) in processing order, from the documented semantics."""
    blocks, ptr = [], k_c
    for j in np.unique(selected[:K_MAX - k_c]):
        m = int(np.sum(selected[:K_MAX - k_c] == j))
        blocks.append((int(j), ptr, m))
        ptr += m
    return blocks


def test_mixup_properties_on_random_poses():
    rng = np.random.default_rng(5)
    for trial in range(40):
        k_c = int(rng.integers(2, 71))
        n_edges = int(rng.integers(1, 30))
        pts, vis, edges = random_pose(rng, k_c, n_edges)
        draws = draw_mixup(n_edges, np.random.default_rng(trial))
        out = mixup_padding(pts, vis, edges, draws)
        assert out.points.shape == (K_MAX, 2) and out.visible.shape == (K_MAX,)
        np.testing.assert_array_equal(out.points[:k_c], pts)
        np.testing.assert_array_equal(out.skeleton[:n_edges], edges)
        n_chain = 0
        for j, first, m in _edge_blocks(k_c, draws.selected):
            s, e = edges[j]
            ids = np.arange(first, first + m)
            assert np.all(out.visible[ids] == (vis[s] & vis[e]))
            lam = np.sort(draws.lam[first:first + m].astype(np.float32))
            np.testing.assert_allclose(out.points[ids], lam[:, None] * pts[s] + (1 - lam[:, None]) * pts[e],
                                       atol=2e-7)
            seg = pts[s].astype(np.float64) - pts[e]
            if np.linalg.norm(seg) > 1e-3:  # sorted weights: the points walk from e towards s
                along = (out.points[ids] - pts[e]) @ seg / (seg @ seg)
                assert np.all(np.diff(along) >= -1e-6)
            n_chain += (m + 1) if (vis[s] and vis[e]) else 0
        assert len(out.skeleton) == n_edges + n_chain


def test_mixup_deterministic_and_shared_draws():
    rng = np.random.default_rng(6)
    pts, vis, edges = random_pose(rng, 12, 9)
    a = mixup_padding(pts, vis, edges, draws=123)
    b = mixup_padding(pts, vis, edges, draws=123)
    c = mixup_padding(pts, vis, edges, draws=124)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.points, c.points)
    # a RandomState replays the official legacy stream: beta, then rand, then randint
    rs = np.random.RandomState(7)
    lam, nz, sel = rs.beta(1, 1, K_MAX), rs.rand(K_MAX) < 1.0, rs.randint(9, size=K_MAX)
    d = draw_mixup(9, np.random.RandomState(7))
    np.testing.assert_array_equal(d.lam, lam)
    np.testing.assert_array_equal(d.nonzero, nz)
    np.testing.assert_array_equal(d.selected, sel)
    assert d.nonzero.all() and d.selected.min() >= 0 and d.selected.max() < 9


def test_mixup_k70_is_identity():
    rng = np.random.default_rng(8)
    pts, vis, edges = random_pose(rng, 70, 5)
    out = mixup_padding(pts, vis, edges, draws=0)
    np.testing.assert_array_equal(out.points, pts)
    np.testing.assert_array_equal(out.skeleton, edges)
