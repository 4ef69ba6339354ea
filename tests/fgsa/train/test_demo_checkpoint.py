"""The float16 demo checkpoint: storage round trip, and the shipped file (when present)."""

import pytest
import torch

from fgsa.checkpoint import load_model, read_checkpoint
from fgsa.model import FMMP, get_config
from fgsa.model.examples import random_inputs
from fgsa.train.demo_checkpoint import SHIPPED, save_half_checkpoint


def test_half_storage_round_trip(tmp_path):
    torch.manual_seed(0)
    model = FMMP("fmmp-tiny").eval()
    path = save_half_checkpoint(model, tmp_path / "half.pth", {"note": "test"})
    ckpt = read_checkpoint(path)
    assert ckpt.meta["stored_dtype"] == "float16" and ckpt.meta["note"] == "test"
    floats = [v for v in ckpt.state_dict.values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    assert ckpt.state_dict["backbone.bn1.num_batches_tracked"].dtype == torch.int64
    loaded = load_model(path)
    for name, value in model.state_dict().items():
        got = loaded.state_dict()[name]
        expected = value.half().to(value.dtype) if value.is_floating_point() else value
        assert got.dtype == value.dtype and torch.equal(got, expected), name
    inputs = random_inputs(model.cfg, batch=1, shots=1, seed=2)
    with torch.no_grad():
        diff = (loaded(**inputs) - model(**inputs)).abs().max()
    assert diff < 5e-3  # fp16 rounding of the weights only


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped demo checkpoint")
def test_shipped_demo_checkpoint():
    assert SHIPPED.stat().st_size <= 8 * 2**20
    ckpt = read_checkpoint(SHIPPED)
    assert ckpt.config == get_config("fmmp-tiny") and ckpt.meta["stored_dtype"] == "float16"
    assert ckpt.meta["iterations"] > 0
    model = load_model(SHIPPED)
    with torch.no_grad():
        out = model(**random_inputs(model.cfg, batch=1, shots=1, seed=0))
    assert out.shape == (3, 1, 70, 2) and torch.isfinite(out).all()
