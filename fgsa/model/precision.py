"""FP32 islands of 16-bit models: the few points where the model asks which dtype to compute in.

An FP16 export (``export/precision.py``) converts the model to float16 but keeps, by entering
:func:`fp32_islands`, some of it in float32:

- ``"coords"``: keypoint coordinates and everything that is one — support points, the sigmoid /
  inverse-sigmoid chain of the predicted points and its logit accumulation, the positional encodings'
  inputs, and the coordinate inputs of the deformable attention (reference points, offsets, logits);
- ``"softmax"``: the self-attention logits and their softmax.

Outside that context (the default) :func:`compute_dtype` returns the model's own dtype, and :func:`cast`
returns its argument untouched when the dtype already matches, so float32 / float64 models run exactly
the arithmetic, and trace exactly the graph, they did without this module.
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator

import torch

POINTS = ("coords", "softmax")
HALF_DTYPES = (torch.float16, torch.bfloat16)
_ACTIVE: set[str] = set()


def compute_dtype(point: str, dtype: torch.dtype) -> torch.dtype:
    """float32 where the active policy keeps ``point`` in FP32 and ``dtype`` is 16-bit; else ``dtype``."""
    return torch.float32 if point in _ACTIVE and dtype in HALF_DTYPES else dtype


def cast(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` in ``dtype``; no op at all (and no node in a trace) when it already is."""
    return x if x.dtype == dtype else x.to(dtype)


def active() -> frozenset[str]:
    return frozenset(_ACTIVE)


@contextlib.contextmanager
def fp32_islands(points: Iterable[str]) -> Iterator[None]:
    """Keep ``points`` (a subset of :data:`POINTS`) in float32 while a 16-bit model runs or is traced."""
    from fgsa.errors import InputError

    points = set(points)
    unknown = sorted(points - set(POINTS))
    if unknown:
        raise InputError("fp32 islands", f"a subset of {POINTS}", unknown)
    saved = set(_ACTIVE)
    _ACTIVE.clear()
    _ACTIVE.update(points)
    try:
        yield
    finally:
        _ACTIVE.clear()
        _ACTIVE.update(saved)
