"""Which tensors of an fp32 graph are keypoint coordinates, and which GEMMs produce or consume them: the graph
fact that keeps INT8 off the coordinate paths (calibration.graph) and that the Q/DQ rule check of a built
graph (export.precision_rules) reads. Torch-free (onnx only).

- *coordinate sinks*: the coordinate inputs of the deformable-attention nodes (the ``coord`` inputs of every
  op in ``kernels/plugin/fgsa_plugins.json``: our plugins, TensorRT's MSDA locations / weights, GridSample
  grids), the inputs and outputs of Sigmoid (the predicted points), the inputs of Softmax (attention logits)
  and the ``points`` outputs. Walking back from them through any node up to the first GEMM finds the GEMMs
  that *produce* coordinates (sampling offsets, attention logits, the point heads' last linear);
- *coordinate sources*: the ``support_points`` input and the Sigmoid outputs. A tensor computed only from
  coordinates and constants is a coordinate; a GEMM that *consumes* one (the positional-encoding MLP's
  first linear) stays float.
"""

from __future__ import annotations

from collections import defaultdict

import onnx

from kernels.spec import input_positions, node_ops

GEMMS = ("Conv", "MatMul", "Gemm")
COORD_SOURCES = ("support_points",)
POINT_OUTPUTS = ("points", "points_per_layer")


def coord_positions() -> dict[str, list[int]]:
    """op_type -> positions of its coordinate inputs, for every op an attention form writes."""
    return {op: input_positions(op, "coord") for op in node_ops()}


def constant_names(model: onnx.ModelProto) -> set[str]:
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
    constants = constant_names(model)
    positions = coord_positions()
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
