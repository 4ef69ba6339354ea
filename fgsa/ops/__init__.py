"""The op boundary: the model calls deformable attention only through ``msda`` and ``fgsa_attention``.

Here they are the PyTorch reference (:mod:`fgsa.ops.reference`). Export and the GPU adapters swap the
implementation behind these two names; nothing else in the model knows how attention is computed.
"""

from fgsa.ops.reference import fgsa_attention, fgsa_locations, level_shapes, level_starts, msda

__all__ = ["msda", "fgsa_attention", "fgsa_locations", "level_shapes", "level_starts"]
