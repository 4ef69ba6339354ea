"""The op boundary: the model calls deformable attention only through ``msda`` and ``fgsa_attention``
(plus ``project_values``, which lays the values out the way the active ``fgsa_attention`` reads them).

By default they run the PyTorch reference (:mod:`fgsa.ops.reference`). Export swaps in the ONNX form it
writes (our plugin ops, TensorRT's built-in op, or standard ops) with :func:`use_implementation`; nothing
else in the model knows how attention is computed.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from fgsa.ops import reference
from fgsa.ops.reference import fgsa_locations, level_shapes, level_starts

_ACTIVE: dict[str, Callable] = {"msda": reference.msda, "fgsa_attention": reference.fgsa_attention,
                                "project_values": reference.project_values}


def msda(value, spatial_shapes, level_start, sampling_locations, attention_weights):
    """Multi-scale deformable attention; see :func:`fgsa.ops.reference.msda` for shapes."""
    return _ACTIVE["msda"](value, spatial_shapes, level_start, sampling_locations, attention_weights)


def fgsa_attention(value, spatial_shapes, level_start, ref_points, links, offsets, logits):
    """All side heads of one FGSA module; see :func:`fgsa.ops.reference.fgsa_attention` for shapes.
    ``value`` is what :func:`project_values` of the same implementation returned."""
    return _ACTIVE["fgsa_attention"](value, spatial_shapes, level_start, ref_points, links, offsets, logits)


def project_values(features, weight, bias, heads, spatial_shapes):
    """Value projection of all heads into the layout the active ``fgsa_attention`` samples from (the
    reference's [B, Len_in, heads, Dh]; the standard-op form's per-level maps); see
    :func:`fgsa.ops.reference.project_values`."""
    return _ACTIVE["project_values"](features, weight, bias, heads, spatial_shapes)


@contextlib.contextmanager
def use_implementation(msda: Callable | None = None, fgsa_attention: Callable | None = None,
                       project_values: Callable | None = None) -> Iterator[None]:
    """Temporarily route the ops to other implementations with the same signatures. ``fgsa_attention``
    and ``project_values`` go together when an implementation changes the value layout."""
    saved = dict(_ACTIVE)
    for name, fn in (("msda", msda), ("fgsa_attention", fgsa_attention), ("project_values", project_values)):
        if fn is not None:
            _ACTIVE[name] = fn
    try:
        yield
    finally:
        _ACTIVE.clear()
        _ACTIVE.update(saved)


__all__ = ["msda", "fgsa_attention", "project_values", "fgsa_locations", "level_shapes", "level_starts", "use_implementation"]
