"""Seeded episodes: determinism, distinctness, and the official seeding semantics."""

import random

import numpy as np
import pytest

from fgsa.data.episodes import Episode, episode_pairs, sample_episodes, sample_training_pairs
from fgsa.errors import InputError


def _pools(seed=0, n_cats=5):
    """Category pools of sparse, non-contiguous annotation ids (like a filtered real file)."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(np.arange(1000, 5000))
    pools, start = {}, 0
    for cid in range(1, n_cats + 1):
        n = int(rng.integers(20, 40))
        pools[cid * 3] = [int(i) for i in ids[start:start + n]]
        start += n
    return pools


def test_same_seed_same_episodes_and_other_seed_differs():
    pools = _pools()
    cids = list(pools)[::-1]
    a = sample_episodes(pools, cids, num_episodes=20, num_shots=2, num_queries=5, seed=1)
    b = sample_episodes(pools, cids, num_episodes=20, num_shots=2, num_queries=5, seed=1)
    c = sample_episodes(pools, cids, num_episodes=20, num_shots=2, num_queries=5, seed=2)
    assert a == b
    assert a != c
    assert len(a) == 20 * len(cids)
    assert [e.category_id for e in a] == [c_ for c_ in cids for _ in range(20)]  # class-list order


def test_supports_and_queries_are_distinct_members_of_their_category():
    pools = _pools(3)
    eps = sample_episodes(pools, list(pools), num_episodes=30, num_shots=3, num_queries=15, seed=5)
    for ep in eps:
        ids = ep.support_ids + ep.query_ids
        assert len(ep.support_ids) == 3 and len(ep.query_ids) == 15
        assert len(set(ids)) == len(ids)
        assert set(ids) <= set(pools[ep.category_id])
    pairs = episode_pairs(eps)
    assert len(pairs) == 30 * 15 * len(pools)
    assert pairs[0] == eps[0].support_ids + (eps[0].query_ids[0],)
    assert all(len(p) == 4 for p in pairs)


def test_reproduces_official_global_random_draws_with_db_indices():
    """The official code: random.seed(1); random.sample(cat2obj[c], S+Q) over db indices, per category and
    episode. Our draws over annotation ids must be those, mapped through db index -> annotation id."""
    pools = _pools(7)
    cids = [9, 3, 15, 6, 12]
    db = [ann for cid in sorted(pools) for ann in pools[cid]]          # some db order
    cat2obj = {cid: [db.index(a) for a in pools[cid]] for cid in pools}  # db indices, same order
    state = random.getstate()
    try:
        random.seed(1)
        official = []
        for cid in cids:
            for _ in range(10):
                shots = random.sample(cat2obj[cid], 1 + 15)
                official += [tuple(db[i] for i in shots[:1]) + (db[q],) for q in shots[1:]]
    finally:
        random.setstate(state)
    ours = episode_pairs(sample_episodes(pools, cids, num_episodes=10, num_shots=1, num_queries=15, seed=1))
    assert ours == official


def test_too_small_pool_and_bad_counts_raise():
    pools = {1: [10, 11, 12]}
    with pytest.raises(InputError, match="at least 4"):
        sample_episodes(pools, [1], num_episodes=1, num_shots=1, num_queries=3)
    with pytest.raises(InputError):
        sample_episodes(pools, [2], num_episodes=1, num_shots=1, num_queries=1)
    with pytest.raises(InputError):
        sample_episodes(pools, [1], num_episodes=0, num_shots=1, num_queries=1)


def test_training_pairs_are_balanced_deterministic_and_shuffled():
    pools = _pools(11, n_cats=4)
    cids = list(pools)
    a = sample_training_pairs(pools, cids, num_shots=1, seed=3)
    assert a == sample_training_pairs(pools, cids, num_shots=1, seed=3)
    assert a != sample_training_pairs(pools, cids, num_shots=1, seed=4)
    biggest = max(len(p) for p in pools.values())
    assert len(a) == biggest * len(cids)
    owner = {ann: cid for cid, p in pools.items() for ann in p}
    per_cat = {cid: 0 for cid in cids}
    for row in a:
        assert len(row) == 2 and len(set(row)) == 2
        assert owner[row[0]] == owner[row[1]]
        per_cat[owner[row[0]]] += 1
    assert set(per_cat.values()) == {biggest}  # every category gets the same number of episodes
    assert [owner[r[0]] for r in a[:len(cids) * 3]] != [c for c in cids for _ in range(3)]  # shuffled


def test_episode_pairs_of_a_hand_built_episode():
    ep = Episode(4, (1, 2), (7, 8, 9))
    assert ep.pairs() == [(1, 2, 7), (1, 2, 8), (1, 2, 9)]
