"""Seeded episodic sampling over annotation ids (no torch).

Test episodes reproduce the official `make_paired_samples` exactly, given the same per-category pools:
the official code calls `random.seed(1)` and then, for each category in `valid_class_ids` order and each
of its episodes, `random.sample(cat2obj[c], S + Q)`; the first S are the supports and the other Q the
queries, and every query becomes one (supports..., query) pair. Here a private `random.Random(seed)`
replaces the global generator (same Mersenne-Twister stream, same draws), and the pools are lists of
annotation ids instead of db indices: `random.sample` depends only on the pool length and the generator
state, so with pools in the official order (`MP100Annotations.instances_by_category`) the episodes are
the official ones, mapped to annotation ids. (The official `np.random.seed(0)` only seeds the padding
draws made later in `__getitem__`; it does not affect which instances are drawn.)

Training episodes follow the official `random_paired_samples`: every category gets max_c |pool_c|
episodes of S + 1 distinct instances (balancing), then all are shuffled together with NumPy.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from fgsa.errors import InputError

#: The official MP-100 test protocol: 200 episodes per category, 15 queries each, seed 1.
OFFICIAL_TEST_EPISODES = 200
OFFICIAL_TEST_QUERIES = 15
OFFICIAL_VAL_EPISODES = 5
OFFICIAL_SEED = 1


@dataclass(frozen=True)
class Episode:
    """S support and Q query annotation ids of one category; all S + Q distinct."""

    category_id: int
    support_ids: tuple[int, ...]
    query_ids: tuple[int, ...]

    def pairs(self) -> list[tuple[int, ...]]:
        """One (support_1, ..., support_S, query) tuple per query, the official `paired_samples` rows."""
        return [self.support_ids + (q,) for q in self.query_ids]


def _pool(pools: Mapping[int, Sequence[int]], cid: int, need: int) -> list[int]:
    if cid not in pools:
        raise InputError("class_ids", "ids present in the instance pools", cid)
    pool = list(pools[cid])
    if len(pool) < need:
        raise InputError(f"category {cid}", f"at least {need} instances (shots + queries)", len(pool),
                         "lower the queries or shots per episode (--queries / --shots) or add instances")
    return pool


def fit_queries(pools: Mapping[int, Sequence[int]], names: Mapping[int, str], shots: int, queries: int | None,
                default: int) -> tuple[int, str | None]:
    """The queries per episode to draw: ``queries`` when given (InputError naming ``--queries`` / ``--shots`` and
    the smallest category by name when it has too few instances), else ``default`` capped to what the smallest
    category allows. Returns (queries, a one-line warning when the default was capped)."""
    smallest = min(pools, key=lambda c: len(pools[c]))
    have = len(pools[smallest])
    where = f"category {names.get(smallest, smallest)!r} (id {smallest})"
    if have < shots + 1 or (queries is not None and have < shots + queries):
        want = shots + (1 if queries is None else queries)
        raise InputError("--queries / --shots", f"at least {want} instances per category (--shots {shots} + "
                         f"--queries {1 if queries is None else queries})", f"{have} in {where}",
                         "lower --queries or --shots, or add instances of that category")
    if queries is not None:
        return queries, None
    if have >= shots + default:
        return default, None
    capped = have - shots
    return capped, (f"--queries {default} (the default) needs {shots + default} instances per category; {where} "
                    f"has {have}: using --queries {capped} (pass --queries to choose)")


def repeated_pairs(pairs: Sequence[Sequence[int]]) -> str | None:
    """A one-line warning when some (supports..., query) pairs of an episode set are drawn more than once."""
    distinct = len({tuple(p) for p in pairs})
    if distinct == len(pairs):
        return None
    return (f"only {distinct} of the {len(pairs)} (support, query) pairs are distinct: the categories have few "
            f"instances, so episodes repeat (the PCK weighs the repeated pairs more); lower --episodes")


def _check_counts(**counts: int) -> None:
    for name, n in counts.items():
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise InputError(name, "a positive integer", repr(n))


def sample_episodes(pools: Mapping[int, Sequence[int]], class_ids: Sequence[int], num_episodes: int,
                    num_shots: int = 1, num_queries: int = OFFICIAL_TEST_QUERIES,
                    seed: int = OFFICIAL_SEED) -> list[Episode]:
    """Test/val episodes, `num_episodes` per category, categories in `class_ids` order.

    Args:
        pools: {category id: annotation ids in official order} (MP100Annotations.instances_by_category).
        class_ids: categories to draw for, in drawing order (the official split list order).
        num_episodes, num_shots, num_queries: per category; official test 200, 1, 15 (val 5, 1, 15).
        seed: the `random` seed; the official protocol uses 1.
    Returns:
        list of len(class_ids) * num_episodes Episodes, deterministic given the arguments.
    """
    _check_counts(num_episodes=num_episodes, num_shots=num_shots, num_queries=num_queries)
    rng = random.Random(seed)
    episodes = []
    for cid in class_ids:
        pool = _pool(pools, cid, num_shots + num_queries)
        for _ in range(num_episodes):
            drawn = rng.sample(pool, num_shots + num_queries)
            episodes.append(Episode(int(cid), tuple(drawn[:num_shots]), tuple(drawn[num_shots:])))
    return episodes


def episode_pairs(episodes: Sequence[Episode]) -> list[tuple[int, ...]]:
    """All (supports..., query) tuples of the episodes, in order (60,000 for the official split-1 test)."""
    return [pair for ep in episodes for pair in ep.pairs()]


def sample_training_pairs(pools: Mapping[int, Sequence[int]], class_ids: Sequence[int], num_shots: int = 1,
                          seed: int = 0) -> list[tuple[int, ...]]:
    """One epoch of training episodes: (support_1..support_S, query) tuples of distinct annotation ids.

    Every category gets max_c |pool_c| episodes (the official class balancing), drawn with
    `random.Random(seed).sample`, then all are shuffled with `np.random.RandomState(seed).shuffle`. Pass a
    different seed each epoch (the official code redraws every epoch from the unseeded global generators).
    """
    _check_counts(num_shots=num_shots)
    if not class_ids:
        raise InputError("class_ids", "at least one category id", "[]")
    rng = random.Random(seed)
    balanced = max(len(_pool(pools, cid, num_shots + 1)) for cid in class_ids)
    rows = [tuple(rng.sample(list(pools[cid]), num_shots + 1)) for cid in class_ids for _ in range(balanced)]
    order = np.arange(len(rows))
    np.random.RandomState(seed).shuffle(order)
    return [rows[i] for i in order]
