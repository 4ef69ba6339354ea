"""Head-wise reference indices: a breadth-first walk of the padded skeleton (docs/FMMP_MODEL.md §4.4, Q3, Q4).

Official ``side_func.get_side_ref_idx_and_orders`` with ``method_type = 3`` and ``N_max_pad = 16``:

- only visible nodes have neighbours; a visible node's neighbours are collected by scanning the skeleton in
  list order, taking ``a`` of each pair (a, b) with b == node, then ``b`` of pairs with a == node. Neighbours
  are listed whatever their own visibility, so invisible nodes appear as leaves;
- for a visible node k: BFS from k with a visited set, ``[k, ...]`` with depths ``[0, ...]``; the walk stops
  expanding once 16 entries are listed (one expansion may overshoot), then pads with k (depth 0) and keeps 16;
- an invisible node gets 16 times itself (depth 0).

The model reads only the index plane, columns 0..7 (column 0 is always the node itself).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from fgsa.preprocess import validate
from fgsa.preprocess.constants import LINK_WIDTH


def neighbour_lists(visible: np.ndarray, skeleton: np.ndarray) -> list[list[int]]:
    """Per node, its neighbours in the official scan order; empty for invisible nodes."""
    adjacency: list[list[int]] = [[] for _ in range(len(visible))]
    for a, b in skeleton.tolist():
        # For a fixed node, edges are met in list order and, within an edge, "b == node" is tested first.
        if visible[b]:
            adjacency[b].append(a)
        if visible[a]:
            adjacency[a].append(b)
    return adjacency


def bfs_link_table(visible: Any, skeleton: Any, width: int = LINK_WIDTH) -> np.ndarray:
    """(K,) visibility + (E, 2) padded skeleton -> (2, K, width) int64: plane 0 indices, plane 1 BFS depths.

    K is ``len(visible)`` (70 after padding); skeleton indices must be < K.
    """
    vis = validate.as_visible(visible, "visible")
    edges = validate.as_skeleton(skeleton, "skeleton", vis.shape[0])
    adjacency = neighbour_lists(vis, edges)
    k_total = vis.shape[0]
    table = np.zeros((2, k_total, width), dtype=np.int64)
    table[0] = np.arange(k_total)[:, None]  # default: self, depth 0 (invisible nodes and padding)
    for k in np.flatnonzero(vis).tolist():
        order, depth = [k], [0]
        seen = {k}
        queue = deque([(k, 0)])
        while queue and len(order) < width:
            node, level = queue.popleft()
            for nb in adjacency[node]:
                if nb not in seen:
                    seen.add(nb)
                    queue.append((nb, level + 1))
                    order.append(nb)
                    depth.append(level + 1)
        n = min(len(order), width)
        table[0, k, :n] = order[:n]
        table[1, k, :n] = depth[:n]
    return table


def support_links(visible: Any, skeleton: Any, width: int = LINK_WIDTH) -> np.ndarray:
    """The model input ``support_links``: the index plane of :func:`bfs_link_table` as (K, width) int32."""
    return bfs_link_table(visible, skeleton, width)[0].astype(np.int32)
