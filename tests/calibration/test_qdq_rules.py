"""The INT8 graph follows TensorRT's Q/DQ rules: a walk over the graph, independent of calibration.qdq's checker."""

import copy

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from calibration.accuracy import session_for
from calibration.graph import block_of, coordinate_analysis, layer_of, quantizable_nodes
from calibration.qdq import float_layers, qdq_violations, quantize_qdq, quantized_layers
from kernels.spec import load_plugin_spec

GEMMS = ("Conv", "MatMul", "Gemm")


def _coordinate_tensors(model):
    """Tensors between a GEMM (exclusive) and a keypoint-coordinate use: plugin coordinate inputs, Sigmoid
    (the points), Softmax logits, the points output. Written here independently of calibration.graph."""
    spec = load_plugin_spec()["ops"]
    producer = {o: n for n in model.graph.node for o in n.output}
    sinks = ["points"]
    for n in model.graph.node:
        if n.op_type in spec:
            sinks += [t for t, x in zip(n.input, spec[n.op_type]["inputs"]) if x["role"] == "coord"]
        if n.op_type in ("Sigmoid", "Softmax"):
            sinks.append(n.input[0])
    seen, gemms = set(), set()
    while sinks:
        t = sinks.pop()
        if t in seen:
            continue
        seen.add(t)
        node = producer.get(t)
        if node is None or node.op_type in spec:
            continue
        if node.op_type in GEMMS:
            gemms.add(node.name)
            continue
        sinks += list(node.input)
    return seen, gemms


def test_int8_graph_follows_tensorrt_qdq_rules(int8_graph):
    model = int8_graph
    inits = {t.name: t for t in model.graph.initializer}
    consumers = {}
    for n in model.graph.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert len(qdq) > 100
    conv_weights = 0
    for n in qdq:
        zp = inits[n.input[2]]  # explicit, int8, all zero: symmetric
        assert zp.data_type == onnx.TensorProto.INT8 and not numpy_helper.to_array(zp).any(), n.name
        if n.op_type == "DequantizeLinear":
            users = consumers.get(n.output[0], [])
            assert users and all(u.op_type in GEMMS for u in users), (n.name, [u.op_type for u in users])
            for u in users:
                if u.op_type == "Conv" and u.input[1] == n.output[0]:  # per-channel weights on axis 0
                    axis = next(a.i for a in n.attribute if a.name == "axis")
                    w = inits[model_weight(model, n)]
                    assert axis == 0 and list(inits[n.input[1]].dims) == [w.dims[0]], n.name
                    conv_weights += 1
    assert conv_weights == sum(n.op_type == "Conv" for n in model.graph.node)  # every conv is INT8
    # no bias quantization: conv biases are float initializers, never a DequantizeLinear output
    biased = [n for n in model.graph.node if n.op_type == "Conv" and len(n.input) > 2]
    assert biased and all(inits[n.input[2]].data_type == onnx.TensorProto.FLOAT for n in biased)
    coords, coordinate_gemms = _coordinate_tensors(model)
    for n in qdq:
        assert not (set(n.input[:1]) | set(n.output)) & coords, n.name
    dq_out = {n.output[0] for n in qdq if n.op_type == "DequantizeLinear"}
    by_name = {n.name: n for n in model.graph.node}
    assert coordinate_gemms, "the walk must find the offset / logit / point-head GEMMs"
    for name in coordinate_gemms:  # the GEMMs that produce coordinates stay float
        assert not set(by_name[name].input) & dq_out, name


def model_weight(model, dq):
    """The float weight behind a weight DequantizeLinear (weights keep a Q -> DQ pair)."""
    q = next(n for n in model.graph.node if n.output[0] == dq.input[0])
    return q.input[0]


