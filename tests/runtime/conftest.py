"""Session fixtures for the runtime tests: tiny checkpoints, their ONNX exports, a tiny synthetic data set.

- ``tiny``: the fmmp-tiny preset (the real architecture: 3 layers, 8 side heads, 3 levels), portable
  attention, full graph, dynamic batch 1..4: API round trips against PyTorch (tracing its split graphs
  too would double the suite's time; the split path is tested on ``micro``).
- ``micro``: a deliberately small config (1 layer, 2 side heads, 2 levels, 16-d) so that tests needing
  hundreds of calls (threads) or whole CLIs stay fast; portable split graphs and a plugin-form full graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from fgsa.checkpoint import save_checkpoint
from fgsa.model import FMMP
from fgsa.model.config import ModelConfig

MICRO = ModelConfig(name="micro-test", stem_channels=8, stage_blocks=(1, 1, 1, 1), stage_widths=(8, 8, 8, 8),
                    d_model=16, n_heads=2, n_levels=2, n_points=1, side_heads=2, d_ffn=16, n_layers=2)


@dataclass
class Exported:
    ckpt: Path
    folder: Path
    model: FMMP


def _checkpoint(folder: Path, cfg) -> tuple[Path, FMMP]:
    torch.manual_seed(0)
    model = FMMP(cfg)
    with torch.no_grad():  # random offsets and logits: zero-init attention would hide indexing bugs
        for p in model.predictor.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return save_checkpoint(folder / "model.pth", model), model.eval()


def _export(ckpt: Path, out: Path, **kw) -> Path:
    from export.onnx import ExportOptions, export_onnx

    result = export_onnx(ExportOptions(ckpt=ckpt, out=out, parity=False, quiet=True, **kw))
    assert result.ok, result.lint
    return out


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Exported:
    root = tmp_path_factory.mktemp("tiny")
    ckpt, model = _checkpoint(root, "fmmp-tiny")
    folder = _export(ckpt, root / "portable", attention="portable", dynamic_batch=(1, 2, 4))
    return Exported(ckpt, folder, model)


@pytest.fixture(scope="session")
def micro(tmp_path_factory) -> Exported:
    root = tmp_path_factory.mktemp("micro")
    ckpt, model = _checkpoint(root, MICRO)
    folder = _export(ckpt, root / "portable", attention="portable", split=True, dynamic_batch=(1, 2, 4))
    return Exported(ckpt, folder, model)


@pytest.fixture(scope="session")
def micro_plugin(micro, tmp_path_factory) -> Path:
    """The micro model in plugin form (FGSA_Attention / FGSA_MSDA nodes), full graph only, batch 1."""
    return _export(micro.ckpt, tmp_path_factory.mktemp("micro_plugin"), attention="plugin") / "model.onnx"


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> Path:
    """Two held-out synthetic categories with 5 instances each (MP-100 layout)."""
    from fgsa.data.synthetic import SyntheticConfig, generate

    out = tmp_path_factory.mktemp("synthetic")
    generate(out, SyntheticConfig(seed=3, train_categories=1, val_categories=0, test_categories=2,
                                  instances_per_category=5, max_keypoints=12))
    return out
