"""Pad a category's K_c keypoints to K_MAX = 70 along its skeleton edges (docs/FMMP_MODEL.md §4.3, §5.3).

Two schemes, both reproducing the official ``pad_func`` ordering and float32 geometry exactly:

- :func:`eqdiv_padding` (test time): every edge gets ``n = (70 - K_c) // L_c`` evenly spaced points, the
  remaining ``(70 - K_c) % L_c`` rows are zeros, invisible and unlinked (D4).
- :func:`mixup_padding` (training): random edges get points at random positions; the random draws are
  made once per episode by :func:`draw_mixup` and shared by all images of the episode so that padded
  points correspond across images.

In both, the point nearest the *end* node of an edge comes first (D6: the chain is geometrically reversed
relative to its ids), the original edges are kept, and chain edges ``s -> p_0 -> ... -> e`` over the
visible new points are appended after them, edge by edge.

Inputs: ``keypoints`` (K_c, 2) normalised crop coordinates, ``visible`` (K_c,) bool, ``skeleton`` (L_c, 2)
0-based pairs with indices < K_c. Output: :class:`PaddedPose`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fgsa.errors import InputError
from fgsa.preprocess import validate
from fgsa.preprocess.constants import K_MAX


class PaddedPose(NamedTuple):
    points: np.ndarray    # (K_MAX, 2) float32, normalised crop coordinates
    visible: np.ndarray   # (K_MAX,) bool
    skeleton: np.ndarray  # (E', 2) int64: the original edges, then the chain edges


class MixupDraws(NamedTuple):
    """The per-episode random numbers of the official mixup padding (each of length K_MAX)."""
    lam: np.ndarray       # (K_MAX,) float64 in [0, 1]: interpolation weights, ~ Beta(alpha, alpha)
    nonzero: np.ndarray   # (K_MAX,) bool: extra visibility mask (all true with prob = 1)
    selected: np.ndarray  # (K_MAX,) int64 edge ids in [0, L_c)


def torch_linspace_f32(steps: int) -> np.ndarray:
    """``torch.linspace(0, 1, steps)`` in float32, bit-exact to the torch 2.x CPU kernel.

    That kernel fills the first half as ``step * i`` and the second half as ``1 - step * (steps - 1 - i)``
    with a float32 ``step = 1 / (steps - 1)``; compiled with FMA, the second form is rounded once. Doing the
    multiply-subtract in float64 (exact: a 24-bit mantissa times an integer < 2^7) and rounding once to
    float32 gives the same bits. ``np.linspace`` differs in the last bit for most ``steps``.
    """
    if steps == 1:
        return np.zeros(1, dtype=np.float32)
    step = np.float64(np.float32(1.0) / np.float32(steps - 1))
    i = np.arange(steps, dtype=np.float64)
    half = steps // 2
    out = np.where(i < half, step * i, 1.0 - step * (steps - 1 - i))
    return out.astype(np.float32)


def _check_inputs(keypoints: Any, visible: Any, skeleton: Any, k_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pts = validate.as_points(keypoints, "keypoints", dtype=np.float32)
    k_c = validate.check_keypoint_count(pts.shape[0], "keypoints (keypoint count)", k_max)
    vis = validate.as_visible(visible, "visible", k_c)
    edges = validate.as_skeleton(skeleton, "skeleton", k_c)
    return pts, vis, edges


def _chain_edges(start: int, end: int, first_id: int, new_visible: np.ndarray) -> list[tuple[int, int]]:
    """Edges start -> each visible new point (ids first_id...) in order -> end; none if no point is visible."""
    chain: list[tuple[int, int]] = []
    prev = start
    for offset in np.flatnonzero(new_visible).tolist():
        chain.append((prev, first_id + offset))
        prev = first_id + offset
    if chain:
        chain.append((prev, end))
    return chain


def _on_edge(weights: np.ndarray, p_start: np.ndarray, p_end: np.ndarray) -> np.ndarray:
    """``w * P_s + (1 - w) * P_e`` in float32, one rounding per operation as in the official torch code."""
    w = weights.astype(np.float32)[:, None]
    return w * p_start[None] + (np.float32(1.0) - w) * p_end[None]


def _assemble(pts: np.ndarray, vis: np.ndarray, edges: np.ndarray, new_pts: list[np.ndarray],
              new_vis: list[np.ndarray], new_edges: list[tuple[int, int]], tail: int) -> PaddedPose:
    points = np.concatenate([pts, *new_pts, np.zeros((tail, 2), np.float32)]).astype(np.float32)
    visible = np.concatenate([vis, *new_vis, np.zeros(tail, bool)]).astype(bool)
    chain = np.asarray(new_edges, dtype=np.int64).reshape(-1, 2)
    return PaddedPose(points, visible, np.concatenate([edges, chain]))


def eqdiv_padding(keypoints: Any, visible: Any, skeleton: Any, k_max: int = K_MAX) -> PaddedPose:
    """Test-time padding (official ``get_eqdiv_padding``, §4.3) of K_c points to ``k_max``.

    With ``n, tail = divmod(k_max - K_c, L_c)``: for each edge (s, e) in list order, ids K_c + j*n ... get
    the points ``t * P_s + (1 - t) * P_e`` for ``t = linspace(0, 1, n + 2)[1:-1]`` (first id nearest e),
    visible iff ``v_s and v_e``; then ``tail`` zero rows. Invisible points still get their interpolated
    (possibly raw-coordinate) geometry. Returns :class:`PaddedPose`.
    """
    pts, vis, edges = _check_inputs(keypoints, visible, skeleton, k_max)
    k_c, n_edges = pts.shape[0], edges.shape[0]
    per_edge, tail = divmod(k_max - k_c, n_edges)
    new_pts: list[np.ndarray] = []
    new_vis: list[np.ndarray] = []
    new_edges: list[tuple[int, int]] = []
    if per_edge > 0:
        t = torch_linspace_f32(per_edge + 2)[1:-1]
        next_id = k_c
        for s, e in edges.tolist():
            edge_vis = np.full(per_edge, vis[s] and vis[e])
            new_pts.append(_on_edge(t, pts[s], pts[e]))
            new_vis.append(edge_vis)
            new_edges += _chain_edges(s, e, next_id, edge_vis)
            next_id += per_edge
    return _assemble(pts, vis, edges, new_pts, new_vis, new_edges, tail)


def draw_mixup(num_edges: int, rng: np.random.Generator | np.random.RandomState | int | None = None,
               k_max: int = K_MAX, alpha: float = 1.0, prob: float = 1.0) -> MixupDraws:
    """The official per-episode draws, in the official order: Beta(alpha, alpha) x k_max, then
    uniform < prob x k_max, then edge ids uniform in [0, num_edges) x k_max.

    ``rng`` may be a ``np.random.Generator``, a legacy ``np.random.RandomState`` (the official code draws from
    NumPy's global RandomState, so ``RandomState(seed)`` replays its stream), an int seed (a new Generator),
    or None (fresh entropy). ``num_edges`` is L_c of the episode's category (the first image's skeleton).
    """
    if isinstance(num_edges, bool) or not isinstance(num_edges, (int, np.integer)) or num_edges < 1:
        raise InputError("num_edges", "a positive integer (number of skeleton edges)", num_edges)
    if isinstance(rng, np.random.RandomState):
        lam = rng.beta(alpha, alpha, k_max)
        nonzero = rng.rand(k_max) < prob
        selected = rng.randint(num_edges, size=k_max)
    else:
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        lam = gen.beta(alpha, alpha, k_max)
        nonzero = gen.random(k_max) < prob
        selected = gen.integers(num_edges, size=k_max)
    return MixupDraws(np.asarray(lam, np.float64), np.asarray(nonzero, bool), np.asarray(selected, np.int64))


def _check_draws(draws: Any, k_max: int, n_edges: int, k_c: int) -> MixupDraws:
    """Shapes, finiteness, and edge ids in range for the part that is used (the first k_max - K_c)."""
    if not isinstance(draws, MixupDraws):
        raise InputError("draws", "a MixupDraws (from draw_mixup), a numpy Generator/RandomState or an int seed",
                         type(draws).__name__)
    for field in MixupDraws._fields:
        arr = np.asarray(getattr(draws, field))
        if arr.shape != (k_max,):
            raise InputError(f"draws.{field}", f"shape ({k_max},)", tuple(arr.shape))
    sel = np.asarray(draws.selected)
    used = sel[: k_max - k_c]
    if not np.issubdtype(sel.dtype, np.integer) or (used.size and (used.min() < 0 or used.max() >= n_edges)):
        raise InputError("draws.selected", f"integer edge ids in [0, {n_edges})",
                         f"values in [{sel.min()}, {sel.max()}] dtype {sel.dtype}",
                         "Draw with the same skeleton's edge count (draw_mixup(len(skeleton), rng)).")
    lam = np.asarray(draws.lam, dtype=np.float64)
    if not np.all(np.isfinite(lam)):
        raise InputError("draws.lam", "finite weights", "NaN/inf")
    return MixupDraws(lam, np.asarray(draws.nonzero, bool), sel.astype(np.int64))


def mixup_padding(keypoints: Any, visible: Any, skeleton: Any,
                  draws: MixupDraws | np.random.Generator | np.random.RandomState | int | None = None,
                  k_max: int = K_MAX) -> PaddedPose:
    """Training padding (official ``get_mixup_padding``, §5.3) of K_c points to exactly ``k_max``.

    ``sel = draws.selected[:k_max - K_c]``; distinct edge ids j are processed in ascending order; edge
    j = (s, e), used m times, gets m consecutive ids from the pad pointer ``ptr`` with weights
    ``sort(lam[ptr:ptr+m])`` (ascending, float32) and points ``w * P_s + (1 - w) * P_e``; visibility is
    ``nonzero[ptr:ptr+m] & v_s & v_e``; the chain runs over the visible new points. No tail zeros.
    ``draws`` may also be an rng/seed, in which case :func:`draw_mixup` is called with the skeleton's edge count
    (only do that for a single image: an episode must share one :class:`MixupDraws`).
    """
    pts, vis, edges = _check_inputs(keypoints, visible, skeleton, k_max)
    seed_like = (np.random.Generator, np.random.RandomState, int, np.integer)
    if draws is None or (isinstance(draws, seed_like) and not isinstance(draws, bool)):
        draws = draw_mixup(edges.shape[0], draws, k_max)
    k_c = pts.shape[0]
    draws = _check_draws(draws, k_max, edges.shape[0], k_c)
    selected = draws.selected[: k_max - k_c]
    new_pts: list[np.ndarray] = []
    new_vis: list[np.ndarray] = []
    new_edges: list[tuple[int, int]] = []
    ptr = k_c
    for edge_id in np.unique(selected).tolist():
        m = int(np.count_nonzero(selected == edge_id))
        s, e = edges[edge_id].tolist()
        weights = np.sort(draws.lam[ptr:ptr + m].astype(np.float32))
        edge_vis = draws.nonzero[ptr:ptr + m] & (vis[s] and vis[e])
        new_pts.append(_on_edge(weights, pts[s], pts[e]))
        new_vis.append(edge_vis)
        new_edges += _chain_edges(s, e, ptr, edge_vis)
        ptr += m
    return _assemble(pts, vis, edges, new_pts, new_vis, new_edges, tail=0)
