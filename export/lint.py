"""TensorRT lint: what TensorRT's ONNX parser would refuse or get wrong, found before any engine build.

Errors: ops outside TensorRT's published ONNX support that are not one of our plugins or TensorRT's
built-in deformable attention; plugin nodes whose name, version or namespace differ from the plugin
creators' spec; int64 graph I/O or int64 plugin index inputs (TensorRT plugins and our I/O contract are
int32); tensor types TensorRT cannot hold (double, ...); opset below what LayerNormalization needs.
Warnings: GridSample (GridSample-based deformable attention is known to be miscompiled by TensorRT
10.14 to 11.1).

Learned from TensorRT-RTX's real parser (tests/export/test_lint_vs_parser.py feeds both the same broken graphs):
a graph the ONNX checker or strict shape inference rejects (an undefined input, a MatMul of mismatched
sizes) is an error, as the parser refuses it; BF16 / FP8 / INT4 / FP4 graph I/O is an error (NumPy cannot hold
it, so the runtime could not feed or read it); with ``target="tensorrt-rtx"``, ops that need TensorRT's
plugin library (absent from TensorRT-RTX) or that its parser refuses are errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import onnx

from export.trt_ops import NOT_IN_TENSORRT_RTX, NUMPYLESS_IO_TYPES, SUPPORTED, UNSUPPORTED_TYPES
from kernels.spec import GRID_SAMPLE_OP, input_positions, plugin_ops

MIN_OPSET = 17
GRIDSAMPLE_WARNING = ("GridSample-based deformable attention is known to be miscompiled by some TensorRT "
                      "releases (10.14 to 11.1): prefer --attention plugin or trt-builtin for TensorRT")


@dataclass
class LintReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {"ok": self.ok, "errors": self.errors, "warnings": self.warnings}


def _attr(node: onnx.NodeProto, name: str):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return None


def _plugins() -> dict[str, dict]:
    """op_type -> expected version, namespace and index-input positions (ours and TensorRT's MSDA)."""
    return {name: {"version": op["plugin_version"], "namespace": op["plugin_namespace"],
                   "int32_inputs": input_positions(name, "index")} for name, op in plugin_ops().items()}


def _invalid(model: onnx.ModelProto) -> list[str]:
    """What the ONNX checker and strict shape inference refuse (TensorRT's parser refuses the same graphs)."""
    errors = []
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        errors.append(f"not a valid ONNX graph: {str(exc).splitlines()[0]}")
    try:
        onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except onnx.shape_inference.InferenceError as exc:
        errors.append(f"shape inference fails: {' '.join(str(exc).split())[:300]}")
    return errors


def lint_for_tensorrt(model: onnx.ModelProto, target: str = "tensorrt") -> LintReport:
    """``target``: "tensorrt" (10 / 11) or "tensorrt-rtx" (adds the ops TensorRT-RTX lacks)."""
    report = LintReport()
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        report.errors.append(f"opset {opset} < {MIN_OPSET} (LayerNormalization needs 17)")
    report.errors += _invalid(model)
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in
             list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}
    types.update({t.name: t.data_type for t in model.graph.initializer})
    type_name = onnx.TensorProto.DataType.Name

    for io, kind in [(v, "input") for v in model.graph.input] + [(v, "output") for v in model.graph.output]:
        t = type_name(io.type.tensor_type.elem_type)
        if t in ("INT64", *UNSUPPORTED_TYPES, *NUMPYLESS_IO_TYPES):
            report.errors.append(f"graph {kind} '{io.name}' is {t}; TensorRT I/O of this toolkit is int32/float")
    bad_types = sorted({f"{name} ({type_name(t)})" for name, t in types.items() if type_name(t) in UNSUPPORTED_TYPES})
    if bad_types:
        report.errors.append(f"tensors of types TensorRT cannot hold: {bad_types[:5]}")

    plugins = _plugins()
    unsupported: dict[str, int] = {}
    rtx_missing: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type in plugins:
            want = plugins[node.op_type]
            version, namespace = _attr(node, "plugin_version"), _attr(node, "plugin_namespace")
            version = version.decode() if isinstance(version, bytes) else version
            namespace = namespace.decode() if isinstance(namespace, bytes) else (namespace or "")
            if version != want["version"] or namespace != want["namespace"]:
                report.errors.append(f"plugin node {node.name} ({node.op_type}): plugin_version={version!r}, "
                                     f"plugin_namespace={namespace!r}; the creator registers "
                                     f"{want['version']!r} / {want['namespace']!r}")
            for i in want["int32_inputs"]:
                t = types.get(node.input[i])
                if t is not None and type_name(t) != "INT32":
                    report.errors.append(f"plugin node {node.name} ({node.op_type}) input {i} "
                                         f"'{node.input[i]}' is {type_name(t)}, the plugin takes INT32")
        if target == "tensorrt-rtx" and node.op_type in NOT_IN_TENSORRT_RTX:
            key = f"{node.op_type}: {NOT_IN_TENSORRT_RTX[node.op_type]}"
            rtx_missing[key] = rtx_missing.get(key, 0) + 1
        elif node.op_type in plugins:
            pass
        elif node.domain not in ("", "ai.onnx") or node.op_type not in SUPPORTED:
            key = f"{node.domain}::{node.op_type}" if node.domain else node.op_type
            unsupported[key] = unsupported.get(key, 0) + 1
    for op, n in sorted(unsupported.items()):
        report.errors.append(f"{n} x {op}: not in TensorRT's ONNX operator support and not a known plugin")
    for what, n in sorted(rtx_missing.items()):
        report.errors.append(f"{n} x {what}")
    if any(n.op_type == GRID_SAMPLE_OP for n in model.graph.node):
        report.warnings.append(GRIDSAMPLE_WARNING)
    return report
