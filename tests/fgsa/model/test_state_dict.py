"""The state_dict is the official one key for key, shape for shape, in order; configs round trip."""

from pathlib import Path

import pytest
import torch

from fgsa.errors import ConfigError
from fgsa.model import FMMP, ModelConfig, PRESETS, get_config

OFFICIAL = Path(__file__).with_name("official_state_dict_s1.tsv")


def official_entries():
    rows = []
    for line in OFFICIAL.read_text().splitlines():
        if line.startswith("#"):
            continue
        key, shape, dtype = line.split("\t")
        rows.append((key, tuple(int(s) for s in shape.split(",") if s), dtype))
    return rows


def test_fmmp_r50_state_dict_is_the_official_one():
    sd = FMMP("fmmp-r50").state_dict()
    mine = [(k, tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in sd.items()]
    official = official_entries()
    assert len(official) == 868
    assert mine == official
    params = sum(v.numel() for k, v in sd.items() if "running_" not in k and "num_batches" not in k)
    assert params == 40_944_710


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_strict_round_trip_reproduces_outputs(name, tmp_path):
    torch.manual_seed(1)
    a = FMMP(name).eval()
    torch.save(a.state_dict(), tmp_path / "sd.pt")
    b = FMMP(name).eval()
    b.load_state_dict(torch.load(tmp_path / "sd.pt", weights_only=True), strict=True)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_config_dict_round_trip_and_errors():
    for cfg in PRESETS.values():
        assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown model preset 'nope'"):
        get_config("nope")
    with pytest.raises(ConfigError, match="unknown model config keys"):
        ModelConfig.from_dict({"bogus": 1})
    with pytest.raises(ConfigError, match="divisible by n_heads"):
        ModelConfig(d_model=100)
    with pytest.raises(ConfigError, match="multiple of 32"):
        ModelConfig(input_size=250)
