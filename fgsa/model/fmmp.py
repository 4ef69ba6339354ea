"""The FMMP network (official ``ExtLocDetector`` at eval): backbone -> projections + top-down sums -> predictor.

Forward contract (used by export and every parity tool):
``forward(query [B,3,H,W], support [B,S,3,H,W], support_points [B,S,K,2], support_visible [B,S,K],
support_links [B,S,K,16] int) -> [n_layers, B, K, 2]`` (x, y) in [0, 1] of the query crop.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from fgsa.model.backbone import ResNet
from fgsa.model.config import ModelConfig, get_config
from fgsa.model.inputs import check_images, check_keypoints, validate_inputs
from fgsa.errors import InputError
from fgsa.model.predictor import Predictor
from fgsa.support_state import SupportState


def _exporting() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


class FMMP(nn.Module):
    def __init__(self, cfg: ModelConfig | str | dict = "fmmp-r50"):
        super().__init__()
        self.cfg = cfg = get_config(cfg)
        # registration order = the official state_dict order: backbone, predictor, backbone_projs
        self.backbone = ResNet(cfg.stem_channels, cfg.stage_blocks, cfg.stage_widths)
        self.predictor = Predictor(cfg)
        in_channels = cfg.backbone_channels[1:][::-1][: cfg.n_levels]  # C5, C4, C3: coarse to fine
        self.backbone_projs = nn.ModuleList(nn.Sequential(nn.Conv2d(c, cfg.d_model, 1)) for c in in_channels)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] normalised crops -> [N, Len_in, D] level features, coarse to fine, row-major."""
        feats = self.backbone(images)[::-1]  # C5, C4, C3
        levels = [self.backbone_projs[0](feats[0])]
        for proj, feat in zip(self.backbone_projs[1:], feats[1:]):
            # top-down: fixed x2 nearest upsampling of the coarser level plus the projection, no conv after
            levels.append(F.interpolate(levels[-1], scale_factor=2.0, mode="nearest") + proj(feat))
        return torch.cat([lvl.flatten(2).transpose(1, 2) for lvl in levels], dim=1)

    def encode_support(self, support, support_points, support_visible, support_links) -> SupportState:
        """The split graph's first half: support images + keypoints -> the cached :class:`SupportState`
        (support backbone, position embeddings, support layer 0, support value projections)."""
        if not _exporting():
            check_images("support", support, self.cfg, "B, S")
            check_keypoints(self.cfg, support_points, support_visible, support_links, *support.shape[:2])
        S = support.shape[1]
        features = self.encode(support.flatten(0, 1)).view(-1, S, self.cfg.num_values, self.cfg.d_model)
        return self.predictor.prepare_support(features, support_points, support_visible, support_links)

    def predict(self, query, state: SupportState, support_points, support_visible, support_links) -> torch.Tensor:
        """The split graph's second half: query images + :meth:`encode_support`'s state -> [n_layers, B, K, 2]."""
        if not _exporting():
            check_images("query", query, self.cfg, "B")
            if not isinstance(state, SupportState):
                raise InputError("state", "the SupportState returned by encode_support", type(state).__name__)
            B, S = state.pos.shape[:2]
            if query.shape[0] != B:
                raise InputError("query", f"the support state's batch size ({B}) on axis 0", tuple(query.shape))
            check_keypoints(self.cfg, support_points, support_visible, support_links, B, S)
        return self.predictor.run(self.encode(query), state, support_points, support_visible, support_links)

    def forward(self, query, support, support_points, support_visible, support_links) -> torch.Tensor:
        if not _exporting():
            validate_inputs(self.cfg, query, support, support_points, support_visible, support_links)
        S = support.shape[1]
        # one backbone batch of B*(S+1) images, supports then query per episode, as the official model does
        images = torch.cat([support, query[:, None]], dim=1).flatten(0, 1)
        values = self.encode(images).view(-1, S + 1, self.cfg.num_values, self.cfg.d_model)
        return self.predictor(values[:, S], values[:, :S], support_points, support_visible, support_links)
