"""Which custom ops an ONNX graph holds, and whether they are exactly ours.

ONNX Runtime runs our plugin-form nodes only through extra op libraries (the onnxruntime-extensions Python
ops of :mod:`export.ort_ops`, used by the runtime's fallback). Such a library may bring ops of its own
(onnxruntime-extensions registers image decoders, tokenizers ... together with the Python ops, through one
entry point), so a graph falls back to it only when every node outside ONNX Runtime's own domains is one of
our ops: then no node can reach anything else the library registers. Subgraphs (If / Loop / Scan bodies)
and model-local functions count too. No torch or onnx import here (the runtime uses it): works on any
``ModelProto``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterator

from kernels.spec import TRT_DOMAIN, TRT_MSDA_OP, plugin_ops  # noqa: F401 (TRT_*: re-exported)

# Domains whose ops ONNX Runtime implements itself: a node there never resolves to an extension library's op.
STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})


@lru_cache(maxsize=1)
def our_ops() -> frozenset[tuple[str, str]]:
    """(domain, op_type) of every op the reference fallback runs: the plugin ops of kernels/plugin/fgsa_plugins.json
    (ours and TensorRT's MSDA, which the reference ops run too)."""
    return frozenset((op["domain"], name) for name, op in plugin_ops().items())


def _nodes(graph) -> Iterator:
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _nodes(attr.g)
            for sub in attr.graphs:
                yield from _nodes(sub)


def all_nodes(model) -> Iterator:
    """Every node of ``model``: its graph, nested subgraphs and model-local functions."""
    yield from _nodes(model.graph)
    for function in model.functions:  # a FunctionProto holds its nodes as a graph does
        yield from _nodes(function)


def custom_ops(model) -> tuple[list[str], list[str]]:
    """(ours, foreign): sorted ``domain::op_type`` names of the nodes outside ONNX Runtime's own domains.
    A call of a model-local function in another domain counts as foreign: which implementation ONNX Runtime
    would pick for it (the function or a registered op of the same name) is not for the graph to decide."""
    ours, foreign = set(), set()
    known = our_ops()
    for node in all_nodes(model):
        if node.domain in STANDARD_DOMAINS:
            continue
        (ours if (node.domain, node.op_type) in known else foreign).add(f"{node.domain}::{node.op_type}")
    return sorted(ours), sorted(foreign)
