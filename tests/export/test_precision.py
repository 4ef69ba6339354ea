"""FP16 graphs: strongly typed by construction, FP32 islands where the policy says, fp32 I/O, parity vs fp32."""

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from export.forms import _PluginFgsa, attention_form, portable_msda
from export.ort_ops import cpu_session
from export.precision import (FP16_TOLERANCE_FACTOR, PrecisionPolicy, fp16_tolerance, float16_share,
                              island_violations, tensor_types)
from fgsa.checkpoint import load_model
from fgsa.model.examples import random_inputs
from fgsa.model.precision import fp32_islands
from fgsa.ops import reference
from kernels.spec import load_plugin_spec

FLOAT, FLOAT16 = TensorProto.FLOAT, TensorProto.FLOAT16


@pytest.fixture(scope="module")
def fp16_export(precision_graphs):
    return precision_graphs["fp16"]  # exported with parity on (tests/conftest.py)


def test_fp16_graph_keeps_the_policy_fp32_islands(fp16_export):
    """Walk the graph: every LayerNormalization / Softmax / Sigmoid input and every plugin coordinate input is
    FLOAT; plugin values and most weights are FLOAT16; graph I/O keeps the fp32 contract."""
    model = onnx.load(fp16_export.files["full"])
    types = tensor_types(model)
    spec = load_plugin_spec()
    seen = {"LayerNormalization": 0, "Sigmoid": 0, "Softmax": 0, "plugin": 0}
    for node in model.graph.node:
        if node.op_type in ("LayerNormalization", "Sigmoid", "Softmax"):
            assert types[node.input[0]] == FLOAT, (node.name, node.op_type)
            seen[node.op_type] += 1
        if node.op_type in spec["ops"]:
            roles = [x["role"] for x in spec["ops"][node.op_type]["inputs"]]
            for name, role in zip(node.input, roles):
                want = {"coord": FLOAT, "value": FLOAT16, "index": TensorProto.INT32}[role]
                assert types[name] == want, (node.name, role, types[name])
            assert types[node.output[0]] == FLOAT16
            seen["plugin"] += 1
    assert seen == {"LayerNormalization": 24, "Sigmoid": 3, "Softmax": 6, "plugin": 7}
    io = {v.name: v.type.tensor_type.elem_type for v in list(model.graph.input) + list(model.graph.output)}
    assert io == {"query": FLOAT, "support": FLOAT, "support_points": FLOAT, "support_visible": TensorProto.BOOL,
                  "support_links": TensorProto.INT32, "points": FLOAT}
    assert float16_share(model) > 0.95
    convs = [n for n in model.graph.node if n.op_type in ("Conv", "MatMul")]
    assert sum(types.get(n.input[0]) == FLOAT16 for n in convs) > 0.8 * len(convs)
    assert island_violations(model, PrecisionPolicy()) == []


def test_fp16_parity_uses_a_derived_tolerance(fp16_export):
    rows = fp16_export.parity
    assert rows and all(r.ok for r in rows)
    for r in rows:  # the floor is the fp32 tolerance; a tolerance this large would mean a broken model
        assert 1e-4 <= r.tolerance < 5e-3, r.to_dict()
    report = json.loads((fp16_export.files["full"].parent / "export.json").read_text())
    assert report["precision"] == "fp16"
    assert report["metadata"]["precision_policy"] == {"fp32": ["coords", "softmax", "layernorm", "attention"]}


def test_fp16_graph_runs_in_onnxruntime_close_to_fp32(fp16_export, precision_ckpt):
    model = load_model(precision_ckpt)
    feed = random_inputs(model.cfg, batch=1, shots=1, seed=123)
    with torch.no_grad():
        want = model(**feed)[-1].numpy()
    session = cpu_session(onnx.load(fp16_export.files["full"]))
    got = session.run(["points"], {k: v.numpy() for k, v in feed.items()})[0]
    assert got.dtype == np.float32 and np.isfinite(got).all()
    assert np.abs(got - want).max() < 2e-3  # crop pixels: < 0.5 px
    assert np.abs(got - want).max() > 0  # it really is a different precision


def test_fp16_tolerance_is_twice_the_same_precision_error_with_a_floor():
    ref32 = {"points": np.zeros((1, 3, 2))}
    assert fp16_tolerance({"points": np.full((1, 3, 2), 3e-4)}, ref32, 1e-4)["points"] == pytest.approx(
        FP16_TOLERANCE_FACTOR * 3e-4)
    assert fp16_tolerance({"points": np.full((1, 3, 2), 1e-6)}, ref32, 1e-4)["points"] == 1e-4


def test_islands_change_nothing_for_fp32_and_fp64_models(precision_ckpt):
    model = load_model(precision_ckpt).double()
    feed = random_inputs(model.cfg, batch=1, shots=1, seed=7, dtype=torch.float64)
    with torch.no_grad():
        plain = model(**feed)
        with fp32_islands(("coords", "softmax")):
            islands = model(**feed)
    assert torch.equal(plain, islands)


def test_mixed_precision_attention_samples_in_fp32_and_returns_the_value_dtype():
    g = torch.Generator().manual_seed(3)
    shapes = [(4, 4), (8, 8)]
    value = torch.randn(2, 80, 2, 8, generator=g)
    locs = torch.rand(2, 5, 2, 2, 3, 2, generator=g)
    weights = torch.rand(2, 5, 2, 2, 3, generator=g)
    want = reference.msda(value.double(), shapes, None, locs.double(), weights.double())
    with attention_form("portable", fp32_sampling=True):
        got = portable_msda(value.half(), shapes, None, locs, weights)
    assert got.dtype == torch.float16
    # only the value rounding (fp16 input) and the output rounding remain
    assert (got.double() - want).abs().max() < 4e-3
    links = torch.randint(0, 5, (2, 5, 1), generator=g, dtype=torch.int32)
    flat = (4, 4, 8, 8)
    out = _PluginFgsa.apply(value.half(), torch.rand(2, 5, 2, generator=g), links,
                            torch.randn(2, 5, 2, 2, 3, 2, generator=g), torch.randn(2, 5, 2, 6, generator=g), flat)
    assert out.dtype == torch.float16 and torch.isfinite(out).all()


def test_policy_parse_and_violations_are_reported():
    assert PrecisionPolicy.parse("coords,softmax").kept() == ["coords", "softmax"]
    assert PrecisionPolicy.parse("none").kept() == []
    assert PrecisionPolicy.parse(None) == PrecisionPolicy()
    with pytest.raises(ValueError, match="--keep-fp32"):
        PrecisionPolicy.parse("coords,logits")
    # a LayerNormalization fed FLOAT16 breaks the policy; fp16 graph I/O breaks the contract
    x = helper.make_tensor_value_info("x", FLOAT16, [2, 4])
    y = helper.make_tensor_value_info("y", FLOAT16, [2, 4])
    scale = helper.make_tensor("s", FLOAT16, [4], np.ones(4, np.float16).tobytes(), raw=True)
    bias = helper.make_tensor("b", FLOAT16, [4], np.zeros(4, np.float16).tobytes(), raw=True)
    node = helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], name="ln")
    model = helper.make_model(helper.make_graph([node], "g", [x], [y], [scale, bias]),
                              opset_imports=[helper.make_opsetid("", 17)])
    problems = island_violations(model, PrecisionPolicy())
    assert any("LayerNormalization ln" in p for p in problems)
    assert any("graph I/O 'x'" in p for p in problems)
    assert not any("LayerNormalization" in p for p in island_violations(model, PrecisionPolicy.parse("coords")))
