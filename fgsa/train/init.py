"""The authors' parameter initialisation for training from scratch (docs/FMMP_MODEL.md §2.5 and §3).

``FMMP(cfg)`` builds modules with PyTorch's default init (fine for loading weights). Training starts from
:func:`official_init`, which reproduces the official order of effects:

- predictor: every Linear xavier_uniform with zero bias, MHA ``in_proj`` xavier with zero biases (the
  projector's intended zero init is overwritten too, quirk Q5);
- every deformable attention: ``sampling_offsets`` weight 0 and bias = the Deformable-DETR ring
  ``(p + 1) * (cos t_h, sin t_h) / max(|cos t_h|, |sin t_h|)``, t_h = 2 pi h / M; ``attention_weights`` 0;
- the last Linear of every ``kpt_branch`` zero, so each layer starts by keeping its input point;
- ``backbone_projs``: xavier_uniform, zero bias;
- backbone (no ImageNet weights here): kaiming-normal fan_out convs, BatchNorm (1, 0), and every
  Bottleneck's ``bn3`` weight zero (mmpose ``zero_init_residual``). Load ImageNet weights afterwards with
  :func:`load_backbone_weights` when you have them (the official run starts from torchvision's).
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import torch
from torch import nn

from fgsa.checkpoint import refused_pickle_message
from fgsa.errors import CheckpointError
from fgsa.model import FMMP
from fgsa.model.backbone import Bottleneck
from fgsa.model.deform_attn import DeformAttnParams


def _xavier(module: nn.Module) -> None:
    nn.init.xavier_uniform_(module.weight)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)


def _reset_deform_attn(p: DeformAttnParams, n_heads: int, n_levels: int, n_points: int) -> None:
    nn.init.zeros_(p.sampling_offsets.weight)
    theta = torch.arange(n_heads, dtype=torch.float64) * (2.0 * math.pi / n_heads)
    ring = torch.stack([theta.cos(), theta.sin()], -1)
    ring = ring / ring.abs().max(-1, keepdim=True).values
    grid = ring.view(n_heads, 1, 1, 2).repeat(1, n_levels, n_points, 1)
    grid = grid * torch.arange(1, n_points + 1, dtype=torch.float64).view(1, 1, n_points, 1)
    with torch.no_grad():
        p.sampling_offsets.bias.copy_(grid.flatten())
    nn.init.zeros_(p.attention_weights.weight)
    nn.init.zeros_(p.attention_weights.bias)
    _xavier(p.value_proj)
    _xavier(p.output_proj)


@torch.no_grad()
def official_init(model: FMMP, seed: int | None = None) -> FMMP:
    """Re-initialise ``model`` in place as the official training run starts (see the module docstring).

    ``seed``: when given, ``torch.manual_seed(seed)`` first, so the weights depend only on it.
    """
    if seed is not None:
        torch.manual_seed(seed)
    cfg = model.cfg
    for m in model.backbone.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in model.backbone.modules():
        if isinstance(m, Bottleneck):
            nn.init.zeros_(m.bn3.weight)
    for m in model.backbone_projs.modules():
        if isinstance(m, nn.Conv2d):
            _xavier(m)
    for m in model.predictor.modules():
        if isinstance(m, nn.Linear):
            _xavier(m)
        elif isinstance(m, nn.MultiheadAttention):
            nn.init.xavier_uniform_(m.in_proj_weight)
            nn.init.zeros_(m.in_proj_bias)
            nn.init.zeros_(m.out_proj.bias)
    for m in model.predictor.modules():
        if isinstance(m, DeformAttnParams):
            _reset_deform_attn(m, cfg.n_heads, cfg.n_levels, cfg.n_points)
    for head in model.predictor.kpt_branch:
        nn.init.zeros_(head.mlp[-1].weight)
        nn.init.zeros_(head.mlp[-1].bias)
    return model


def load_backbone_weights(model: FMMP, path: str | Path) -> list[str]:
    """Load a torchvision/mmpose ResNet state_dict (e.g. ImageNet ``resnet50-*.pth``) into ``model.backbone``.

    ``fc.*`` and a ``backbone.`` / ``module.`` prefix are ignored; every backbone key must be present with
    the right shape. Returns the ignored keys.
    """
    try:
        sd = torch.load(Path(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # torch's own message advises weights_only=False: never repeat that
        raise CheckpointError(refused_pickle_message(Path(path), exc)) from None
    except Exception as exc:  # noqa: BLE001 - every failure becomes one clear message
        raise CheckpointError(f"{path}: not a readable state_dict ({type(exc).__name__}: {exc})") from None
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: expected a ResNet state_dict, got {type(sd).__name__}")
    cleaned, ignored = {}, []
    for key, val in sd.items():
        k = key
        for prefix in ("module.", "backbone."):
            k = k[len(prefix):] if k.startswith(prefix) else k
        if k.startswith("fc.") or not isinstance(val, torch.Tensor):
            ignored.append(key)
        else:
            cleaned[k] = val
    own = model.backbone.state_dict()
    missing = [k for k in own if k not in cleaned]
    bad = [k for k in own if k in cleaned and cleaned[k].shape != own[k].shape]
    extra = [k for k in cleaned if k not in own]
    if missing or bad or extra:
        raise CheckpointError(f"{path}: does not fit the '{model.cfg.name}' backbone: {len(missing)} missing "
                              f"(e.g. {missing[:3]}), {len(bad)} shape mismatches (e.g. {bad[:3]}), "
                              f"{len(extra)} unexpected (e.g. {extra[:3]})")
    model.backbone.load_state_dict(cleaned, strict=True)
    return ignored
