"""Q/DQ insertion the way TensorRT fuses it, by onnxruntime.quantization's QDQQuantizer.

TensorRT's explicit-quantization rules (strongly typed builds take INT8 from the graph):

- int8, symmetric: every zero point is 0 (``ActivationSymmetric`` / ``WeightSymmetric``);
- weights per channel (``per_channel=True``): Conv weights along axis 0 (output channels), MatMul weights
  along their last axis (the output features; ``QDQOpTypePerChannelSupportToAxis``); weights stay float
  behind a QuantizeLinear -> DequantizeLinear pair (``AddQDQPairToWeight``), which TensorRT folds into
  INT8 weights at build time, and which lets :func:`float_layers` return a layer to float exactly;
- weights of batched MatMuls (3-D, e.g. the per-side-head output projections) per tensor: a per-channel
  axis there would be the batch or the reduction axis;
- activations per tensor, a Q/DQ pair *dedicated* to each quantized layer's input (``DedicatedQDQPair``),
  so a tensor shared with a LayerNorm, a softmax, a residual Add or an attention node stays float for them
  (onnxruntime rewires every consumer when a tensor has a single quantized one;
  :func:`_float_for_other_consumers` undoes that);
- no Q/DQ on layer outputs (``OpTypesToExcludeOutputQuantization``): TensorRT fuses the next layer's input
  quantization into the producer, and outputs that are coordinates or attention inputs stay float;
- biases stay float (``QuantizeBias=False``): TensorRT folds them into the fused kernel's epilogue.

Which layers: :func:`calibration.graph.quantizable_nodes` minus any ``exclude`` (the accuracy fallback).
"""

from __future__ import annotations

import copy
import heapq

import onnx

from calibration.graph import GEMMS, quantizable_nodes
from export.precision_rules import QDQ_OPS, qdq_violations  # noqa: F401 (the rule check, re-exported)

TRT_EXTRA_OPTIONS = {
    "ActivationSymmetric": True,
    "WeightSymmetric": True,
    "DedicatedQDQPair": True,
    "QDQOpTypePerChannelSupportToAxis": {"MatMul": -1, "Gemm": 0},
    "OpTypesToExcludeOutputQuantization": list(GEMMS),
    "QuantizeBias": False,
    "AddQDQPairToWeight": True,
    "MatMulConstBOnly": True,
    "ForceQuantizeNoInputCheck": False,
}


def quantize_qdq(model: onnx.ModelProto, ranges, exclude: set[str] | frozenset[str] = frozenset(),
                 nodes: list[str] | None = None) -> onnx.ModelProto:
    """An INT8 Q/DQ copy of the fp32 ``model`` from calibrated ``ranges`` (onnxruntime ``TensorsData``).

    ``nodes``: the layers to quantize (default :func:`quantizable_nodes`); ``exclude``: layers to keep float.
    The metadata and producer of ``model`` are kept.
    """
    from onnxruntime.quantization import QuantType  # onnxruntime's quantizer: only where a graph is quantized
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer

    nodes = [n for n in (nodes if nodes is not None else quantizable_nodes(model)) if n not in exclude]
    src = onnx.shape_inference.infer_shapes(copy.deepcopy(model))
    if not nodes:
        return src
    options = dict(TRT_EXTRA_OPTIONS)
    options["TensorQuantOverrides"] = {w: [{"symmetric": True}] for w in _batched_weights(src, set(nodes))}
    quantizer = QDQQuantizer(src, True, False, QuantType.QInt8, QuantType.QInt8, ranges, nodes, list(exclude),
                             list(GEMMS), options)
    out = quantizer.quantize_model()
    _float_for_other_consumers(out, set(nodes))
    _toposort(out)  # the quantizer appends its nodes at the end; ONNX (and TensorRT's parser) want order
    out.producer_name, out.producer_version = model.producer_name, model.producer_version
    del out.metadata_props[:]
    out.metadata_props.extend(copy.deepcopy(model.metadata_props))
    return out


