"""The exported graphs and their fixed, documented I/O.

| graph | inputs | outputs |
|---|---|---|
| full (`model.onnx`) | query [B,3,H,W] f32, support [B,S,3,H,W] f32, support_points [B,S,K,2] f32, support_visible [B,S,K] bool, support_links [B,S,K,16] int32 | points [B,K,2] f32 (+ points_per_layer [n_layers,B,K,2]) |
| support_encoder (`--split`) | support, support_points, support_visible, support_links | the support state (below) |
| predictor (`--split`) | query, the support state, support_points, support_visible, support_links | points (+ points_per_layer) |

Points are (x, y) in [0, 1] of the query crop (x256 for crop pixels). K is fixed at export (70).

The support state is everything the predictor needs that reads no query (fgsa/support_state.py), all
f32: support_embed [B,K,D], support_pos [B,S,K,D], and per support layer l = 1..n_layers-1 the projected
values: support_values_{l} [B,S,Len_in,Hs*M,Dh] (plugin, trt-builtin), or per level i
support_values_{l}_level{i} [B,S,Hs*M,Dh,H_i,W_i] (portable: GridSample's layout).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from export.forms import VALUE_LAYOUTS, attention_form
from fgsa.model import FMMP, ModelConfig, SupportState
from fgsa.model.examples import random_inputs
from fgsa.support_state import EMBED, POS, is_state_name, values_name


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple  # ints, or strings for dynamic axes
    dtype: str    # numpy dtype name

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


def support_state_specs(cfg: ModelConfig, shots: int, batch, form: str) -> list[TensorSpec]:
    """The support encoder's outputs = the predictor's state inputs, in SupportState order."""
    K, D = cfg.max_keypoints, cfg.d_model
    heads, dh = cfg.side_heads * cfg.n_heads, cfg.head_dim
    specs = [TensorSpec(EMBED, (batch, K, D), "float32"), TensorSpec(POS, (batch, shots, K, D), "float32")]
    for layer in range(1, cfg.n_layers):
        if form in VALUE_LAYOUTS:
            specs += [TensorSpec(values_name(layer, i), (batch, shots, heads, dh, h, w), "float32")
                      for i, (h, w) in enumerate(cfg.spatial_shapes)]
        else:
            specs.append(TensorSpec(values_name(layer), (batch, shots, cfg.num_values, heads, dh), "float32"))
    return specs


def io_specs(cfg: ModelConfig, graph: str, shots: int, batch, all_layers: bool,
             form: str = "plugin") -> tuple[list, list]:
    """Input and output TensorSpecs of one graph; ``batch`` is an int or the dynamic axis name; ``form``
    (the attention form) decides the layout of the support state's values."""
    H = cfg.input_size
    K, D = cfg.max_keypoints, cfg.d_model
    support = TensorSpec("support", (batch, shots, 3, H, H), "float32")
    query = TensorSpec("query", (batch, 3, H, H), "float32")
    keypoints = [TensorSpec("support_points", (batch, shots, K, 2), "float32"),
                 TensorSpec("support_visible", (batch, shots, K), "bool"),
                 TensorSpec("support_links", (batch, shots, K, cfg.link_width), "int32")]
    points = [TensorSpec("points", (batch, K, 2), "float32")]
    if all_layers:
        points.append(TensorSpec("points_per_layer", (cfg.n_layers, batch, K, 2), "float32"))
    if graph == "full":
        return [query, support, *keypoints], points
    if graph == "support_encoder":
        return [support, *keypoints], support_state_specs(cfg, shots, batch, form)
    if graph == "predictor":
        return [query, *support_state_specs(cfg, shots, batch, form), *keypoints], points
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

    def forward(self, support, support_points, support_visible, support_links):
        state = self.model.encode_support(support, support_points, support_visible, support_links)
        return tuple(t for _, t in state.named())


class PredictorGraph(nn.Module):
    """query, *state tensors (``state_names`` order), support_points, support_visible, support_links."""

    def __init__(self, model: FMMP, all_layers: bool, state_names: list[str]):
        super().__init__()
        self.model, self.all_layers, self.state_names = model, all_layers, list(state_names)

    def forward(self, query, *rest):
        n = len(self.state_names)
        state = SupportState.from_named(self.state_names, rest[:n])
        layers = self.model.predict(query, state, *rest[n:])
        return (layers[-1], layers) if self.all_layers else layers[-1]


def graph_module(model: FMMP, graph: str, all_layers: bool, form: str = "plugin") -> nn.Module:
    if graph == "full":
        return FullGraph(model, all_layers)
    if graph == "support_encoder":
        return SupportEncoderGraph(model)
    if graph == "predictor":
        names = [s.name for s in support_state_specs(model.cfg, 1, 1, form)]
        return PredictorGraph(model, all_layers, names)
    raise ValueError(graph)


def example_feed(cfg: ModelConfig, inputs: list[TensorSpec], batch: int, seed: int,
                 model: FMMP | None = None, form: str = "plugin") -> dict[str, torch.Tensor]:
    """Random valid tensors for ``inputs`` at batch size ``batch`` (a support state computed by ``model``
    in ``form``'s value layout)."""
    shots = next(s.shape[1] for s in inputs if s.name in ("support", "support_points"))
    raw = random_inputs(cfg, batch=batch, shots=shots, seed=seed)
    names = {s.name for s in inputs}
    if any(is_state_name(n) for n in names):
        with torch.no_grad(), attention_form(form):
            state = model.encode_support(raw["support"], raw["support_points"], raw["support_visible"],
                                         raw["support_links"])
        raw.update({n: t.float() for n, t in state.named()})
    return {spec.name: raw[spec.name] for spec in inputs}
