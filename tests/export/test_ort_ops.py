"""Single plugin nodes in ONNX Runtime (natively through libfgsa_ort_ops.so, and through the reference op)
equal the PyTorch reference."""

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

from export.ort_ops import cpu_session
from fgsa.ops import reference
from kernels.spec import load_plugin_spec, onnx_node_attributes

SHAPES = [(2, 2), (4, 4)]


@pytest.mark.parametrize("native", [True, False], ids=["libfgsa_ort_ops", "reference-op"])
def test_fgsa_attention_node_matches_reference(native):
    if native:
        from tests.kernels.ort_graphs import library_or_skip

        library_or_skip()
    spec = load_plugin_spec()
    g = torch.Generator().manual_seed(0)
    B, K, Hs, M, Dh, L, P = 2, 5, 3, 2, 4, 2, 2
    feed = {"value": torch.randn(B, 20, Hs * M, Dh, generator=g),
            "ref_points": torch.rand(B, K, 2, generator=g) * 1.4 - 0.2,
            "links": torch.randint(0, K, (B, K, Hs), generator=g, dtype=torch.int32),
            "offsets": torch.randn(B, K, Hs * M, L, P, 2, generator=g),
            "logits": torch.randn(B, K, Hs * M, L * P, generator=g)}
    types = {"links": TensorProto.INT32}
    node = helper.make_node("FGSA_Attention", list(feed), ["out"], domain=spec["onnx_domain"],
                            **onnx_node_attributes("FGSA_Attention", SHAPES))
    inputs = [helper.make_tensor_value_info(k, types.get(k, TensorProto.FLOAT), list(v.shape)) for k, v in feed.items()]
    model = helper.make_model(
        helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)]),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(spec["onnx_domain"], 1)])
    got = cpu_session(model, native=native).run(None, {k: v.numpy() for k, v in feed.items()})[0]
    want = reference.fgsa_attention(feed["value"], SHAPES, None, feed["ref_points"], feed["links"],
                                    feed["offsets"], feed["logits"]).numpy()
    assert got.shape == (B, K, Hs * M * Dh)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_sampling_bench_runs_both_forms_and_they_agree(tmp_path):
    """export.sampling_bench: the native op and the portable subgraph give the same FMMP-size output."""
    import json

    from export import sampling_bench
    from tests.kernels.ort_graphs import library_or_skip

    library_or_skip()
    assert sampling_bench.main(["--iterations", "3", "--threads", "1", "--out", str(tmp_path)]) == 0
    r = json.loads((tmp_path / "sampling_bench.json").read_text())
    assert r["max_abs_diff"] < 1e-4 and r["nodes"]["plugin"] <= 3 < r["nodes"]["portable"]
    assert r["portable_over_plugin"] > 0 and "portable / plugin (native)" in (tmp_path / "sampling_bench.md").read_text()
