"""Episodes from MP-100-format data as graph feeds: calibration batches and held-out evaluation sets.

A data folder is anything ``fgsa.data.layout.open_subset`` reads (the synthetic benchmark of
``python -m fgsa.data.synthetic --out DIR`` or a user's MP-100). Each (supports..., query) pair goes
through the official test pipeline (:class:`fgsa.data.dataset.EpisodeDataset`) once; the prepared items
are kept so that several graphs run on exactly the same inputs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from fgsa.data.layout import open_subset
from fgsa.errors import InputError

FEEDS = ("query", "support", "support_points", "support_visible", "support_links")


@dataclass
class EpisodeSet:
    """Prepared pairs of one subset: ``items`` are dataset items (dicts of tensors, see fgsa.data.dataset)."""

    items: list
    subset: str
    categories: list[int]
    signature: str  # what identifies the set: data folder, subset, counts, seed (for the range cache key)

    def __len__(self) -> int:
        return len(self.items)

    def feed(self, index: int) -> dict[str, np.ndarray]:
        """Graph inputs of pair ``index`` with batch size 1 (numpy, the graph I/O dtypes)."""
        item = self.items[index]
        return {k: item[k].numpy()[None] for k in FEEDS}

    def feeds(self) -> Iterator[dict[str, np.ndarray]]:
        return (self.feed(i) for i in range(len(self)))

    def head(self, n: int) -> "EpisodeSet":
        """The first ``n`` pairs (they cover the categories round-robin), as their own set."""
        return EpisodeSet(self.items[:n], self.subset, self.categories, f"{self.signature}|first{n}")


def load_episodes(data: str | Path, subset: str, pairs: int, shots: int = 1, seed: int = 1,
                  queries: int = 1, split: int = 1, progress: bool = True, desc: str = "episodes",
                  image_root: str | Path | None = None) -> EpisodeSet:
    """Up to ``pairs`` (supports..., query) pairs of ``subset``, spread over its categories round-robin.

    Episodes are drawn as the official test set draws them (seed, ``queries`` per episode); the number of
    episodes per category is the smallest that yields ``pairs`` pairs in total.
    """
    from fgsa.data.dataset import EpisodeDataset

    if pairs < 1:
        raise InputError("episodes", "at least 1 pair", pairs)
    ann = open_subset(data, subset, split, image_root)
    n_cat = len(ann.class_ids)
    if n_cat == 0:
        raise InputError("--data", f"a '{subset}' subset with at least one category", f"none in {data}")
    per_category = max(1, -(-pairs // (n_cat * queries)))
    dataset = EpisodeDataset.from_episodes(ann, per_category, queries, shots, seed)
    # round-robin over categories so that a truncated set still covers them all
    by_cat: dict[int, list[int]] = {}
    for i, p in enumerate(dataset.pairs):
        by_cat.setdefault(ann.instance(p[-1]).category_id, []).append(i)
    order: list[int] = []
    for rank in range(max(len(v) for v in by_cat.values())):
        order += [v[rank] for v in by_cat.values() if rank < len(v)]
    order = order[:pairs]
    distinct = len({tuple(dataset.pairs[i]) for i in order})
    if distinct < len(order):
        warnings.warn(f"{desc}: {len(order)} pairs of '{subset}' of which only {distinct} are distinct (its "
                      f"{n_cat} categories have too few instances for {per_category} episodes each); ask for "
                      f"at most {distinct} pairs or add instances", stacklevel=2)
    items = [dataset[i] for i in tqdm(order, desc=f"{desc} ({subset})", disable=None if progress else True, dynamic_ncols=True,
                                       leave=False)]
    signature = f"{Path(data).resolve()}|{subset}|split{split}|pairs{len(items)}|shots{shots}|q{queries}|seed{seed}"
    return EpisodeSet(items, subset, list(ann.class_ids), signature)
