"""The keypoint predictor (official ``ExtLocPredictor``): recurrent mining over support and query features.

Support shots are folded into the batch dimension (N = B*S) instead of the official Python loop over
shots: each support layer sees the same input embedding for every shot, so this is the same math, in one
call per layer, and it traces with S as a plain shape. The forward is two halves, the same operations in
the same order per layer: :meth:`Predictor.prepare_support` (everything that reads no query: position
embeddings, the initial embeddings, support layer 0, the support value projections) and
:meth:`Predictor.run` (the rest), so a split export caches the first.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from fgsa import ops
from fgsa.model.config import ModelConfig
from fgsa.model.layers import KeypointLayer
from fgsa.model.positional import encode_keypoint_order, encode_points
from fgsa.model.precision import cast, compute_dtype
from fgsa.support_state import SupportState


class PositionMLP(nn.Module):
    """Linear -> GELU -> Linear (official ``MLP(d, d, d, 2)``, keys ``layers.{0,1}``)."""

    def __init__(self, d: int):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(d, d), nn.Linear(d, d)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers[1](F.gelu(self.layers[0](x)))


class PointHead(nn.Module):
    """3 x (Linear, GELU) then Linear to 2: the logit update of one layer (official ``TokenDecodeMLP``)."""

    def __init__(self, d: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(d, d), nn.GELU(), nn.Linear(d, d), nn.GELU(), nn.Linear(d, d), nn.GELU(), nn.Linear(d, 2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


def inverse_sigmoid(p: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    p = p.clamp(0, 1)
    return torch.log(p.clamp(min=eps) / (1 - p).clamp(min=eps))


def sample_keypoint_features(values: torch.Tensor, points: torch.Tensor, shapes) -> torch.Tensor:
    """Official ``get_ref_feat``: mean over levels of the bilinear sample of raw features at each point.

    values [N, Len_in, D]; points [N, K, 2] -> [N, K, D]."""
    levels = len(shapes)
    locations = points[:, :, None, None, None, :].expand(-1, -1, 1, levels, 1, 2)
    # uniform 1/L weights, shaped like the locations without the coordinate axis
    weights = torch.full_like(locations[..., 0], 1.0 / levels)
    return ops.msda(values[:, :, None, :], shapes, None, locations, weights)


def visible_mean(per_shot: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """[B, S, K, D] averaged over the shots where the keypoint is visible (official clamp 0.1 -> 0 if none)."""
    return (per_shot * visible[..., None]).sum(1) / visible.sum(1).clamp(min=0.1)[..., None]


class Predictor(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.support_layers = nn.ModuleList(KeypointLayer(cfg) for _ in range(cfg.n_layers))
        self.decoder_layers = nn.ModuleList(KeypointLayer(cfg) for _ in range(cfg.n_layers))
        self.pos_embed_proj = PositionMLP(cfg.d_model)
        self.kpt_branch = nn.ModuleList(PointHead(cfg.d_model) for _ in range(cfg.n_layers))

    def _support_inputs(self, support_points, support_visible, support_links, dtype):
        """Per-shot views of the keypoint inputs (shots folded into the batch)."""
        K = support_points.shape[2]
        cdtype = compute_dtype("coords", dtype)  # keypoint coordinates: FP32 islands of 16-bit models
        visible = support_visible.to(dtype)  # [B, S, K]
        points_s = support_points.to(cdtype).reshape(-1, K, 2)
        links_s = support_links.reshape(-1, K, support_links.shape[-1])
        key_ignore = (visible == 0).reshape(-1, K)
        return visible, points_s, links_s, key_ignore

    def prepare_support(
        self,
        values_s: torch.Tensor,
        support_points: torch.Tensor,
        support_visible: torch.Tensor,
        support_links: torch.Tensor,
    ) -> SupportState:
        """The query-independent half (computed once per support set): values_s [B, S, Len_in, D] raw level
        features; keypoints as in :meth:`forward` -> :class:`SupportState`."""
        cfg, shapes = self.cfg, self.cfg.spatial_shapes
        S, K = support_points.shape[1:3]
        D, dtype = cfg.d_model, values_s.dtype
        visible, points_s, links_s, key_ignore = self._support_inputs(support_points, support_visible,
                                                                      support_links, dtype)
        flat_values_s = values_s.reshape(-1, values_s.shape[2], D)

        query_order = encode_keypoint_order(support_points[:, 0, :, 0], D).to(dtype)  # quirk Q1
        pos_s = query_order[:, None].expand(-1, S, -1, -1).reshape(-1, K, D)
        pos_s = pos_s + self.pos_embed_proj(cast(encode_points(points_s, D), dtype))

        # embed_init='ref': mean over visible shots of the features at the support keypoints
        embed = visible_mean(sample_keypoint_features(flat_values_s, points_s, shapes).view(-1, S, K, D), visible)
        # support layer 0 reads only support data: its output is part of the state
        layer0 = self.support_layers[0]
        per_shot = layer0(embed[:, None].expand(-1, S, -1, -1).reshape(-1, K, D), key_ignore, pos_s,
                          layer0.deform_attn.project_values(flat_values_s, shapes), points_s, links_s)
        embed = visible_mean(per_shot.view(-1, S, K, D), visible)
        values = tuple(_shots(layer.deform_attn.project_values(flat_values_s, shapes), S)
                       for layer in self.support_layers[1:])
        return SupportState(embed, pos_s.view(-1, S, K, D), values)

    def run(
        self,
        values_q: torch.Tensor,
        state: SupportState,
        support_points: torch.Tensor,
        support_visible: torch.Tensor,
        support_links: torch.Tensor,
    ) -> torch.Tensor:
        """The per-query half: values_q [B, Len_in, D] raw query features + :meth:`prepare_support`'s state
        -> per-layer points [n_layers, B, K, 2]."""
        cfg, shapes = self.cfg, self.cfg.spatial_shapes
        S, K = support_points.shape[1:3]
        D, dtype = cfg.d_model, values_q.dtype
        cdtype = compute_dtype("coords", dtype)
        visible, points_s, links_s, key_ignore = self._support_inputs(support_points, support_visible,
                                                                      support_links, dtype)
        links_q = support_links[:, -1]  # quirk Q2: the query decoder uses the LAST shot's link table
        pos_s = state.pos.reshape(-1, K, D)
        query_order = encode_keypoint_order(support_points[:, 0, :, 0], D).to(dtype)  # quirk Q1

        embed = state.embed
        point = torch.sigmoid(torch.zeros_like(support_points[:, 0], dtype=cdtype))  # point_init='cst'
        logit = inverse_sigmoid(point)
        outputs = []
        for i, (decoder_layer, head) in enumerate(zip(self.decoder_layers, self.kpt_branch)):
            if i > 0:  # support layer 0 ran in prepare_support
                per_shot = self.support_layers[i](embed[:, None].expand(-1, S, -1, -1).reshape(-1, K, D),
                                                  key_ignore, pos_s, _flat(state.values[i - 1]), points_s, links_s)
                embed = visible_mean(per_shot.view(-1, S, K, D), visible)
            v_q = decoder_layer.deform_attn.project_values(values_q, shapes)
            pos_q = query_order + self.pos_embed_proj(cast(encode_points(point, D), dtype))
            embed = decoder_layer(embed, None, pos_q, v_q, point, links_q)  # no key mask in the decoder
            new_logit = logit + cast(head(embed), cdtype)
            new_point = torch.sigmoid(new_logit)
            outputs.append(new_point)
            point, logit = new_point.detach(), new_logit.detach()  # the embedding chain is NOT detached
        return torch.stack(outputs)

    def forward(
        self,
        values_q: torch.Tensor,
        values_s: torch.Tensor,
        support_points: torch.Tensor,
        support_visible: torch.Tensor,
        support_links: torch.Tensor,
    ) -> torch.Tensor:
        """values_q [B, Len_in, D]; values_s [B, S, Len_in, D] (raw level features, flattened);
        support_points [B, S, K, 2]; support_visible [B, S, K]; support_links [B, S, K, W] int
        -> per-layer points [n_layers, B, K, 2] in [0, 1] of the crop."""
        state = self.prepare_support(values_s, support_points, support_visible, support_links)
        return self.run(values_q, state, support_points, support_visible, support_links)


def _each(values, fn):
    """``fn`` on a value tensor, or on each level of a per-level layout (a tuple of tensors)."""
    return fn(values) if isinstance(values, torch.Tensor) else tuple(fn(v) for v in values)


def _shots(values, shots: int):
    """[B*S, ...] -> [B, S, ...]: the state keeps batch and shots apart."""
    return _each(values, lambda v: v.unflatten(0, (-1, shots)))


def _flat(values):
    return _each(values, lambda v: v.flatten(0, 1))
