"""The PyTorch model as a runner with the same lifecycle and I/O names as the exported graphs, so parity
is "compare two runners". Used by the parity and bench CLIs only; imports torch (the Engine never does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from runtime.backends.base import Runner
from runtime.specs import BatchRange

GRAPH_INPUTS = {
    "full": ("query", "support", "support_points", "support_visible", "support_links"),
    "support_encoder": ("support",),
    "predictor": ("query", "support_features", "support_points", "support_visible", "support_links"),
}


class TorchRunner(Runner):
    """FMMP eager in float32 on the CPU, one graph's contract ("full", "support_encoder" or "predictor").

    Args:
        model: an FMMP module, or a checkpoint path (loaded with :func:`fgsa.checkpoint.load_model`).
        graph: which exported graph to imitate.
        threads: torch intra-op threads (None: leave torch's setting).
    """

    backend = "pytorch"

    def __init__(self, model: Any, graph: str = "full", threads: int | None = None, config: Any = None):
        super().__init__(f"torch-{graph}")
        if graph not in GRAPH_INPUTS:
            raise ValueError(graph)
        self.graph, self.threads, self.config = graph, threads, config
        self._model_or_path = model
        self.model = None

    def _activate(self) -> None:
        import torch
        from fgsa.checkpoint import load_model

        if self.threads:
            torch.set_num_threads(self.threads)
        src = self._model_or_path
        self.model = load_model(src, self.config) if isinstance(src, (str, Path)) else src.eval()
        self.batch = BatchRange(1, None)

    def _deactivate(self) -> None:
        self.model = None

    def infer(self, feed: Mapping[str, Any], check: bool = True) -> dict[str, np.ndarray]:
        """Same contract as the graphs: NumPy (or torch) arrays in, NumPy out; the model validates inputs."""
        import torch

        with self._lock:
            if self.model is None:
                self._activate()
            tensors = [torch.as_tensor(np.asarray(feed[k])) for k in GRAPH_INPUTS[self.graph]]
            with torch.inference_mode():
                if self.graph == "support_encoder":
                    return {"support_features": self.model.encode_support(*tensors).numpy()}
                layers = (self.model(*tensors) if self.graph == "full" else self.model.predict(*tensors))
            return {"points": layers[-1].numpy(), "points_per_layer": layers.numpy()}
