"""Which nodes of an fp32 graph INT8 may touch: TensorRT-fusable GEMMs off the keypoint-coordinate paths.

TensorRT runs a convolution or GEMM in INT8 when a DequantizeLinear feeds its data input and one feeds its
weights. We quantize exactly those: Conv, and MatMul / Gemm with a constant weight (backbone, projections,
attention and FFN linears). Never a layer whose input or output is a keypoint coordinate. Which tensors are coordinates,
and which GEMMs produce or consume them, is :mod:`export.coordinates` (the plan build's Q/DQ rule check
reads the same analysis).

Softmax, LayerNormalization and the attention nodes are never quantized (they are not GEMMs), and Q/DQ
pairs are dedicated to the quantized GEMM's inputs, so their inputs stay float too.
"""

from __future__ import annotations

import hashlib
import re

import onnx

from export.coordinates import COORD_SOURCES, GEMMS, POINT_OUTPUTS, coordinate_analysis  # noqa: F401 (re-exported)
from export.coordinates import constant_names

FLOATS = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)


def graph_sha256(model: onnx.ModelProto) -> str:
    """Hash of the graph alone (nodes, weights, I/O), not of the metadata or producer fields."""
    return hashlib.sha256(model.graph.SerializeToString(deterministic=True)).hexdigest()


def quantizable_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the Conv / MatMul / Gemm nodes INT8 may run: constant weights, off the coordinate paths."""
    constants = constant_names(model)
    _, coordinate_gemms = coordinate_analysis(model)
    names = []
    for n in model.graph.node:
        if n.op_type not in GEMMS or n.name in coordinate_gemms or not n.name:
            continue
        if n.op_type == "Conv" or (len(n.input) > 1 and n.input[1] in constants):
            names.append(n.name)
    return names


_INDEXED = re.compile(r"^(.*)_\d+$")


def layer_of(node_name: str) -> str:
    """The model layer a node belongs to, from the exporter's scope name:
    ``/model/predictor/decoder_layers.0/linear1/MatMul`` -> ``predictor/decoder_layers.0/linear1``."""
    parts = [p for p in node_name.split("/") if p]
    while parts and parts[0] in ("model", "inner"):  # the graph wrappers' scopes (FullGraph, HalfIO)
        parts = parts[1:]
    return "/".join(parts[:-1]) if len(parts) > 1 else (parts[0] if parts else node_name)


def block_of(node_name: str) -> str:
    """A coarser group for sensitivity: a backbone stage block or one predictor layer's sub-block.

    ``backbone/layer2/layer2.0/conv1`` -> ``backbone/layer2.0``; ``predictor/support_layers.1/linear1`` ->
    ``predictor/support_layers.1/ffn``; self-attention and deformable-attention projections likewise; the
    value projections (run from the predictor's own forward) -> ``predictor/value_proj``."""
    layer = layer_of(node_name)
    parts = layer.split("/")
    if parts == ["predictor"]:
        return "predictor/value_proj"
    if parts[0] == "backbone":
        return "backbone/" + (parts[2] if len(parts) > 2 else parts[1] if len(parts) > 1 else "stem")
    if parts[0] == "predictor" and len(parts) >= 2 and parts[1].split(".")[0] in ("support_layers", "decoder_layers"):
        sub = parts[2] if len(parts) > 2 else "self_attn"
        kind = ("ffn" if sub in ("linear1", "linear2") else "self_ffn" if sub.startswith("self_linear")
                else "deform_attn" if sub == "deform_attn" else "self_attn")
        return f"predictor/{parts[1]}/{kind}"
    return "/".join(parts[:2])
