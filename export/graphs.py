"""The exported graphs and their fixed, documented I/O.

| graph | inputs | outputs |
|---|---|---|
| full (`model.onnx`) | query [B,3,H,W] f32, support [B,S,3,H,W] f32, support_points [B,S,K,2] f32, support_visible [B,S,K] bool, support_links [B,S,K,16] int32 | points [B,K,2] f32 (+ points_per_layer [n_layers,B,K,2]) |
| support_encoder (`--split`) | support | support_features [B,S,Len_in,D] f32 |
| predictor (`--split`) | query, support_features, support_points, support_visible, support_links | points (+ points_per_layer) |

Points are (x, y) in [0, 1] of the query crop (x256 for crop pixels). K is fixed at export (70).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fgsa.model import FMMP, ModelConfig


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple  # ints, or strings for dynamic axes
    dtype: str    # numpy dtype name

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


def io_specs(cfg: ModelConfig, graph: str, shots: int, batch, all_layers: bool) -> tuple[list, list]:
    """Input and output TensorSpecs of one graph; ``batch`` is an int or the dynamic axis name."""
    H = cfg.input_size
    K, D = cfg.max_keypoints, cfg.d_model
    support = TensorSpec("support", (batch, shots, 3, H, H), "float32")
    query = TensorSpec("query", (batch, 3, H, H), "float32")
    keypoints = [TensorSpec("support_points", (batch, shots, K, 2), "float32"),
                 TensorSpec("support_visible", (batch, shots, K), "bool"),
                 TensorSpec("support_links", (batch, shots, K, cfg.link_width), "int32")]
    features = TensorSpec("support_features", (batch, shots, cfg.num_values, D), "float32")
    points = [TensorSpec("points", (batch, K, 2), "float32")]
    if all_layers:
        points.append(TensorSpec("points_per_layer", (cfg.n_layers, batch, K, 2), "float32"))
    if graph == "full":
        return [query, support, *keypoints], points
    if graph == "support_encoder":
        return [support], [features]
    if graph == "predictor":
        return [query, features, *keypoints], points
    raise ValueError(graph)


class FullGraph(nn.Module):
    def __init__(self, model: FMMP, all_layers: bool):
        super().__init__()
        self.model, self.all_layers = model, all_layers

    def forward(self, query, support, support_points, support_visible, support_links):
        layers = self.model(query, support, support_points, support_visible, support_links)
        return (layers[-1], layers) if self.all_layers else layers[-1]


class SupportEncoderGraph(nn.Module):
    def __init__(self, model: FMMP):
        super().__init__()
        self.model = model

    def forward(self, support):
        return self.model.encode_support(support)


class PredictorGraph(nn.Module):
    def __init__(self, model: FMMP, all_layers: bool):
        super().__init__()
        self.model, self.all_layers = model, all_layers

    def forward(self, query, support_features, support_points, support_visible, support_links):
        layers = self.model.predict(query, support_features, support_points, support_visible, support_links)
        return (layers[-1], layers) if self.all_layers else layers[-1]


def graph_module(model: FMMP, graph: str, all_layers: bool) -> nn.Module:
    return {"full": lambda: FullGraph(model, all_layers),
            "support_encoder": lambda: SupportEncoderGraph(model),
            "predictor": lambda: PredictorGraph(model, all_layers)}[graph]()


def example_feed(cfg: ModelConfig, inputs: list[TensorSpec], batch: int, seed: int,
                 model: FMMP | None = None) -> dict[str, torch.Tensor]:
    """Random valid tensors for ``inputs`` at batch size ``batch`` (support features computed by ``model``)."""
    from fgsa.model.examples import random_inputs

    shots = next(s.shape[1] for s in inputs if s.name in ("support", "support_features"))
    raw = random_inputs(cfg, batch=batch, shots=shots, seed=seed)
    feed = {}
    for spec in inputs:
        if spec.name == "support_features":
            with torch.no_grad():
                feed[spec.name] = model.encode_support(raw["support"])
        else:
            feed[spec.name] = raw[spec.name]
    return feed