def _batched_weights(model: onnx.ModelProto, nodes: set[str]) -> list[str]:
    """Constant MatMul weights of rank > 2 among ``nodes`` (quantized per tensor, see the module docstring)."""
    inits = {t.name: t for t in model.graph.initializer}
    return [n.input[1] for n in model.graph.node
            if n.name in nodes and n.op_type == "MatMul" and n.input[1] in inits and len(inits[n.input[1]].dims) > 2]


def _float_for_other_consumers(model: onnx.ModelProto, quantized: set[str]) -> None:
    """Give every consumer of a dequantized activation that is not a quantized layer the float tensor back,
    in place: Q/DQ then sits only in front of the layers TensorRT runs in INT8."""
    q_input = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    dq_float = {n.output[0]: q_input[n.input[0]] for n in model.graph.node
                if n.op_type == "DequantizeLinear" and n.input[0] in q_input}
    for node in model.graph.node:
        if node.name in quantized or node.op_type in QDQ_OPS:
            continue
        for i, t in enumerate(node.input):
            if t in dq_float:
                node.input[i] = dq_float[t]


def float_layers(model: onnx.ModelProto, layers: set[str] | frozenset[str]) -> onnx.ModelProto:
    """A copy of Q/DQ ``model`` in which ``layers`` (GEMM node names) read their float inputs and weights again,
    as if they had been excluded from quantization (their Q/DQ nodes are left dead; cheap, no requantizing)."""
    model = copy.deepcopy(model)
    q_input = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    dq_float = {n.output[0]: q_input[n.input[0]] for n in model.graph.node
                if n.op_type == "DequantizeLinear" and n.input[0] in q_input}
    for node in model.graph.node:
        if node.name in layers:
            for i, t in enumerate(node.input):
                if t in dq_float:
                    node.input[i] = dq_float[t]
    nodes = list(model.graph.node)
    live = _live_nodes(nodes, [o.name for o in model.graph.output])
    del model.graph.node[:]
    model.graph.node.extend(n for i, n in enumerate(nodes) if i in live)
    return model


def _live_nodes(nodes: list, outputs: list[str]) -> set[int]:
    """Indices of the nodes the outputs depend on."""
    producer = {o: i for i, n in enumerate(nodes) for o in n.output}
    live: set[int] = set()
    stack = list(outputs)
    while stack:
        i = producer.get(stack.pop())
        if i is not None and i not in live:
            live.add(i)
            stack += list(nodes[i].input)
    return live


def _toposort(model: onnx.ModelProto) -> None:
    """Order nodes so that every input is produced before it is read (stable Kahn sort), in place."""
    nodes = list(model.graph.node)
    available = {i.name for i in model.graph.input} | {t.name for t in model.graph.initializer} | {""}
    waiting = [sum(1 for t in set(n.input) if t not in available) for n in nodes]
    readers: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for t in set(n.input):
            if t not in available:
                readers.setdefault(t, []).append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)  # lowest original position first: keeps the order wherever it is valid
        order.append(i)
        for t in nodes[i].output:
            for r in readers.pop(t, []):
                waiting[r] -= 1
                if waiting[r] == 0:
                    heapq.heappush(ready, r)
    if len(order) != len(nodes):
        raise ValueError(f"graph has a cycle or dangling inputs: sorted {len(order)} of {len(nodes)} nodes")
    del model.graph.node[:]
    model.graph.node.extend(nodes[i] for i in order)


def is_qdq_graph(model: onnx.ModelProto) -> bool:
    return any(n.op_type in QDQ_OPS for n in model.graph.node)


def quantized_layers(model: onnx.ModelProto) -> list[str]:
    """Names of the GEMM nodes that read a DequantizeLinear output (the layers TensorRT runs in INT8)."""
    dq_out = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    return [n.name for n in model.graph.node if n.op_type in GEMMS and n.input and n.input[0] in dq_out]
