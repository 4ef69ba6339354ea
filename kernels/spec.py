"""The machine-readable op specification (kernels/plugin/fgsa_plugins.json), for the exporter, the graph
checks, the calibration and the tests. Torch-free.

The JSON file is the one place that names our TensorRT plugins, their ONNX domain, version, namespace,
inputs, attributes and outputs; kernels/plugin/plugin_names.h states the same names for the C++ side and
a test checks that the two agree. Its ``other_ops`` describe the ops of others that the other attention
forms write (TensorRT's MSDA plugin, ONNX GridSample) the same way: name, domain, version, input roles
(``value``, ``coord``: sampling coordinates and weights, ``index``: int32 indices).
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
TRT_MSDA_OP = "MultiscaleDeformableAttnPlugin_TRT"  # TensorRT's own MSDA plugin (the trt-builtin form)
GRID_SAMPLE_OP = "GridSample"                       # the portable form's sampling op


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


@lru_cache(maxsize=1)
def node_ops() -> dict[str, dict[str, Any]]:
    """Every op an attention form writes -> ``domain``, ``plugin_version`` and ``plugin_namespace`` (None for a
    standard ONNX op) and ``inputs`` (each with its ``role``): ours, TensorRT's MSDA plugin, GridSample."""
    spec = load_plugin_spec()
    ops = {name: {"domain": spec["onnx_domain"], "plugin_version": spec["plugin_version"],
                  "plugin_namespace": spec["plugin_namespace"], "inputs": op["inputs"]}
           for name, op in spec["ops"].items()}
    ops.update({name: op for name, op in spec["other_ops"].items() if isinstance(op, dict)})
    return ops


def plugin_ops() -> dict[str, dict[str, Any]]:
    """The plugin ops among :func:`node_ops` (ours and TensorRT's MSDA): the nodes TensorRT resolves through a
    plugin creator."""
    return {name: op for name, op in node_ops().items() if op["plugin_version"] is not None}


def input_positions(op: str, role: str) -> list[int]:
    """Positions of ``op``'s inputs of ``role`` ("value", "coord" or "index")."""
    return [i for i, x in enumerate(node_ops()[op]["inputs"]) if x["role"] == role]


TRT_DOMAIN = node_ops()[TRT_MSDA_OP]["domain"]
TRT_MSDA_VERSION = node_ops()[TRT_MSDA_OP]["plugin_version"]
