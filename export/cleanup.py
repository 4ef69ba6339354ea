"""Graph cleanup with NVIDIA's onnx-graphsurgeon: shape inference, constant and shape folding, dead-node
removal, topological sort. Repeated until the node count stops falling (folding a shape exposes more).

Shape inference runs with ONNX's data propagation: it carries the values of small shape tensors (Shape ->
Gather -> Concat chains of the traced graph) through the graph, so graphsurgeon folds a whole chain in one
round. Without it each round folds one more link: fmmp-tiny's portable graph needed six rounds, and the
earlier limit of four left foldable Shape/Slice/Concat nodes in the exported graph."""

from __future__ import annotations

import onnx
import onnx_graphsurgeon as gs
import onnxruntime


def fold_round(model: onnx.ModelProto) -> onnx.ModelProto:
    """One round: infer shapes (with data propagation), fold constants and shapes, drop dead nodes, sort."""
    graph = gs.import_onnx(onnx.shape_inference.infer_shapes(model, data_prop=True))
    graph.fold_constants(fold_shapes=True, error_ok=False).cleanup().toposort()
    return gs.export_onnx(graph, do_type_check=True)


def fold_and_clean(model: onnx.ModelProto, max_rounds: int = 8) -> onnx.ModelProto:
    onnxruntime.set_default_logger_severity(3)  # graphsurgeon folds through ORT; its optimizer notes are noise
    count = None
    for _ in range(max_rounds):
        model = fold_round(model)
        if count == len(model.graph.node):
            break
        count = len(model.graph.node)
    return onnx.shape_inference.infer_shapes(model)
