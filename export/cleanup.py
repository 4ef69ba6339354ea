"""Graph cleanup with NVIDIA's onnx-graphsurgeon: shape inference, constant and shape folding, dead-node
removal, topological sort. Repeated until the node count stops falling (folding a shape exposes more)."""

from __future__ import annotations

import onnx
import onnx_graphsurgeon as gs
import onnxruntime


def fold_and_clean(model: onnx.ModelProto, max_rounds: int = 4) -> onnx.ModelProto:
    onnxruntime.set_default_logger_severity(3)  # graphsurgeon folds through ORT; its optimizer notes are noise
    count = None
    for _ in range(max_rounds):
        model = onnx.shape_inference.infer_shapes(model)
        graph = gs.import_onnx(model)
        graph.fold_constants(fold_shapes=True, error_ok=False).cleanup().toposort()
        model = gs.export_onnx(graph, do_type_check=True)
        if count == len(model.graph.node):
            break
        count = len(model.graph.node)
    return onnx.shape_inference.infer_shapes(model)
