"""What a support set leaves behind for its queries: the query-independent half of the predictor.

FMMP's support encoder layers 1.. read the embeddings the query decoder just produced, so they cannot be
cached; everything else on the support side can (:meth:`fgsa.model.predictor.Predictor.prepare_support`):

- ``embed`` [B, K, D]: the keypoint embeddings after support layer 0 (its input is the mean of the support
  features at the support keypoints, itself query-independent), mean over visible shots;
- ``pos`` [B, S, K, D]: the support keypoints' position embeddings;
- ``values``: the projected support values of support layers 1.., in the layout of
  :func:`fgsa.ops.project_values` (one tensor, or one per level), leading dims [B, S].

The split export writes these as the support encoder's outputs and the predictor's inputs; the names
below are that interface (flattened in a fixed order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

if TYPE_CHECKING:  # this module stays torch-free: the runtime (which never imports torch) reads the names
    import torch

EMBED, POS, VALUES = "support_embed", "support_pos", "support_values"


class SupportState(NamedTuple):
    embed: torch.Tensor
    pos: torch.Tensor
    values: tuple  # per support layer 1..n-1: a tensor, or a tuple of per-level tensors

    def named(self) -> list[tuple[str, Any]]:
        """(name, tensor) pairs in interface order: support_embed, support_pos, support_values_{l}[_level{i}]."""
        out = [(EMBED, self.embed), (POS, self.pos)]
        for layer, v in enumerate(self.values, start=1):
            if isinstance(v, (tuple, list)):
                out += [(values_name(layer, i), t) for i, t in enumerate(v)]
            else:
                out.append((values_name(layer), v))
        return out

    def names(self) -> list[str]:
        return [n for n, _ in self.named()]

    @classmethod
    def from_named(cls, names: Sequence[str], tensors: Sequence[Any]) -> "SupportState":
        """Inverse of :meth:`named` (names as written by it, in any order)."""
        by = dict(zip(names, tensors))
        missing = [n for n in (EMBED, POS) if n not in by]
        if missing:
            raise KeyError(f"support state without {missing}")
        layers: dict[int, dict[int, Any]] = {}
        for name, t in by.items():
            if not name.startswith(VALUES + "_"):
                continue
            parts = name[len(VALUES) + 1:].split("_level")
            layers.setdefault(int(parts[0]), {})[int(parts[1]) if len(parts) > 1 else -1] = t
        values = []
        for layer in sorted(layers):
            levels = layers[layer]
            values.append(levels[-1] if -1 in levels else tuple(levels[i] for i in sorted(levels)))
        return cls(by[EMBED], by[POS], tuple(values))


def values_name(layer: int, level: int | None = None) -> str:
    """support_values_{layer}, or support_values_{layer}_level{level} for per-level layouts."""
    return f"{VALUES}_{layer}" if level is None else f"{VALUES}_{layer}_level{level}"


def is_state_name(name: str) -> bool:
    """True for the support encoder's outputs / the predictor's state inputs."""
    return name in (EMBED, POS) or name.startswith(VALUES + "_")
