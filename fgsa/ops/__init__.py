"""The op boundary: the model calls deformable attention only through ``msda`` and ``fgsa_attention``.

By default they run the PyTorch reference (:mod:`fgsa.ops.reference`). Export swaps in the ONNX form it
writes (our plugin ops, TensorRT's built-in op, or standard ops) with :func:`use_implementation`; nothing
else in the model knows how attention is computed.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from fgsa.ops import reference
from fgsa.ops.reference import fgsa_locations, level_shapes, level_starts

_ACTIVE: dict[str, Callable] = {"msda": reference.msda, "fgsa_attention": reference.fgsa_attention}


def msda(value, spatial_shapes, level_start, sampling_locations, attention_weights):
    """Multi-scale deformable attention; see :func:`fgsa.ops.reference.msda` for shapes."""
    return _ACTIVE["msda"](value, spatial_shapes, level_start, sampling_locations, attention_weights)


def fgsa_attention(value, spatial_shapes, level_start, ref_points, links, offsets, logits):
    """All side heads of one FGSA module; see :func:`fgsa.ops.reference.fgsa_attention` for shapes."""
    return _ACTIVE["fgsa_attention"](value, spatial_shapes, level_start, ref_points, links, offsets, logits)


@contextlib.contextmanager
def use_implementation(msda: Callable | None = None, fgsa_attention: Callable | None = None) -> Iterator[None]:
    """Temporarily route the two ops to other implementations with the same signatures."""
    saved = dict(_ACTIVE)
    if msda is not None:
        _ACTIVE["msda"] = msda
    if fgsa_attention is not None:
        _ACTIVE["fgsa_attention"] = fgsa_attention
    try:
        yield
    finally:
        _ACTIVE.clear()
        _ACTIVE.update(saved)


__all__ = ["msda", "fgsa_attention", "fgsa_locations", "level_shapes", "level_starts", "use_implementation"]
