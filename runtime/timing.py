"""Latency measurement: warm-up, many timed calls, percentiles; several callables measured in alternating
blocks so that load changes on a shared machine hit all of them alike."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class Timing:
    name: str
    batch: int
    samples: list[float] = field(default_factory=list)  # seconds per call

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.samples, q)) * 1e3 if self.samples else float("nan")

    @property
    def p50_ms(self) -> float:
        return self.percentile(50)

    def to_dict(self) -> dict:
        p50 = self.p50_ms
        return {"name": self.name, "batch": self.batch, "iterations": len(self.samples),
                "p50_ms": p50, "p90_ms": self.percentile(90), "p99_ms": self.percentile(99),
                "mean_ms": float(np.mean(self.samples)) * 1e3 if self.samples else float("nan"),
                "min_ms": float(np.min(self.samples)) * 1e3 if self.samples else float("nan"),
                "throughput_per_s": self.batch / (p50 / 1e3) if self.samples and p50 > 0 else float("nan")}


def measure(fns: dict[str, Callable[[], object]], batch: int, warmup: int = 2, iterations: int = 20,
            rounds: int = 2, max_seconds: float = 60.0) -> dict[str, Timing]:
    """Time each callable: ``warmup`` untimed calls, then ``rounds`` alternating blocks of
    ``iterations / rounds`` timed calls each. A callable stops early once it has used ``max_seconds``
    (at least 3 timed calls are always kept)."""
    out = {name: Timing(name, batch) for name in fns}
    spent = {name: 0.0 for name in fns}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
    per_round = max(1, -(-iterations // rounds))
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(per_round):
                if spent[name] > max_seconds and len(out[name].samples) >= 3:
                    break
                t0 = time.perf_counter()
                fn()
                dt = time.perf_counter() - t0
                out[name].samples.append(dt)
                spent[name] += dt
    return out
