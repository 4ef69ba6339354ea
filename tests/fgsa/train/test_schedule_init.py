"""Learning-rate schedule and the official initialisation."""

import math

import pytest
import torch

from fgsa.model import FMMP
from fgsa.model.examples import random_inputs
from fgsa.train.init import official_init
from fgsa.train.schedule import StepWarmupSchedule


def test_linear_warmup_then_step_decay():
    s = StepWarmupSchedule(base_lr=1e-4, steps=(2, 4), gamma=0.1, warmup_iters=1000, warmup_ratio=0.001)
    assert s.lr(0, 0) == pytest.approx(1e-7)
    assert s.lr(500, 0) == pytest.approx(1e-4 * (1 - 0.5 * 0.999))
    assert s.lr(1000, 0) == pytest.approx(1e-4)
    assert s.lr(5000, 1) == pytest.approx(1e-4)
    assert s.lr(5000, 2) == pytest.approx(1e-5)
    assert s.lr(5000, 4) == pytest.approx(1e-6)
    assert s.lr(10, 2) == pytest.approx(1e-5 * (1 - (1 - 10 / 1000) * 0.999))  # warmup scales the decayed rate
    no_warmup = StepWarmupSchedule(base_lr=3e-4, steps=(), warmup_iters=0)
    assert no_warmup.lr(0, 0) == pytest.approx(3e-4)


def test_official_init_values():
    model = official_init(FMMP("fmmp-tiny"), seed=0)
    attn = model.predictor.decoder_layers[1].deform_attn.attn_layers[3]
    m, levels, points = model.cfg.n_heads, model.cfg.n_levels, model.cfg.n_points
    bias = attn.sampling_offsets.bias.view(m, levels, points, 2)
    for h in range(m):
        theta = 2 * math.pi * h / m
        ring = torch.tensor([math.cos(theta), math.sin(theta)])
        ring = ring / ring.abs().max()
        for p in range(points):
            torch.testing.assert_close(bias[h, levels - 1, p], (p + 1) * ring, atol=1e-6, rtol=0)
    assert not attn.sampling_offsets.weight.any() and not attn.attention_weights.weight.any()
    assert not attn.attention_weights.bias.any() and not attn.value_proj.bias.any()
    assert all(not m.bn3.weight.any() for m in model.backbone.modules() if hasattr(m, "bn3"))
    mha = model.predictor.support_layers[0].self_attn
    assert not mha.in_proj_bias.any() and not mha.out_proj.bias.any()
    # every kpt_branch ends at zero, so each layer keeps its input point: all layers predict sigmoid(0) = 0.5
    with torch.no_grad():
        out = model.eval()(**random_inputs(model.cfg, batch=1, shots=1, seed=1))
    torch.testing.assert_close(out, torch.full_like(out, 0.5), atol=0, rtol=0)


def test_official_init_is_seeded():
    a = official_init(FMMP("fmmp-tiny"), seed=3).state_dict()
    b = official_init(FMMP("fmmp-tiny"), seed=3).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
