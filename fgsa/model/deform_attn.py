"""The structural deformable attention of one FGSA module (official ``StructrualDeformAttnW``).

Parameters live in per-side-head modules so the state_dict matches the authors' keys
(``attn_layers.{h}.{sampling_offsets,attention_weights,value_proj,output_proj}``, ``projector.0``).
The forward concatenates the side heads' weights and runs all of them through one value projection and
one :func:`fgsa.ops.fgsa_attention` call, instead of the official 8 separate attentions: same math,
one op for export and the plugin.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from fgsa import ops
from fgsa.model.precision import cast


class DeformAttnParams(nn.Module):
    """Parameters of one Deformable-DETR attention (d_model, L levels, M heads, P points); no forward."""

    def __init__(self, d_model: int, n_levels: int, n_heads: int, n_points: int):
        super().__init__()
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)


def _stacked(layers: nn.ModuleList, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    mods = [getattr(layer, name) for layer in layers]
    return torch.cat([m.weight for m in mods]), torch.cat([m.bias for m in mods])


class StructuralDeformAttn(nn.Module):
    def __init__(self, side_heads: int, d_model: int, n_levels: int, n_heads: int, n_points: int):
        super().__init__()
        self.side_heads, self.d_model = side_heads, d_model
        self.n_levels, self.n_heads, self.n_points = n_levels, n_heads, n_points
        self.attn_layers = nn.ModuleList(
            DeformAttnParams(d_model, n_levels, n_heads, n_points) for _ in range(side_heads)
        )
        if side_heads >= 2:
            # ReLU after the projector is part of the official model: the structural term is >= 0
            self.projector = nn.Sequential(nn.Linear(d_model * (side_heads - 1), d_model), nn.ReLU())

    def project_values(self, values: torch.Tensor, spatial_shapes) -> torch.Tensor | tuple:
        """[N, Len_in, D] raw features -> every side head's value_proj at once, in the layout of the active
        :func:`fgsa.ops.project_values` (the reference's [N, Len_in, Hs*M, Dh])."""
        w, b = _stacked(self.attn_layers, "value_proj")
        return ops.project_values(values, w, b, self.side_heads * self.n_heads, spatial_shapes)

    def forward(
        self,
        query: torch.Tensor,
        ref_points: torch.Tensor,
        values: torch.Tensor,
        links: torch.Tensor,
        spatial_shapes: tuple[tuple[int, int], ...],
    ) -> torch.Tensor:
        """query [N, K, D]; ref_points [N, K, 2]; values: :meth:`project_values` of the features;
        links [N, K, >=Hs] int -> [N, K, D]."""
        k = query.shape[1]  # batch-like dims stay -1 in views: fewer shape ops in exported graphs
        hs, hm = self.side_heads, self.side_heads * self.n_heads
        w_off, b_off = _stacked(self.attn_layers, "sampling_offsets")
        w_att, b_att = _stacked(self.attn_layers, "attention_weights")
        offsets = F.linear(query, w_off, b_off).view(-1, k, hm, self.n_levels, self.n_points, 2)
        logits = F.linear(query, w_att, b_att).view(-1, k, hm, self.n_levels * self.n_points)
        # coordinate inputs share the reference points' dtype (the plugin's type rule; FP32 in FP16 graphs)
        offsets, logits = cast(offsets, ref_points.dtype), cast(logits, ref_points.dtype)
        sampled = ops.fgsa_attention(values, spatial_shapes, None, ref_points, links[..., :hs], offsets, logits)
        # each side head's own output_proj: a block-diagonal projection over [N, K, Hs, D]
        w_out = torch.stack([layer.output_proj.weight for layer in self.attn_layers])  # [Hs, D, D]
        b_out = torch.stack([layer.output_proj.bias for layer in self.attn_layers])  # [Hs, D]
        # one batched GEMM over side heads: [Hs, N*K, D] @ [Hs, D, D]. (A broadcast MatMul over [N, K, Hs, 1, D]
        # would make PyTorch materialise the weights N*K times; einsum exports poorly for TensorRT.)
        per_head = sampled.view(-1, hs, self.d_model).transpose(0, 1)
        heads = torch.matmul(per_head, w_out.transpose(1, 2)).transpose(0, 1).reshape(-1, k, hs, self.d_model) + b_out
        out = heads[:, :, 0]
        if hs >= 2:
            out = out + self.projector(heads[:, :, 1:].flatten(2))
        return out
