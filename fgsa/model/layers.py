"""One refinement layer: keypoint self-attention + FFN, then FGSA deformable attention + FFN (post-norm).

The official ``SupportEncoder`` and ``QueryDecoder`` are the same class; we use one. Dropout modules are
kept (p=0.1, identity in eval) so training matches the authors' recipe.
"""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from fgsa.model.config import ModelConfig
from fgsa.model.deform_attn import StructuralDeformAttn
from fgsa.model.precision import cast, compute_dtype

DROPOUT = 0.1


def multihead_self_attention(
    mha: nn.MultiheadAttention, qk: torch.Tensor, v: torch.Tensor, key_ignore: torch.Tensor | None
) -> torch.Tensor:
    """nn.MultiheadAttention's math (q = k = ``qk``, value ``v``), written out so it exports as plain MatMuls
    and runs in any dtype. ``key_ignore`` [N, K] bool, True = the key cannot be attended to.

    A large negative fill instead of -inf gives the same result whenever a row has an unmasked key (the
    inputs are validated so that every support shot has one) and keeps FP16 graphs finite.
    """
    k, d = qk.shape[1:]
    h = mha.num_heads
    w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
    b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
    q = F.linear(qk, w_q, b_q).view(-1, k, h, d // h).transpose(1, 2)
    key = F.linear(qk, w_k, b_k).view(-1, k, h, d // h).transpose(1, 2)
    val = F.linear(v, w_v, b_v).view(-1, k, h, d // h).transpose(1, 2)
    scores = torch.matmul(q, key.transpose(-1, -2)) / math.sqrt(d // h)  # [N, h, K, K]
    scores = cast(scores, compute_dtype("softmax", scores.dtype))  # FP32 island of 16-bit models
    if key_ignore is not None:
        scores = scores.masked_fill(key_ignore[:, None, None, :], torch.finfo(scores.dtype).min)
    attn = F.dropout(torch.softmax(scores, dim=-1), mha.dropout, mha.training)
    out = torch.matmul(cast(attn, val.dtype), val).transpose(1, 2).reshape(-1, k, d)
    return mha.out_proj(out)


class KeypointLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, ffn = cfg.d_model, cfg.d_ffn
        self.spatial_shapes = cfg.spatial_shapes
        self.use_self_attn = cfg.use_self_attn
        if cfg.use_self_attn:
            self.self_attn = nn.MultiheadAttention(d, cfg.n_heads, dropout=DROPOUT, batch_first=True)
            self.self_dropout1 = nn.Dropout(DROPOUT)
            self.self_norm1 = nn.LayerNorm(d)
            self.self_linear1 = nn.Linear(d, ffn)
            self.self_dropout2 = nn.Dropout(DROPOUT)
            self.self_linear2 = nn.Linear(ffn, d)
            self.self_dropout3 = nn.Dropout(DROPOUT)
            self.self_norm2 = nn.LayerNorm(d)
        self.deform_attn = StructuralDeformAttn(cfg.side_heads, d, cfg.n_levels, cfg.n_heads, cfg.n_points)
        self.dropout1 = nn.Dropout(DROPOUT)
        self.norm1 = nn.LayerNorm(d)
        self.linear1 = nn.Linear(d, ffn)
        self.dropout2 = nn.Dropout(DROPOUT)
        self.linear2 = nn.Linear(ffn, d)
        self.dropout3 = nn.Dropout(DROPOUT)
        self.norm2 = nn.LayerNorm(d)

    def forward(
        self,
        embed: torch.Tensor,
        key_ignore: torch.Tensor | None,
        pos: torch.Tensor,
        values: torch.Tensor,
        ref_points: torch.Tensor,
        links: torch.Tensor,
    ) -> torch.Tensor:
        """embed, pos [N, K, D]; key_ignore [N, K] bool or None; values: projected by
        ``deform_attn.project_values`` (layout of the active op implementation);
        ref_points [N, K, 2]; links [N, K, >=Hs] -> [N, K, D]."""
        x = embed
        if self.use_self_attn:
            x = self.self_norm1(x + self.self_dropout1(multihead_self_attention(self.self_attn, x + pos, x, key_ignore)))
            x = self.self_norm2(x + self.self_dropout3(self.self_linear2(self.self_dropout2(F.relu(self.self_linear1(x))))))
        t = self.deform_attn(x + pos, ref_points, values, links, self.spatial_shapes)
        x = self.norm1(x + self.dropout1(t))
        x = self.norm2(x + self.dropout3(self.linear2(self.dropout2(F.relu(self.linear1(x))))))
        return x
