"""Shared fixtures for export tests: one tiny checkpoint with non-trivial attention weights."""

import pytest
import torch

from fgsa.checkpoint import save_checkpoint
from fgsa.model import FMMP


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = FMMP("fmmp-tiny")
    with torch.no_grad():  # random offsets and logits: zero-init attention would hide indexing bugs
        for p in model.predictor.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth", model)
