"""Layerwise drift (Polygraphy): a planted precision break is the first tensor over budget and the report names
the fix; FP32 against itself has nothing over budget; the command's errors and outputs."""

import json

import onnx
import pytest

from calibration.attribution import exclude_nodes, keep_fp32_part, model_part
from calibration.layerwise import BUDGET_FACTOR, canonical, first_over, layerwise
from export.precision import FLOAT, FLOAT16, PrecisionPolicy, tensor_types
from tests.conftest import MICRO


SEED = 0  # the micro checkpoint of the runtime and TensorRT-RTX tests: its FP32 and FP16 exports are shared


@pytest.fixture(scope="module")
def small_ckpt(factory):
    """A small model of the real architecture (the runtime tests' micro model): fast exports and runs."""
    return factory.checkpoint(MICRO, seed=SEED)[0]


@pytest.fixture(scope="module")
def portable(factory):
    """Portable-form graphs of the small checkpoint: FP32, the toolkit's FP16, and an FP16 graph whose
    ``attention`` island (the sampling locations and sampled values) was removed: the planted break."""
    graphs = {name: factory.export(MICRO, seed=SEED, attention="portable", **kw).files["full"]
              for name, kw in (("fp32", {}), ("fp16", {"precision": "fp16"}),
                               ("broken", {"precision": "fp16", "policy": PrecisionPolicy(attention=False)}))}
    return {name: onnx.load(path) for name, path in graphs.items()}


@pytest.fixture(scope="module")
def feeds(benchmark):
    from calibration.episodes import load_episodes

    return list(load_episodes(benchmark, "test", 2, progress=False).feeds())


def test_planted_fp16_break_is_the_first_tensor_over_budget(portable, feeds):
    broken, ref = portable["broken"], portable["fp16"]
    rows = layerwise(portable["fp32"], {"fp16": (broken, ref)}, feeds)["fp16"]
    first = first_over(rows)
    assert first is not None
    # planted: tensors the toolkit's graph keeps FLOAT that the broken graph computes in FLOAT16
    b_types, r_types = tensor_types(broken), {canonical(k): v for k, v in tensor_types(ref).items()}
    planted = {canonical(t) for t, v in b_types.items() if v == FLOAT16 and r_types.get(canonical(t)) == FLOAT}
    assert first.tensor in planted, (first.tensor, first.op)
    assert first.max_abs > first.budget_abs == pytest.approx(max(BUDGET_FACTOR * first.reference_abs,
                                                                 1e-4 * first.scale))
    # every tensor before it, in graph order, is within its budget: the break is where the island went
    assert not any(r.over for r in rows[: first.index])
    part, where = keep_fp32_part(broken, ref, first.test_name, dropped=["attention"])
    assert part == "attention" and canonical(where) in planted
    # without the metadata hint the graph alone tells the same part
    assert keep_fp32_part(broken, ref, first.test_name)[0] == "attention"


def test_fp32_against_itself_has_nothing_over_budget(portable, feeds):
    rows = layerwise(portable["fp32"], {"fp32": (portable["fp32"], portable["fp16"])}, feeds)["fp32"]
    compared = [r for r in rows if r.max_abs is not None]
    assert len(compared) == len(rows) > 50
    assert first_over(rows) is None and max(r.max_abs for r in compared) == 0.0
    # budgets are 2x the toolkit's FP16 error: coordinates get crop-pixel units
    assert any(r.px_per_unit == 256.0 for r in rows) and any(r.px_per_unit == 128.0 for r in rows)


def test_int8_break_names_the_layer_to_exclude(portable, feeds, calib_pairs):
    """Quantizing a deformable-attention projection that makes sampling offsets / attention logits (a coordinate
    GEMM the rules keep float) is flagged, and the --exclude advice names it."""
    from calibration.graph import coordinate_analysis, quantizable_nodes
    from calibration.qdq import quantize_qdq
    from calibration.ranges import compute_ranges

    fp32 = portable["fp32"]
    ranges = compute_ranges(fp32, calib_pairs.feeds(), "minmax", chunk=2, progress=False)
    _, coordinate_gemms = coordinate_analysis(fp32)
    weights = {t.name for t in fp32.graph.initializer}
    offsets = next(n.name for n in fp32.graph.node if n.name in coordinate_gemms and "deform_attn" in n.name
                   and n.input[1] in weights)
    ref = quantize_qdq(fp32, ranges)
    broken = quantize_qdq(fp32, ranges, nodes=quantizable_nodes(fp32) + [offsets])
    rows = layerwise(fp32, {"int8": (broken, ref)}, feeds)["int8"]
    first = first_over(rows)
    assert first is not None and first.node == offsets, (first and first.node)
    assert exclude_nodes(broken, first.test_name) == [offsets]
    assert "deformable attention" in model_part(offsets)


def test_model_parts_from_scope_names():
    assert model_part("/model/backbone/layer2/layer2.0/conv1/Conv") == "backbone stage 2"
    assert model_part("/model/backbone/conv1/Conv") == "backbone stem"
    assert model_part("/inner/model/backbone_projs.1/backbone_projs.1.0/Conv") == "projection (level 1)"
    assert model_part("/model/predictor/decoder_layers.1/deform_attn/attn_layers.3/sampling_offsets/MatMul") == \
        "decoder layer 1 · deformable attention · side head 3"
    assert model_part("/model/predictor/kpt_branch.0/layers.2/MatMul") == "point head 0"


def test_cli_bad_input_is_one_line(tmp_path, capsys, benchmark, small_ckpt):
    from calibration.drift import main

    assert main(["--ckpt", str(small_ckpt), "--data", str(benchmark), "--precisions", "fp64",
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --precisions: expected a comma list of fp16, int8, got fp64"]


@pytest.mark.slow
def test_cli_writes_the_report(tmp_path, capsys, benchmark, small_ckpt):
    """The command on a planted FP16 break: exit 1, the fix in the Markdown, JSON rows in graph order, a PNG."""
    import cv2

    from calibration.drift import main

    out = tmp_path / "drift"
    code = main(["--ckpt", str(small_ckpt), "--data", str(benchmark), "--pairs", "1", "--precisions", "fp16",
                 "--keep-fp32", "coords,softmax,layernorm", "--out", str(out), "--quiet"])
    assert code == 1
    report = json.loads((out / "drift.json").read_text())
    (fp16,) = report["precisions"]
    assert fp16["first_over"]["keep_fp32"] == "attention"
    rows = report["rows"]["fp16"]
    assert [r["index"] for r in rows] == list(range(len(rows)))
    assert sum(r["over"] for r in rows) == fp16["over_budget"] > 0
    md = (out / "drift.md").read_text()
    assert "--keep-fp32 coords,softmax,layernorm,attention" in md and "**OVER**" in md
    png = cv2.imread(report["png"])
    assert png is not None and png.shape[1] == 1400
    assert "--keep-fp32 coords,softmax,layernorm,attention" in capsys.readouterr().out