def test_rule_check_agrees_and_catches_violations(int8_graph):
    assert qdq_violations(int8_graph) == []
    bad = copy.deepcopy(int8_graph)
    zp = next(t for t in bad.graph.initializer if t.name.endswith("zero_point"))
    zp.CopyFrom(numpy_helper.from_array(np.full(numpy_helper.to_array(zp).shape, 3, np.int8), zp.name))
    ln = next(n for n in bad.graph.node if n.op_type == "LayerNormalization")
    dq = next(n for n in bad.graph.node if n.op_type == "DequantizeLinear" and n.input[0].endswith("QuantizeLinear_Output"))
    ln.input[0] = dq.output[0]
    problems = qdq_violations(bad)
    assert any("zero point" in p for p in problems)
    assert any("feeds LayerNormalization" in p for p in problems)


def test_coordinate_layers_are_never_quantized(fp32_graph):
    model = onnx.load(fp32_graph)
    _, gemms = coordinate_analysis(model)
    layers = {layer_of(n) for n in gemms}
    names = {n.name: n for n in model.graph.node}
    constant_weight = {n for n in gemms if names[n].input[1] in {t.name for t in model.graph.initializer}}
    # 6 FGSA modules x (sampling offsets, attention logits), 3 point heads' last linear, 3 positional MLPs
    assert len(constant_weight) == 18
    assert {layer for layer in layers if "kpt_branch" in layer} == {f"predictor/kpt_branch.{i}/mlp/mlp.6" for i in range(3)}
    assert not set(quantizable_nodes(model)) & gemms
    assert len(quantizable_nodes(model)) == 98  # 20 backbone convs + 3 projections + 75 GEMMs


def test_layer_and_block_names():
    assert layer_of("/model/predictor/decoder_layers.0/linear1/MatMul") == "predictor/decoder_layers.0/linear1"
    assert block_of("/model/backbone/layer2/layer2.0/conv1/Conv") == "backbone/layer2.0"
    assert block_of("/model/predictor/support_layers.1/linear2/MatMul") == "predictor/support_layers.1/ffn"
    assert block_of("/model/predictor/support_layers.1/MatMul_3") == "predictor/support_layers.1/self_attn"
    assert block_of("/model/predictor/decoder_layers.2/deform_attn/MatMul_4") == "predictor/decoder_layers.2/deform_attn"


def test_int8_graph_runs_close_to_fp32_and_float_layers_is_exact(fp32_graph, int8_graph, calib_pairs,
                                                                 minmax_ranges):
    feed = calib_pairs.feed(0)
    fp32 = session_for(onnx.load(fp32_graph)).run(["points"], feed)[0]
    int8 = session_for(int8_graph).run(["points"], feed)[0]
    diff = np.abs(int8 - fp32).max() * 256
    assert 0 < diff < 8, diff  # crop pixels: quantized, and not broken
    group = [n for n in quantized_layers(int8_graph) if "backbone/layer3" in n]
    assert group
    cheap = session_for(float_layers(int8_graph, set(group))).run(["points"], feed)[0]
    clean_graph = quantize_qdq(onnx.load(fp32_graph), minmax_ranges, exclude=set(group))
    assert not set(group) & set(quantized_layers(clean_graph))
    clean = session_for(clean_graph).run(["points"], feed)[0]
    np.testing.assert_allclose(cheap, clean, atol=1e-6)
    assert np.abs(cheap - int8).max() > 0


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_histogram_methods_clip_inside_the_minmax_range(fp32_graph, calib_pairs, minmax_ranges, method):
    from calibration.ranges import compute_ranges

    pairs = calib_pairs.head(2)
    ranges = compute_ranges(onnx.load(fp32_graph), pairs.feeds(), method, chunk=1, progress=False)
    assert set(ranges.keys()) == set(minmax_ranges.keys())
    wider = 0
    for name in ranges.keys():
        lo, hi = (float(np.max(np.abs(v))) for v in ranges[name].range_value)
        mlo, mhi = (float(np.max(np.abs(v))) for v in minmax_ranges[name].range_value)
        wider += max(lo, hi) > max(mlo, mhi) * 1.01
    # percentile / entropy thresholds sit inside the observed max (2 of the 4 minmax pairs were seen)
    assert wider <= 0.05 * len(ranges.keys()), wider
