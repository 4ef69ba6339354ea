"""The five official MP-100 category splits (data, not code).

Category ids of the unified MP-100 annotation file, in the order the official FMMP config
(`cape_extloc/cfg/info.py`, git f5e8e04) lists them. The order matters: the test episodes are drawn
category by category in this order from one seeded random stream (see `fgsa.data.episodes`), so a
different order gives different episodes. Every split has 70 train, 10 val and 20 test categories.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from fgsa.errors import InputError

SUBSETS = ("train", "val", "test")

OFFICIAL_SPLITS: Mapping[int, Mapping[str, tuple[int, ...]]] = {
    1: {
        "train": (37, 36, 56, 89, 65, 69, 74, 19, 9, 23, 79, 13, 93, 82, 99, 94, 34, 4, 61, 57, 51, 52, 7, 85,
                  21, 90, 76, 38, 5, 63, 59, 50, 88, 100, 31, 32, 26, 41, 71, 15, 87, 54, 43, 27, 58, 55, 16, 20,
                  28, 83, 44, 46, 86, 98, 17, 49, 45, 40, 8, 64, 80, 62, 11, 18, 1, 97, 75, 67, 25, 72),
        "val": (48, 22, 12, 91, 96, 6, 35, 95, 66, 92),
        "test": (10, 77, 24, 47, 33, 29, 70, 68, 81, 73, 2, 14, 30, 53, 42, 3, 39, 84, 78, 60),
    },
    2: {
        "train": (10, 56, 22, 69, 65, 12, 74, 19, 9, 77, 23, 13, 94, 34, 24, 4, 47, 61, 33, 51, 7, 52, 85, 96,
                  29, 70, 21, 90, 68, 6, 38, 5, 35, 81, 63, 59, 88, 73, 100, 31, 32, 2, 26, 41, 15, 87, 54, 14,
                  30, 58, 55, 16, 20, 42, 83, 44, 3, 46, 39, 66, 84, 49, 40, 64, 80, 92, 60, 18, 75, 72),
        "val": (36, 93, 57, 50, 95, 27, 53, 78, 11, 1),
        "test": (37, 48, 89, 79, 82, 99, 91, 76, 71, 43, 28, 86, 98, 17, 45, 8, 62, 97, 67, 25),
    },
    3: {
        "train": (48, 37, 10, 36, 56, 89, 65, 74, 77, 23, 79, 13, 93, 99, 94, 24, 4, 47, 61, 57, 51, 7, 29, 76,
                  68, 6, 38, 35, 5, 81, 59, 50, 88, 73, 32, 2, 95, 41, 71, 15, 27, 43, 14, 58, 55, 53, 20, 28,
                  42, 83, 3, 46, 86, 98, 17, 45, 40, 8, 64, 80, 78, 92, 62, 60, 18, 1, 97, 75, 67, 25),
        "val": (19, 82, 91, 33, 21, 70, 26, 30, 39, 84),
        "test": (22, 69, 12, 9, 34, 52, 96, 85, 90, 63, 100, 31, 87, 54, 16, 44, 66, 49, 11, 72),
    },
    4: {
        "train": (48, 37, 10, 36, 22, 89, 69, 74, 19, 9, 77, 79, 93, 82, 99, 34, 24, 47, 61, 91, 57, 33, 52,
                  96, 85, 29, 70, 21, 90, 76, 68, 5, 81, 63, 59, 31, 32, 2, 71, 87, 54, 43, 14, 30, 58, 53, 16,
                  28, 42, 44, 3, 46, 39, 66, 84, 86, 98, 17, 49, 45, 8, 64, 78, 62, 60, 11, 97, 75, 67, 72),
        "val": (56, 12, 51, 6, 73, 100, 26, 18, 1, 25),
        "test": (65, 23, 13, 94, 4, 7, 38, 35, 50, 88, 95, 41, 15, 27, 55, 20, 83, 40, 80, 92),
    },
    5: {
        "train": (48, 37, 10, 22, 89, 65, 69, 12, 23, 79, 13, 82, 99, 94, 34, 24, 4, 47, 91, 33, 7, 85, 96, 29,
                  70, 90, 76, 68, 38, 81, 35, 63, 88, 73, 100, 95, 71, 15, 87, 54, 27, 43, 30, 55, 16, 20, 28,
                  42, 83, 44, 3, 39, 66, 84, 86, 98, 49, 45, 40, 8, 80, 78, 92, 62, 60, 11, 97, 67, 25, 72),
        "val": (9, 77, 52, 50, 31, 2, 41, 14, 53, 17),
        "test": (36, 56, 74, 19, 93, 61, 57, 51, 21, 6, 5, 59, 32, 26, 58, 46, 64, 18, 1, 75),
    },
}


def _check_subset(subset: str) -> None:
    if subset not in SUBSETS:
        raise InputError("subset", f"one of {SUBSETS}", repr(subset))


def official_class_ids(split: int, subset: str) -> tuple[int, ...]:
    """Category ids of official MP-100 split `split` (1..5), subset 'train' | 'val' | 'test', in official order."""
    if split not in OFFICIAL_SPLITS:
        raise InputError("split", "an official MP-100 split number 1..5", repr(split))
    _check_subset(subset)
    return OFFICIAL_SPLITS[split][subset]


def load_split_file(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Read a split file: a JSON object {"train": [ids...], "val": [...], "test": [...]} (order kept).

    `fgsa.data.synthetic` writes one next to its annotation file. Missing subsets come back empty.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError("split file", "a readable JSON file", f"{path} ({exc})") from exc
    if not isinstance(raw, dict):
        raise InputError("split file", 'a JSON object {"train": [...], "val": [...], "test": [...]}',
                         f"{type(raw).__name__} in {path}")
    out: dict[str, tuple[int, ...]] = {}
    for subset in SUBSETS:
        ids = raw.get(subset, [])
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise InputError(f"split file[{subset!r}]", "a list of integer category ids", repr(ids)[:80],
                             f"fix {path}")
        out[subset] = tuple(ids)
    return out
