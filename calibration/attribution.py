"""What a drifting tensor belongs to, and what to change: the model part, the ``--keep-fp32`` part of an FP16
graph that would keep it FP32, the INT8 layers to pass to ``python -m calibration --exclude``.

Model parts come from the exporter's scope names (``calibration.graph.layer_of``): backbone stem / stages,
the level projections (``backbone_projs``), support / decoder layers and their sub-blocks (self-attention,
deformable attention and its side heads, FFN), the point heads, the positional encoding.

The ``--keep-fp32`` part (export/precision.py's policy) is read from the graph: the nearest tensor at or above
the failing one that is FLOAT16 in the graph under test but FLOAT in the reference graph is where an island
is missing; which island is told by what that tensor feeds before the next GEMM (GridSample: ``attention``,
LayerNormalization: ``layernorm``, a self-attention Softmax: ``softmax``) or by being on a keypoint-coordinate
path (``coords``). When the two graphs' metadata say which parts the graph under test dropped, the answer is
one of those.
"""

from __future__ import annotations

import re
from collections import deque

import onnx

from calibration.graph import GEMMS, coordinate_analysis, layer_of
from calibration.layerwise import canonical
from calibration.qdq import quantized_layers
from export.precision_rules import tensor_types

_INDEXED = re.compile(r"^(\w+)\.(\d+)$")
FLOAT, FLOAT16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
_SUB = {"self_attn": "self-attention", "deform_attn": "deformable attention", "linear1": "FFN", "linear2": "FFN",
        "self_linear1": "self FFN", "self_linear2": "self FFN", "norm1": "LayerNorm", "norm2": "LayerNorm",
        "norm3": "LayerNorm", "projector": "side-head projector"}


def model_part(node_name: str) -> str:
    """``/model/backbone/layer2/layer2.0/conv1/Conv`` -> ``backbone stage 2``; ``/inner/model/predictor/
    decoder_layers.1/deform_attn/attn_layers.3/sampling_offsets/MatMul`` -> ``decoder layer 1 · deformable
    attention · side head 3``."""
    parts = layer_of(canonical(node_name)).split("/")
    head = parts[0]
    if head == "backbone":
        stage = parts[1] if len(parts) > 1 else ""
        m = re.match(r"layer(\d+)$", stage)
        return f"backbone stage {m.group(1)}" if m else "backbone stem"
    m = _INDEXED.match(head)
    if m and m.group(1) == "backbone_projs":
        return f"projection (level {m.group(2)})"
    if head == "predictor" and len(parts) > 1:
        m = _INDEXED.match(parts[1])
        if m and m.group(1) in ("support_layers", "decoder_layers"):
            text = f"{m.group(1).split('_')[0]} layer {m.group(2)}"
            if len(parts) > 2:
                text += " · " + _SUB.get(parts[2], parts[2])
            side = next((_INDEXED.match(p) for p in parts[3:] if p.startswith("attn_layers.")), None)
            if side:
                text += f" · side head {side.group(2)}"
            return text
        if m and m.group(1) == "kpt_branch":
            return f"point head {m.group(2)}"
        if parts[1] == "pos_embed_proj":
            return "positional encoding"
    if head == "predictor":
        return "predictor (support features, value maps, reference points)"
    return "model (feature levels)"


def _graph_maps(model: onnx.ModelProto):
    producer = {o: n for n in model.graph.node for o in n.output if o}
    consumers: dict[str, list] = {}
    for n in model.graph.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    return producer, consumers


def _island_of(tensor: str, model: onnx.ModelProto, consumers: dict, coords: set[str], depth: int = 8) -> str:
    """Which policy part keeps ``tensor`` (a name of ``model``) FP32: see the module docstring."""
    seen, queue = {tensor}, deque([(tensor, 0)])
    found = []
    while queue:
        t, d = queue.popleft()
        for node in consumers.get(t, []):
            if node.op_type == "GridSample":
                found.append("attention")
            elif node.op_type == "LayerNormalization":
                found.append("layernorm")
            elif node.op_type == "Softmax":
                found.append("coords" if "deform_attn" in node.name else "softmax")
            if node.op_type in GEMMS or node.op_type in ("GridSample", "LayerNormalization", "Softmax") or d >= depth:
                continue
            for o in node.output:
                if o not in seen:
                    seen.add(o)
                    queue.append((o, d + 1))
        if found:
            return found[0]
    return "coords" if canonical(tensor) in coords or tensor in coords else "attention"


def keep_fp32_part(test: onnx.ModelProto, reference: onnx.ModelProto, tensor: str,
                   dropped: list[str] | None = None) -> tuple[str | None, str | None]:
    """-> (policy part, the tensor where the island is missing) for the failing ``tensor`` (a name of ``test``),
    or (None, None) when no tensor above it is FLOAT16 here but FLOAT in ``reference``."""
    t_types, r_types = tensor_types(test), tensor_types(reference)
    r_by_canon = {canonical(k): v for k, v in r_types.items()}
    producer, consumers = _graph_maps(test)
    coords, _ = coordinate_analysis(test)
    seen, queue = {tensor}, deque([tensor])
    while queue:  # breadth first upwards: the nearest tensor that lost its island
        t = queue.popleft()
        if t_types.get(t) == FLOAT16 and r_by_canon.get(canonical(t)) == FLOAT:
            part = _island_of(t, test, consumers, coords)
            if dropped and part not in dropped:
                part = dropped[0] if len(dropped) == 1 else part
            return part, t
        node = producer.get(t)
        if node is None:
            continue
        for i in node.input:
            if i and i not in seen:
                seen.add(i)
                queue.append(i)
    return None, None


def exclude_nodes(int8: onnx.ModelProto, tensor: str, limit: int = 8) -> list[str]:
    """The INT8 layers nearest above ``tensor`` (breadth first, not looking past a quantized layer): the node
    names to give ``python -m calibration --exclude`` (or the report's fallback) first."""
    quantized = set(quantized_layers(int8))
    producer, _ = _graph_maps(int8)
    seen, queue, found = {tensor}, deque([tensor]), []
    while queue and len(found) < limit:
        node = producer.get(queue.popleft())
        if node is None:
            continue
        if node.name in quantized:
            if node.name not in found:
                found.append(node.name)
            continue
        for i in node.input:
            if i and i not in seen:
                seen.add(i)
                queue.append(i)
    return found
