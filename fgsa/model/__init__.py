"""The FMMP model in PyTorch: configs, the network, and its input validation. See README.md."""

from fgsa.model.config import PRESETS, ModelConfig, get_config
from fgsa.model.fmmp import FMMP

__all__ = ["FMMP", "ModelConfig", "PRESETS", "get_config"]
