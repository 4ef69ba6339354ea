"""Checkpoints: our layout, the official mmcv layout, bare state_dicts; every failure is explained."""

import pickle

import numpy as np
import pytest
import torch

from fgsa.checkpoint import load_model, read_checkpoint, save_checkpoint
from fgsa.errors import CheckpointError, ConfigError
from fgsa.model import FMMP
from fgsa.model.examples import random_inputs


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return FMMP("fmmp-tiny").eval()


def same_outputs(a, b):
    inputs = random_inputs(a.cfg, batch=1, shots=1, seed=3)
    with torch.no_grad():
        torch.testing.assert_close(a(**inputs), b(**inputs), rtol=0, atol=0)


def test_our_layout_round_trip(tiny, tmp_path):
    path = save_checkpoint(tmp_path / "m.pth", tiny, {"epoch": 3})
    ckpt = read_checkpoint(path)
    assert ckpt.layout == "fgsa-deploy" and ckpt.config == tiny.cfg and ckpt.meta == {"epoch": 3}
    assert len(ckpt.sha256) == 64
    same_outputs(tiny, load_model(path))


def test_official_layout_with_module_prefix_and_numpy_meta(tiny, tmp_path):
    meta = {"mmcv_version": "1.3.17", "epoch": 200, "hook_msgs": {"best_score": np.float64(0.787)}}
    sd = {"module." + k: v for k, v in tiny.state_dict().items()}
    torch.save({"meta": meta, "state_dict": sd, "optimizer": {"state": {}, "param_groups": []}}, tmp_path / "o.pth")
    ckpt = read_checkpoint(tmp_path / "o.pth", config="fmmp-tiny")
    assert ckpt.layout == "official" and ckpt.meta["epoch"] == 200
    same_outputs(tiny, load_model(tmp_path / "o.pth", config="fmmp-tiny"))


def test_official_r50_file_loads_strictly(tmp_path):
    model = FMMP("fmmp-r50")
    torch.save({"meta": {"epoch": 1}, "state_dict": model.state_dict()}, tmp_path / "r50.pth")
    loaded = load_model(tmp_path / "r50.pth")  # config defaults to fmmp-r50 for official files
    assert loaded.cfg.name == "fmmp-r50"
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "nope.pth")


def test_corrupt_file(tmp_path, tiny):
    (tmp_path / "junk.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        read_checkpoint(tmp_path / "junk.pth")
    good = save_checkpoint(tmp_path / "good.pth", tiny).read_bytes()
    (tmp_path / "cut.pth").write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        read_checkpoint(tmp_path / "cut.pth")


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_objects_are_refused(tmp_path):
    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"state_dict": Evil()}, f)
    torch.save({"state_dict": {"backbone.conv1.weight": torch.zeros(1)}, "obj": Evil()}, tmp_path / "evil2.pth")
    for name in ("evil.pth", "evil2.pth"):
        with pytest.raises(CheckpointError):
            read_checkpoint(tmp_path / name)


def test_foreign_checkpoint(tmp_path):
    torch.save({"state_dict": {"encoder.weight": torch.zeros(3), "head.bias": torch.zeros(2)}}, tmp_path / "f.pth")
    with pytest.raises(CheckpointError, match="not an FMMP checkpoint"):
        read_checkpoint(tmp_path / "f.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="expected a dict"):
        read_checkpoint(tmp_path / "list.pth")


def test_missing_unexpected_and_wrong_shape(tiny, tmp_path):
    sd = dict(tiny.state_dict())
    del sd["predictor.kpt_branch.0.mlp.0.weight"]
    sd["predictor.extra.weight"] = torch.zeros(1)
    sd["backbone_projs.0.0.bias"] = torch.zeros(7)
    torch.save({"state_dict": sd}, tmp_path / "b.pth")
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(tmp_path / "b.pth", config="fmmp-tiny")
    msg = str(info.value)
    assert "1 missing keys" in msg and "predictor.kpt_branch.0.mlp.0.weight" in msg
    assert "1 unexpected keys" in msg and "predictor.extra.weight" in msg
    assert "backbone_projs.0.0.bias: (7,) vs (64,)" in msg


def test_config_mismatch(tiny, tmp_path):
    path = save_checkpoint(tmp_path / "m.pth", tiny)
    with pytest.raises(ConfigError, match="embeds config 'fmmp-tiny'"):
        read_checkpoint(path, config="fmmp-r50")
    torch.save({"state_dict": tiny.state_dict()}, tmp_path / "o.pth")
    with pytest.raises(CheckpointError, match="does not fit model config 'fmmp-r50'"):
        read_checkpoint(tmp_path / "o.pth")


def test_pickled_payload_error_never_advises_unsafe_loading(tmp_path):
    from fgsa.train.init import load_backbone_weights

    torch.save({"state_dict": {"backbone.conv1.weight": torch.zeros(1)}, "obj": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError) as read:
        read_checkpoint(tmp_path / "evil.pth")
    with pytest.raises(CheckpointError) as backbone:
        load_backbone_weights(None, tmp_path / "evil.pth")
    for err in (read, backbone):
        text = str(err.value)
        assert "will not be loaded" in text and "print" in text  # names what it pickles
        assert "weights_only" not in text and "False" not in text
