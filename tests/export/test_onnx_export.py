"""python -m export.onnx: the three attention forms, dynamic batch, shots, split, determinism, bad input."""

import json
from collections import Counter

import onnx
import pytest

from export import metadata
from export.cleanup import fold_round
from export.onnx import ExportOptions, export_onnx, main
from kernels.spec import load_plugin_spec
from tests.conftest import MICRO


def export(tmp_path, ckpt, **kw):
    opts = ExportOptions(ckpt=ckpt, out=tmp_path, quiet=True, **kw)
    result = export_onnx(opts)
    assert result.ok, (result.lint, [r.to_dict() for r in result.parity])
    return result


def ops(path):
    return Counter(n.op_type for n in onnx.load(path).graph.node)


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


@pytest.fixture(scope="module")
def plugin_dynamic(tmp_path_factory, factory):
    """plugin form, dynamic batch 1:3:8, S=5, split graphs: parity ran at B = 1, 3 and 8.

    On the MICRO config of tests/conftest.py (2 layers, 2 levels, 2 side heads, 1 point): the same forms (both
    plugin ops, full and split graphs), the same dynamic batch and shot axes and parity cases, with the counts
    below derived from the config; fmmp-tiny's 3 layers x 8 side heads x 4 points at B = 8, S = 5 made this the
    slowest fixture of the suite (~75 s CPU against ~22 s). fmmp-tiny's plugin graph is counted in
    tests/export/test_precision.py."""
    return export(tmp_path_factory.mktemp("plugin"), factory.checkpoint(MICRO, seed=0)[0],
                  dynamic_batch=(1, 3, 8), shots=5, split=True)


def test_plugin_form_nodes_match_the_plugin_spec(plugin_dynamic):
    spec = load_plugin_spec()
    model = onnx.load(plugin_dynamic.files["full"])
    nodes = [n for n in model.graph.node if n.op_type in spec["ops"]]
    # 2 per layer (support and query side), one MSDA for the reference features
    assert Counter(n.op_type for n in nodes) == {"FGSA_Attention": 2 * MICRO.n_layers, "FGSA_MSDA": 1}
    for n in nodes:
        a = attrs(n)
        assert n.domain == spec["onnx_domain"]
        assert a["plugin_version"] == spec["plugin_version"].encode()
        assert a["plugin_namespace"] == spec["plugin_namespace"].encode()
        assert list(a["spatial_shapes"]) == [8, 8, 16, 16, 32, 32][: 2 * MICRO.n_levels]
    assert "GridSample" not in ops(plugin_dynamic.files["full"])


def test_dynamic_batch_shots_and_split_parity(plugin_dynamic):
    cases = {(r.graph, r.case) for r in plugin_dynamic.parity}
    for b in (1, 3, 8):
        assert ("full", f"random B={b} S=5") in cases
        assert ("split", f"encoder->predictor B={b} S=5") in cases
    assert all(r.max_abs < 1e-4 for r in plugin_dynamic.parity)
    model = onnx.load(plugin_dynamic.files["full"])
    q = next(i for i in model.graph.input if i.name == "support")
    assert q.type.tensor_type.shape.dim[0].dim_param == "batch" and q.type.tensor_type.shape.dim[1].dim_value == 5


def test_io_contract_and_metadata(plugin_dynamic):
    model = onnx.load(plugin_dynamic.files["full"])
    types = {i.name: onnx.TensorProto.DataType.Name(i.type.tensor_type.elem_type) for i in model.graph.input}
    assert types == {"query": "FLOAT", "support": "FLOAT", "support_points": "FLOAT",
                     "support_visible": "BOOL", "support_links": "INT32"}
    assert [o.name for o in model.graph.output] == ["points"]
    meta = metadata.read(model)
    assert meta["attention"] == "plugin" and meta["keypoints"] == 70 and meta["input_size"] == 256
    assert meta["normalization"]["mean"] == [0.485, 0.456, 0.406] and len(meta["checkpoint_sha256"]) == 64
    report = json.loads((plugin_dynamic.files["full"].parent / "export.json").read_text())
    assert report["ok"] and set(report["graphs"]) == {"full", "support_encoder", "predictor"}
    # one support_values_l per support layer l = 1..n_layers-1 (export/graphs.py)
    values = [f"support_values_{layer}" for layer in range(1, MICRO.n_layers)]
    enc = onnx.load(plugin_dynamic.files["support_encoder"])
    assert [o.name for o in enc.graph.output] == ["support_embed", "support_pos", *values]
    assert [i.name for i in enc.graph.input] == ["support", "support_points", "support_visible", "support_links"]
    pred = onnx.load(plugin_dynamic.files["predictor"])
    assert [i.name for i in pred.graph.input] == ["query", "support_embed", "support_pos", *values,
                                                  "support_points", "support_visible", "support_links"]


def test_trt_builtin_form(tmp_path, tiny_ckpt):
    result = export(tmp_path, tiny_ckpt, attention="trt-builtin", all_layers=True)
    model = onnx.load(result.files["full"])
    nodes = [n for n in model.graph.node if n.op_type == "MultiscaleDeformableAttnPlugin_TRT"]
    assert len(nodes) == 7 and all(attrs(n)["plugin_version"] == b"2" for n in nodes)
    inits = {t.name: t for t in model.graph.initializer}
    for n in nodes:  # spatial_shapes and level_start_index are int32 constants
        for name in n.input[1:3]:
            assert inits[name].data_type == onnx.TensorProto.INT32
    assert [o.name for o in model.graph.output] == ["points", "points_per_layer"]
    assert "GridSample" not in ops(result.files["full"])


def test_portable_form_is_standard_ops_and_warns(tmp_path, tiny_ckpt):
    result = export(tmp_path, tiny_ckpt, attention="portable")
    counts = ops(result.files["full"])
    assert counts["GridSample"] > 0
    model = onnx.load(result.files["full"])
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)
    assert any("GridSample" in w for w in result.lint["full"]["warnings"])
    # folded to the end: one more round finds nothing (a round limit once left Shape/Slice/Concat chains here)
    assert len(fold_round(model).graph.node) == len(model.graph.node)


def test_export_is_deterministic(tmp_path, precision_ckpt, precision_graphs):
    """A second export with the same options (plugin form, fp32, B = 1, no parity) as the session's fp32 graph
    of precision_ckpt (tests/conftest.py), written to another folder, is byte-identical to it."""
    a = precision_graphs["fp32"]
    b = export(tmp_path / "b", precision_ckpt, parity=False)
    assert a.files["full"].read_bytes() == b.files["full"].read_bytes()


@pytest.mark.parametrize("argv, message", [
    (["--ckpt", "{tmp}/missing.pth"], "checkpoint file not found"),
    (["--ckpt", "{tmp}/junk.pth"], "not a readable PyTorch checkpoint"),
    (["--ckpt", "{ckpt}", "--config", "fmmp-r50"], "embeds config 'fmmp-tiny'"),
    (["--ckpt", "{ckpt}", "--shots", "0"], "--shots: expected at least 1"),
    (["--ckpt", "{ckpt}", "--dynamic-batch", "4:2:8"], "--dynamic-batch: expected MIN:OPT:MAX"),
])
def test_bad_input_exits_2_with_a_clear_message(tmp_path, tiny_ckpt, capsys, argv, message):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    argv = [a.format(tmp=tmp_path, ckpt=tiny_ckpt) for a in argv] + ["--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_unknown_form_is_refused(tiny_ckpt, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--ckpt", str(tiny_ckpt), "--attention", "magic"])
    assert info.value.code == 2 and "invalid choice: 'magic'" in capsys.readouterr().err
