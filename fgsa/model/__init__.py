"""The FMMP model in PyTorch: configs, the network, and its input validation. See README.md."""

from fgsa.model.config import PRESETS, ModelConfig, get_config
from fgsa.model.fmmp import FMMP
from fgsa.support_state import SupportState

__all__ = ["FMMP", "ModelConfig", "PRESETS", "SupportState", "get_config"]
