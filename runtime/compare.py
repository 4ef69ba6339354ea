"""The one comparator: error statistics between two runners' outputs, output by output.

Points are in normalised crop units ([0, 1] of the 256 crop); ``pixels`` converts them to crop pixels.
Image-pixel errors (after decoding) are computed by the parity CLI from both runners' decoded points.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping

import numpy as np


@dataclass
class ErrorStats:
    output: str
    shape: tuple
    max_abs: float
    mean_abs: float
    p99_abs: float
    rms: float
    max_rel: float  # max |a - b| / max(|b|) of the output
    count: int

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d


def error_stats(name: str, got: np.ndarray, want: np.ndarray) -> ErrorStats:
    """Statistics of |got - want| in float64; NaN or inf anywhere gives infinite errors."""
    a, b = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"{name}: shapes differ, {a.shape} vs {b.shape}")
    d = np.abs(a - b).reshape(-1)
    if d.size == 0:
        return ErrorStats(name, a.shape, 0.0, 0.0, 0.0, 0.0, 0.0, 0)
    if not np.isfinite(d).all():
        inf = float("inf")
        return ErrorStats(name, a.shape, inf, inf, inf, inf, inf, int(d.size))
    scale = max(float(np.abs(b).max()), 1e-12)
    return ErrorStats(name, a.shape, float(d.max()), float(d.mean()), float(np.percentile(d, 99)),
                      float(np.sqrt((d ** 2).mean())), float(d.max()) / scale, int(d.size))


class StatsAccumulator:
    """Collects |got - want| of many calls per output name, then reports one ErrorStats per output."""

    def __init__(self):
        self._diffs: dict[str, list[np.ndarray]] = {}
        self._scale: dict[str, float] = {}
        self._shape: dict[str, tuple] = {}

    def add(self, got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray]) -> None:
        for name, ref in want.items():
            if name not in got:
                continue
            a, b = np.asarray(got[name], np.float64), np.asarray(ref, np.float64)
            if a.shape != b.shape:
                raise ValueError(f"{name}: shapes differ, {a.shape} vs {b.shape}")
            self._diffs.setdefault(name, []).append(np.abs(a - b).reshape(-1))
            self._scale[name] = max(self._scale.get(name, 0.0), float(np.abs(b).max()) if b.size else 0.0)
            self._shape[name] = b.shape

    def result(self) -> list[ErrorStats]:
        out = []
        for name, parts in self._diffs.items():
            d = np.concatenate(parts)
            if not np.isfinite(d).all():
                inf = float("inf")
                out.append(ErrorStats(name, self._shape[name], inf, inf, inf, inf, inf, int(d.size)))
                continue
            out.append(ErrorStats(name, self._shape[name], float(d.max()), float(d.mean()),
                                  float(np.percentile(d, 99)), float(np.sqrt((d ** 2).mean())),
                                  float(d.max()) / max(self._scale[name], 1e-12), int(d.size)))
        return out
