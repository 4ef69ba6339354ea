"""The machine-readable plugin spec (kernels/plugin/fgsa_plugins.json), for the exporter and the tests.

The JSON file is the one place that names our TensorRT plugins, their ONNX domain, version, namespace,
inputs, attributes and outputs; kernels/plugin/plugin_names.h states the same names for the C++ side and
a test checks that the two agree.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from fgsa.errors import InputError

PLUGIN_SPEC_PATH = Path(__file__).resolve().parent / "plugin" / "fgsa_plugins.json"

MSDA_OP = "FGSA_MSDA"
ATTENTION_OP = "FGSA_Attention"


@lru_cache(maxsize=1)
def load_plugin_spec() -> dict[str, Any]:
    """The parsed spec: ``onnx_domain``, ``plugin_namespace``, ``plugin_version`` and ``ops[name]``."""
    return json.loads(PLUGIN_SPEC_PATH.read_text())


def onnx_node_attributes(op: str, spatial_shapes: list[tuple[int, int]]) -> dict[str, Any]:
    """Attributes of the ONNX node for plugin ``op``: plugin_version, plugin_namespace and spatial_shapes.

    ``spatial_shapes`` is one (H, W) per level; the attribute stores them flattened.
    """
    spec = load_plugin_spec()
    if op not in spec["ops"]:
        raise InputError("op", f"one of {sorted(spec['ops'])}", op)
    return {
        "plugin_version": spec["plugin_version"],
        "plugin_namespace": spec["plugin_namespace"],
        "spatial_shapes": [int(v) for hw in spatial_shapes for v in hw],
    }
