"""What travels with every exported graph: ``metadata_props`` in the ONNX file and ``export.json`` beside it.

The ONNX-embedded part is deterministic (no paths or times), so the same checkpoint gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import onnx

import fgsa

if TYPE_CHECKING:  # fgsa.model imports torch; the plan build reads metadata on hosts without it
    from fgsa.model import ModelConfig

METADATA_KEY = "fgsa.export"


def graph_metadata(cfg: ModelConfig, graph: str, inputs, outputs, attention: str, opset: int,
                   checkpoint_sha256: str, shots: int, batch: dict) -> dict:
    return {
        "toolkit": "fgsa-deploy", "toolkit_version": fgsa.__version__, "graph": graph,
        "attention": attention, "opset": opset, "checkpoint_sha256": checkpoint_sha256,
        "config": cfg.to_dict(), "input_size": cfg.input_size, "keypoints": cfg.max_keypoints,
        "shots": shots, "batch": batch,
        "normalization": {"mean": list(cfg.mean), "std": list(cfg.std), "scale": 1 / 255,
                          "layout": "RGB, CHW, (pixel/255 - mean)/std"},
        "points": "(x, y) in [0, 1] of the query crop; crop pixels = points * input_size",
        "inputs": [s.to_dict() for s in inputs], "outputs": [s.to_dict() for s in outputs],
    }


def attach(model: onnx.ModelProto, meta: dict) -> None:
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {METADATA_KEY: json.dumps(meta, sort_keys=True)})
    model.producer_name, model.producer_version = "fgsa-deploy", fgsa.__version__


def read(model: onnx.ModelProto) -> dict:
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    return {}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
