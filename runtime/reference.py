"""The PyTorch model as a runner with the same lifecycle and I/O names as the exported graphs, so parity
is "compare two runners". Used by the parity and bench CLIs only; imports torch (the Engine never does).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from fgsa.support_state import SupportState, is_state_name
from runtime.backends.base import Runner
from runtime.specs import BatchRange

KEYPOINTS = ("support_points", "support_visible", "support_links")
GRAPH_INPUTS = {
    "full": ("query", "support", *KEYPOINTS),
    "support_encoder": ("support", *KEYPOINTS),
    "predictor": ("query", *KEYPOINTS),  # plus the support state, by name
}


class TorchRunner(Runner):
    """FMMP eager in float32 on the CPU, one graph's contract ("full", "support_encoder" or "predictor").

    Args:
        model: an FMMP module, or a checkpoint path (loaded with :func:`fgsa.checkpoint.load_model`).
        graph: which exported graph to imitate.
        threads: torch intra-op threads (None: leave torch's setting).
        attention: the engine's attention form (its metadata's ``attention``): the support state is
            exchanged in that form's value layout.
    """

    backend = "pytorch"

    def __init__(self, model: Any, graph: str = "full", threads: int | None = None, config: Any = None,
                 attention: str | None = None):
        super().__init__(f"torch-{graph}")
        if graph not in GRAPH_INPUTS:
            raise ValueError(graph)
        self.graph, self.threads, self.config, self.attention = graph, threads, config, attention
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
            if self.attention:
                from export.forms import attention_form
                layout = attention_form(self.attention)
            else:
                layout = contextlib.nullcontext()
            with torch.inference_mode(), layout:
                if self.graph == "support_encoder":
                    state = self.model.encode_support(*tensors)
                    return {name: t.numpy() for name, t in state.named()}
                if self.graph == "full":
                    layers = self.model(*tensors)
                else:
                    names = [k for k in feed if is_state_name(k)]
                    state = SupportState.from_named(names, [torch.as_tensor(np.asarray(feed[k])) for k in names])
                    layers = self.model.predict(tensors[0], state, *tensors[1:])
            return {"points": layers[-1].numpy(), "points_per_layer": layers.numpy()}
