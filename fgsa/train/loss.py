"""The official FMMP training loss (docs/FMMP_MODEL.md §5.4): L1 on every layer, real vs mixup points.

For per-layer predictions P [L, B, K, 2], the query target G [B, K, 2] and its visibility v [B, K]:

    l1[l, b, k] = |P - G|_1 (summed over x, y)
    real[b, k]  = k < K_c(b);  mix = 1 - real          (mixup-padded points are the "mix" points)
    term(w)     = mean_b  sum_l  [ sum_k l1 * w  /  max(sum_k w, 0.1) ]      with w = v * real or v * mix
    loss        = term(v * real) + mix_weight * term(v * mix)               (official mix_weight = 0.5)

The loss is summed over layers (every layer is supervised), not averaged; the clamp makes a query with no
visible point of a kind contribute 0 instead of NaN.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from fgsa.errors import InputError

MIX_WEIGHT = 0.5
WEIGHT_CLAMP = 0.1


class LossTerms(NamedTuple):
    total: torch.Tensor  # scalar: real + mix_weight * mix (what is back-propagated)
    real: torch.Tensor   # scalar: the official l1_loss_real
    mix: torch.Tensor    # scalar: the unweighted mixup term (official l1_loss_mix / mix_weight)


def _weighted_term(l1: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """l1 [L, B, K], weight [B, K] -> mean over B of the sum over L of the weighted mean over K."""
    per = (l1 * weight).sum(-1) / weight.sum(-1).clamp(min=WEIGHT_CLAMP)  # [L, B]
    return per.sum(0).mean()


def fmmp_loss(pred: torch.Tensor, target: torch.Tensor, visible: torch.Tensor, k_c: torch.Tensor,
              mix_weight: float = MIX_WEIGHT) -> LossTerms:
    """pred [L, B, K, 2] (the model's output); target [B, K, 2] and visible [B, K] (the query's padded
    points and model visibility); k_c [B] real keypoints per row -> :class:`LossTerms`."""
    if pred.dim() != 4 or pred.shape[-1] != 2:
        raise InputError("pred", "[n_layers, B, K, 2] per-layer points", tuple(pred.shape))
    _, b, k, _ = pred.shape
    if target.shape != (b, k, 2) or visible.shape != (b, k) or k_c.shape != (b,):
        raise InputError("target/visible/k_c", f"shapes ({b}, {k}, 2), ({b}, {k}), ({b},)",
                         f"{tuple(target.shape)}, {tuple(visible.shape)}, {tuple(k_c.shape)}")
    l1 = (pred - target.to(pred.dtype)[None]).abs().sum(-1)  # [L, B, K]
    real = (torch.arange(k, device=pred.device)[None] < k_c.to(pred.device)[:, None]).to(pred.dtype)
    vis = visible.to(pred.dtype)
    real_term = _weighted_term(l1, vis * real)
    mix_term = _weighted_term(l1, vis * (1 - real))
    return LossTerms(real_term + mix_weight * mix_term, real_term, mix_term)
