"""The 16-wide BFS reference-index table on hand-made graphs."""

import numpy as np

from fgsa.preprocess import bfs_link_table, eqdiv_padding, support_links


def row(table, k):
    return table[0, k].tolist(), table[1, k].tolist()


def test_chain_with_an_invisible_node_as_leaf():
    # 0-1-2-3-4 with node 2 invisible: 2 is listed as a neighbour but not expanded.
    vis = np.array([1, 1, 0, 1, 1], bool)
    t = bfs_link_table(vis, [[0, 1], [1, 2], [2, 3], [3, 4]])
    assert t.shape == (2, 5, 16) and t.dtype == np.int64
    assert row(t, 1) == ([1, 0, 2] + [1] * 13, [0, 1, 1] + [0] * 13)
    assert row(t, 0) == ([0, 1, 2] + [0] * 13, [0, 1, 2] + [0] * 13)
    assert row(t, 3) == ([3, 2, 4] + [3] * 13, [0, 1, 1] + [0] * 13)
    assert row(t, 2) == ([2] * 16, [0] * 16)  # invisible node: 16 x self


def test_neighbour_order_follows_skeleton_list_order():
    # for node 0: edge (2,0) gives 2 (b == 0), (0,1) gives 1, (3,0) gives 3; the self-loop adds nothing
    vis = np.ones(5, bool)
    t = bfs_link_table(vis, [[2, 0], [0, 0], [0, 1], [3, 0], [1, 4]])
    assert row(t, 0)[0][:5] == [0, 2, 1, 3, 4]
    assert row(t, 0)[1][:5] == [0, 1, 1, 1, 2]
    # edges are scanned in list order whatever their orientation: (1,4) before (0,1) lists 4 before 0
    t2 = bfs_link_table(vis, [[1, 4], [0, 1]])
    assert row(t2, 1)[0][:3] == [1, 4, 0]


def test_star_overshoot_is_truncated():
    # node 0 with 20 leaves: one expansion lists 20 nodes; the row keeps the first 16 entries
    vis = np.ones(21, bool)
    star = [[0, i] for i in range(1, 21)]
    t = bfs_link_table(vis, star)
    assert row(t, 0) == (list(range(16)), [0] + [1] * 15)
    # from leaf 3: [3, 0] then 0's neighbours in order, skipping 3
    assert row(t, 3) == ([3, 0, 1, 2] + list(range(4, 16)), [0, 1] + [2] * 14)


def test_depths_along_a_long_chain_and_padding_with_self():
    k = 40
    vis = np.ones(k, bool)
    chain = [[i, i + 1] for i in range(k - 1)]
    t = bfs_link_table(vis, chain)
    # from node 20: 21 and 19 alternate outward (19 comes first: edge (19,20) is scanned before (20,21))
    assert row(t, 20)[0][:5] == [20, 19, 21, 18, 22]
    assert row(t, 20)[1] == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8]
    # from the end node 0: 0..15, depths 0..15
    assert row(t, 0) == (list(range(16)), list(range(16)))
    # isolated visible node: only itself
    t2 = bfs_link_table(np.ones(3, bool), [[0, 1]])
    assert row(t2, 2) == ([2] * 16, [0] * 16)


def test_unvisited_invisible_neighbour_of_invisible_node_not_reached():
    # 0 visible - 1 invisible - 2 visible: from 0 the walk reaches 1 but cannot pass through it
    t = bfs_link_table(np.array([1, 0, 1], bool), [[0, 1], [1, 2]])
    assert row(t, 0)[0][:3] == [0, 1, 0]
    assert row(t, 2)[0][:3] == [2, 1, 2]


def test_support_links_is_the_index_plane_as_int32_on_padded_pose():
    rng = np.random.default_rng(0)
    pts = rng.random((10, 2)).astype(np.float32)
    vis = rng.random(10) < 0.7
    skel = [[i, i + 1] for i in range(9)]
    padded = eqdiv_padding(pts, vis, skel)
    links = support_links(padded.visible, padded.skeleton)
    table = bfs_link_table(padded.visible, padded.skeleton)
    assert links.shape == (70, 16) and links.dtype == np.int32
    np.testing.assert_array_equal(links, table[0])
    np.testing.assert_array_equal(links[:, 0], np.arange(70))  # column 0 is always self
    # every listed index is self or within graph distance (depth) of the node
    assert np.all(table[1] >= 0)
    assert np.all((table[1] == 0) == (table[0] == np.arange(70)[:, None]))
