"""Model configurations as data: one dataclass, named presets, round trip through plain dicts.

``fmmp-r50`` is the authors' `s1` model (ResNet-50, 256-d, 3 layers, 8 side heads); its state_dict is
key-for-key the official ``ExtLocDetector``'s. ``fmmp-tiny`` runs the same code with a narrow backbone
and 64-d embeddings, for tests and the CPU demo.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from fgsa.errors import ConfigError


@dataclass(frozen=True)
class ModelConfig:
    name: str = "fmmp-r50"
    # backbone: torchvision/mmpose ResNet with Bottlenecks (expansion 4), stride on the 3x3 conv
    stem_channels: int = 64
    stage_blocks: tuple[int, ...] = (3, 4, 6, 3)
    stage_widths: tuple[int, ...] = (64, 128, 256, 512)
    # predictor
    d_model: int = 256
    n_heads: int = 8          # heads of every attention (MHA and each deformable attention)
    n_levels: int = 3         # feature levels, coarse to fine: strides 32, 16, 8
    n_points: int = 4         # sampling points per head and level
    side_heads: int = 8       # deformable attentions per FGSA module (head 0 = the keypoint itself)
    d_ffn: int = 256
    n_layers: int = 3
    use_self_attn: bool = True
    max_keypoints: int = 70   # K after padding
    link_width: int = 16      # columns of the BFS link table (only the first side_heads are used)
    input_size: int = 256     # square crop side in pixels
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __post_init__(self) -> None:
        problems = []
        if len(self.stage_blocks) != 4 or len(self.stage_widths) != 4:
            problems.append("stage_blocks and stage_widths need 4 entries (ResNet stages)")
        if self.d_model % self.n_heads:
            problems.append(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if not 1 <= self.n_levels <= 3:
            problems.append(f"n_levels must be 1..3 (backbone stages 2..4), got {self.n_levels}")
        if not 1 <= self.side_heads <= self.link_width:
            problems.append(f"side_heads must be 1..link_width ({self.link_width}), got {self.side_heads}")
        stride = 2 ** (5 + 0)  # coarsest level is stride 32
        if self.input_size % stride:
            problems.append(f"input_size must be a multiple of {stride} (levels double exactly), got {self.input_size}")
        if problems:
            raise ConfigError(f"invalid model config '{self.name}': " + "; ".join(problems))

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def backbone_channels(self) -> tuple[int, ...]:
        """Output channels of the four ResNet stages."""
        return tuple(4 * w for w in self.stage_widths)

    @property
    def spatial_shapes(self) -> tuple[tuple[int, int], ...]:
        """(H, W) of each level, coarse to fine, as the predictor sees them."""
        return tuple((self.input_size // s, self.input_size // s) for s in (32, 16, 8)[: self.n_levels])

    @property
    def num_values(self) -> int:
        """Len_in: flattened positions over all levels."""
        return sum(h * w for h, w in self.spatial_shapes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"model config must be a dict, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown model config keys {unknown}; known keys: {sorted(known)}")
        tuples = {f.name for f in dataclasses.fields(cls) if "tuple" in str(f.type)}
        return cls(**{k: tuple(v) if k in tuples else v for k, v in data.items()})


PRESETS: dict[str, ModelConfig] = {
    "fmmp-r50": ModelConfig(),
    "fmmp-tiny": ModelConfig(
        name="fmmp-tiny",
        stem_channels=16,
        stage_blocks=(1, 1, 1, 1),
        stage_widths=(16, 32, 64, 128),
        d_model=64,
        d_ffn=64,
    ),
}


def get_config(name_or_config: str | dict | ModelConfig) -> ModelConfig:
    """A preset by name, a config dict, or a ModelConfig (returned as is)."""
    if isinstance(name_or_config, ModelConfig):
        return name_or_config
    if isinstance(name_or_config, dict):
        return ModelConfig.from_dict(name_or_config)
    if name_or_config not in PRESETS:
        raise ConfigError(f"unknown model preset '{name_or_config}'; available: {sorted(PRESETS)}")
    return PRESETS[name_or_config]
