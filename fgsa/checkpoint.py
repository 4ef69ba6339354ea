"""Checkpoint I/O: the authors' mmcv files and ours, loaded with ``torch.load(weights_only=True)``.

Layouts accepted:
- official (mmcv): ``{'meta': ..., 'state_dict': ..., ['optimizer': ...]}``, keys optionally ``module.``-prefixed;
- ours: ``{'format': 'fgsa-deploy', 'version': 1, 'config': {...}, 'state_dict': ..., 'meta': {...}}``;
- a bare state_dict (``torch.save(model.state_dict(), path)``).
Every failure is a :class:`CheckpointError` (or :class:`ConfigError`) that says what was found and what to do.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fgsa.errors import CheckpointError, ConfigError
from fgsa.model import FMMP, ModelConfig, get_config

FORMAT = "fgsa-deploy"
VERSION = 1
# Keys every FMMP state_dict has, whatever the preset: how we tell an FMMP checkpoint from a foreign one.
SIGNATURE_KEYS = ("backbone.conv1.weight", "predictor.pos_embed_proj.layers.0.weight", "backbone_projs.0.0.weight")
# mmcv writes numpy scalars into 'meta' (e.g. best scores); allowing exactly these keeps weights_only safe.
# numpy 1 pickles name the scalar reconstructor numpy.core.multiarray.scalar, numpy 2 numpy._core.multiarray.scalar.
_SCALAR = np._core.multiarray.scalar
_NUMPY_SAFE = [np.dtype, _SCALAR, (_SCALAR, "numpy.core.multiarray.scalar")] + [
    type(np.dtype(t)) for t in ("f8", "f4", "i8", "i4", "b1")
]


@dataclass
class Checkpoint:
    state_dict: dict[str, torch.Tensor]
    config: ModelConfig
    layout: str  # "fgsa-deploy", "official" or "state_dict"
    meta: dict = field(default_factory=dict)
    sha256: str = ""


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def refused_pickle_message(path: Path, exc: Exception) -> str:
    """The error for a checkpoint that torch.load(weights_only=True) refused. torch's own message advises
    loading with weights_only=False; that would run the code the file holds, so only the refused name is kept."""
    refused = re.search(r"GLOBAL (\S+)", str(exc))
    what = f" (it pickles {refused.group(1)})" if refused else ""
    return (f"{path}: holds Python code or objects besides tensors and plain containers{what}; unpickling it "
            "would run code from the file, so it will not be loaded. If you trust its author, ask for the weights "
            "alone: torch.save({'state_dict': model.state_dict()}, path) in the environment that wrote it.")


def _torch_load(path: Path):
    with open(path, "rb") as f:
        head = f.read(4)
    # torch.save writes a zip archive; legacy torch files and plain pickles start with the pickle PROTO opcode
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (corrupt, or another file type: "
                              f"starts with {head!r})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as first:
        try:  # official mmcv metadata may hold numpy scalars
            with torch.serialization.safe_globals(_NUMPY_SAFE):
                return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise CheckpointError(refused_pickle_message(path, first)) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (corrupt, truncated, or another file type): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        ) from None


def _split_layout(obj, path: Path) -> tuple[dict, dict | None, str, dict]:
    """-> (state_dict, embedded config or None, layout, meta)."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict (state_dict or mmcv checkpoint), got {type(obj).__name__}")
    if obj.get("format") == FORMAT:
        if obj.get("version") != VERSION:
            raise CheckpointError(f"{path}: fgsa-deploy checkpoint version {obj.get('version')}, "
                                  f"this toolkit reads version {VERSION}; upgrade fgsa-deploy")
        return obj.get("state_dict"), obj.get("config"), FORMAT, dict(obj.get("meta") or {})
    if "state_dict" in obj:
        return obj["state_dict"], None, "official", dict(obj.get("meta") or {})
    return obj, None, "state_dict", {}


def _clean_state_dict(sd, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(sd, dict) or not sd:
        raise CheckpointError(f"{path}: 'state_dict' must be a non-empty dict of tensors")
    non_tensor = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if non_tensor:
        raise CheckpointError(f"{path}: state_dict entries that are not tensors: {non_tensor[:5]}")
    if all(k.startswith("module.") for k in sd):  # saved from DataParallel / DistributedDataParallel
        sd = {k[len("module."):]: v for k, v in sd.items()}
    if not any(k in sd for k in SIGNATURE_KEYS):
        raise CheckpointError(
            f"{path}: not an FMMP checkpoint (foreign model): none of {list(SIGNATURE_KEYS)} present; "
            f"it has keys like {list(sd)[:5]}"
        )
    return sd


def check_state_dict(sd: dict[str, torch.Tensor], cfg: ModelConfig, source: str = "checkpoint") -> None:
    """Raise CheckpointError listing missing / unexpected keys and shape mismatches against ``cfg``."""
    expected = FMMP(cfg).state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    shapes = [f"{k}: {tuple(sd[k].shape)} vs {tuple(expected[k].shape)}"
              for k in expected if k in sd and sd[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {shapes[:3]})")
        raise CheckpointError(f"{source} does not fit model config '{cfg.name}': " + "; ".join(parts)
                              + ". Pass the config the checkpoint was trained with (--config).")


def read_checkpoint(path: str | Path, config: str | dict | ModelConfig | None = None) -> Checkpoint:
    """Read and check a checkpoint. ``config``: required to match an embedded config; defaults to it, or to
    ``fmmp-r50`` for official files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    sd, embedded, layout, meta = _split_layout(_torch_load(path), path)
    sd = _clean_state_dict(sd, path)
    if embedded is not None:
        cfg = get_config(embedded)
        if config is not None and get_config(config) != cfg:
            raise ConfigError(f"{path}: the checkpoint embeds config '{cfg.name}' which differs from the requested "
                              f"'{get_config(config).name}'; drop --config or pass a matching one")
    else:
        cfg = get_config(config if config is not None else "fmmp-r50")
    check_state_dict(sd, cfg, str(path))
    return Checkpoint(sd, cfg, layout, meta, file_sha256(path))


def load_model(path: str | Path, config=None, dtype: torch.dtype = torch.float32) -> FMMP:
    """An eval-mode FMMP with the checkpoint's weights, loaded strictly."""
    ckpt = read_checkpoint(path, config)
    model = FMMP(ckpt.config)
    model.load_state_dict(ckpt.state_dict, strict=True)
    model.checkpoint_sha256 = ckpt.sha256
    return model.to(dtype).eval()


def save_checkpoint(path: str | Path, model: FMMP, meta: dict | None = None) -> Path:
    """Write our layout: weights plus the config, so the file is self-describing. Atomic (tmp + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, "config": model.cfg.to_dict(),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "meta": dict(meta or {})}
    buf = io.BytesIO()
    torch.save(payload, buf)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)
    return path
