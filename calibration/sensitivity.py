"""INT8 within an accuracy budget: rank layer groups by sensitivity, send the worst back to float.

Sensitivity of a group (a backbone block, one predictor layer's self-attention / FFN / deformable-attention
projections, a point head, ...; :func:`calibration.graph.block_of`) = mean crop-pixel distance to the FP32
predictions when *only that group* is INT8, measured on calibration pairs (never on the evaluation set).
Groups are sent back to float (their Q/DQ removed; in a strongly typed TensorRT build they run in the
graph's float type, FP32) in order of that ranking, one at a time, until the INT8 graph's PCK@0.05 on the
evaluation set is within the budget of FP32's.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable

import onnx
from tqdm import tqdm

from calibration.accuracy import Run, crop_pixel_error, predict, session_for
from calibration.graph import block_of
from calibration.qdq import float_layers, quantized_layers


@dataclass
class Sensitivity:
    group: str
    layers: list[str]
    error_px: float  # mean crop-pixel distance to FP32 with only this group INT8


@dataclass
class Fallback:
    """What the budget loop did: groups sent back to float, in order, and the PCK delta after each step."""

    groups: list[Sensitivity] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    within_budget: bool = True

    @property
    def layers(self) -> list[str]:
        return [name for g in self.groups for name in g.layers]


def groups_of(model: onnx.ModelProto) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for name in quantized_layers(model):
        groups.setdefault(block_of(name), []).append(name)
    return groups


def rank_groups(qdq: onnx.ModelProto, episodes, reference: Run, threads: int = 1,
                progress: bool = True) -> list[Sensitivity]:
    """Every group's sensitivity (see the module docstring), most sensitive first."""
    groups = groups_of(qdq)
    everything = {n for names in groups.values() for n in names}
    out = []
    for group, layers in tqdm(groups.items(), desc="sensitivity", disable=None if progress else True, dynamic_ncols=True,
                              leave=False):
        only = float_layers(qdq, everything - set(layers))
        run = predict(session_for(only, threads), episodes, group, progress=False)
        out.append(Sensitivity(group, layers, crop_pixel_error(run, reference, episodes)))
    return sorted(out, key=lambda s: -s.error_px)


def fit_budget(qdq: onnx.ModelProto, ranking: list[Sensitivity], measure: Callable[[onnx.ModelProto], dict],
               fits: Callable[[dict], bool], first: dict, max_groups: int | None = None,
               progress: bool = True) -> tuple[onnx.ModelProto, Fallback]:
    """Send ranked groups back to float until ``fits(measure(graph))``.

    ``measure`` returns the budget's numbers of a graph (e.g. ``{"delta": FP32's PCK@0.05 minus the graph's,
    in points, "p95_crop_px": ...}``); ``first`` is that of ``qdq``. Returns the last graph tried (Q/DQ left
    dead on float layers; requantize with ``exclude`` for a clean file) and the :class:`Fallback` record.
    """
    fallback = Fallback(steps=[{"groups": 0, **first}])
    graph, numbers = qdq, first
    limit = len(ranking) if max_groups is None else min(max_groups, len(ranking))
    for sens in ranking[:limit]:
        if fits(numbers):
            break
        fallback.groups.append(sens)
        graph = float_layers(qdq, set(fallback.layers))
        numbers = measure(graph)
        fallback.steps.append({"groups": len(fallback.groups), "group": sens.group, **numbers})
        if progress:
            said = ", ".join(f"{k} {v:.2f}" for k, v in numbers.items())
            print(f"fallback {len(fallback.groups)}: {sens.group} ({len(sens.layers)} layers) -> {said}",
                  file=sys.stderr)
    fallback.within_budget = fits(numbers)
    return graph, fallback
