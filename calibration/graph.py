"""Which nodes of an fp32 graph INT8 may touch: TensorRT-fusable GEMMs off the keypoint-coordinate paths.

TensorRT runs a convolution or GEMM in INT8 when a DequantizeLinear feeds its data input and one feeds its
weights. We quantize exactly those: Conv, and MatMul / Gemm with a constant weight (backbone, projections,
attention and FFN linears). Never a layer whose input or output is a keypoint coordinate:

- *coordinate sinks*: the coordinate inputs of the deformable-attention nodes (our plugins' ``coord`` role in
  ``kernels/plugin/fgsa_plugins.json``, TensorRT's MSDA locations / weights, GridSample grids), the inputs
  and outputs of Sigmoid (the predicted points), the inputs of Softmax (attention logits) and the ``points``
  outputs. Walking back from them through
  any node up to the first GEMM finds the GEMMs that *produce* coordinates (sampling offsets, attention
  logits, the point heads' last linear);
- *coordinate sources*: the ``support_points`` input and the Sigmoid outputs. A tensor computed only from
  coordinates and constants is a coordinate; a GEMM that *consumes* one (the positional-encoding MLP's
  first linear) stays float.

Softmax, LayerNormalization and the attention nodes are never quantized (they are not GEMMs), and Q/DQ
pairs are dedicated to the quantized GEMM's inputs, so their inputs stay float too.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict

import onnx

GEMMS = ("Conv", "MatMul", "Gemm")
COORD_SOURCES = ("support_points",)
POINT_OUTPUTS = ("points", "points_per_layer")
FLOATS = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)


def graph_sha256(model: onnx.ModelProto) -> str:
    """Hash of the graph alone (nodes, weights, I/O), not of the metadata or producer fields."""
    return hashlib.sha256(model.graph.SerializeToString(deterministic=True)).hexdigest()


def _coord_positions() -> dict[str, list[int]]:
    from export.forms import TRT_MSDA_OP
    from kernels.spec import load_plugin_spec

    spec = load_plugin_spec()
    coords = {name: [i for i, x in enumerate(op["inputs"]) if x["role"] == "coord"] for name, op in spec["ops"].items()}
    coords[TRT_MSDA_OP] = [3, 4]
    coords["GridSample"] = [1]
    return coords


def _constants(model: onnx.ModelProto) -> set[str]:
    names = {t.name for t in model.graph.initializer}
    names |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    return names


def coordinate_analysis(model: onnx.ModelProto) -> tuple[set[str], set[str]]:
    """-> (coordinate tensor names, names of GEMM nodes that produce or consume coordinates)."""
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = defaultdict(list)
    for n in graph.node:
        for t in n.input:
            consumers[t].append(n)
    constants = _constants(model)
    positions = _coord_positions()
    attention_ops = set(positions)
    coords: set[str] = set()
    gemms: set[str] = set()

    # backward from the sinks, through anything up to the first GEMM
    stack = [o.name for o in graph.output if o.name in POINT_OUTPUTS]
    for n in graph.node:
        if n.op_type in positions:
            stack += [n.input[i] for i in positions[n.op_type] if i < len(n.input)]
        if n.op_type == "Sigmoid":
            stack += [n.input[0], n.output[0]]
        if n.op_type == "Softmax":  # attention logits (and self-attention scores, never a constant-weight GEMM)
            stack.append(n.input[0])
    while stack:
        t = stack.pop()
        if t in coords or t in constants or not t:
            continue
        coords.add(t)
        node = producer.get(t)
        if node is None:
            continue
        if node.op_type in GEMMS:
            gemms.add(node.name)
        elif node.op_type not in attention_ops:
            stack += list(node.input)

    # forward from the sources: outputs of nodes whose non-constant inputs are all coordinates
    stack = [i.name for i in graph.input if i.name in COORD_SOURCES]
    stack += [n.output[0] for n in graph.node if n.op_type == "Sigmoid"]
    seen: set[str] = set()
    while stack:
        t = stack.pop()
        if t in seen:
            continue
        seen.add(t)
        coords.add(t)
        for node in consumers.get(t, []):
            if node.op_type in GEMMS:
                gemms.add(node.name)
                continue
            if node.op_type in attention_ops:
                continue
            dynamic = [i for i in node.input if i and i not in constants]
            if all(i in coords or i in seen for i in dynamic):
                stack += list(node.output)
    return coords, gemms


def quantizable_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the Conv / MatMul / Gemm nodes INT8 may run: constant weights, off the coordinate paths."""
    constants = _constants(model)
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
