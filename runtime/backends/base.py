"""The runner lifecycle every backend shares (Polygraphy's): ``activate()``, ``infer(feed) -> dict``,
``deactivate()``, usable as a context manager. One runner = one graph (or plan).

Thread safety: ``infer`` holds the runner's lock for the whole call (bind, run, copy out), so concurrent
calls on one runner serialize and each gets its own output arrays. Run several runners (or Engines) to
use more cores in parallel; each backend already spreads one call over its intra-op threads.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping

import numpy as np

from runtime.errors import EngineError
from runtime.specs import BatchRange, TensorSpec, check_feed


class Runner:
    """Base class: subclasses implement ``_activate``, ``_deactivate``, ``_infer`` and set the specs."""

    backend = "base"
    accepts_device_arrays = False

    def __init__(self, name: str):
        self.name = name
        self.inputs: list[TensorSpec] = []
        self.outputs: list[TensorSpec] = []
        self.batch = BatchRange()
        self.metadata: dict = {}
        self.is_active = False
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------------
    def activate(self) -> "Runner":
        with self._lock:
            if not self.is_active:
                self._activate()
                self.is_active = True
        return self

    def deactivate(self) -> None:
        with self._lock:
            if self.is_active:
                self._deactivate()
                self.is_active = False

    def __enter__(self) -> "Runner":
        return self.activate()

    def __exit__(self, *exc) -> None:
        self.deactivate()

    # -- inference -------------------------------------------------------------------------------------
    def infer(self, feed: Mapping[str, Any], check: bool = True) -> dict[str, np.ndarray]:
        """Run the graph on ``feed`` ({input name: array}); returns {output name: new NumPy array}.

        ``check=False`` skips the value checks (NaN, link range) for callers that built the feed
        themselves; names, shapes and dtypes are always checked.
        """
        arrays, symbols = check_feed(self.inputs, feed, self.batch, self.accepts_device_arrays, values=check)
        with self._lock:
            if not self.is_active:
                raise EngineError(f"runner '{self.name}' is not active", "call activate() or use it in a with-block")
            return self._infer(arrays, symbols)

    def _activate(self) -> None:
        raise NotImplementedError

    def _deactivate(self) -> None:
        raise NotImplementedError

    def _infer(self, arrays: dict[str, Any], symbols: dict[str, int]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, active={self.is_active})"
