"""The accuracy report: PCK of the three graphs, the budget loop and its fallback, the command end to end."""

import json

import numpy as np
import pytest

from calibration.accuracy import Run, crop_pixel_error, pck, pixel_error
from calibration.qdq import quantized_layers
from calibration.report import main, markdown
from calibration.sensitivity import Sensitivity, fit_budget, groups_of


def test_pck_and_pixel_errors_follow_the_protocol(calib_pairs):
    n = len(calib_pairs)
    truth = np.zeros((n, 70, 2), np.float32)
    for i, it in enumerate(calib_pairs.items):  # the ground truth in crop coordinates scores 100%
        truth[i] = it["query_points"].numpy()  # normalised crop coordinates
    perfect = Run("truth", truth, 1.0)
    assert pck(perfect, calib_pairs).pck == pytest.approx(np.ones(4))
    shifted = Run("shifted", truth + 2 / 256, 1.0)  # 2 crop pixels right and down
    err = pixel_error(shifted, perfect, calib_pairs)
    assert err["keypoints"] > 0 and 0 < err["mean_px"] == pytest.approx(err["max_px"], rel=0.3)
    assert crop_pixel_error(shifted, perfect, calib_pairs) == pytest.approx(2 * np.sqrt(2), rel=1e-4)


def test_budget_loop_sends_ranked_groups_back_until_it_fits(int8_graph):
    groups = groups_of(int8_graph)
    assert "backbone/layer1.0" in groups and "predictor/decoder_layers.2/ffn" in groups
    ranking = [Sensitivity(g, groups[g], 1.0 / (i + 1)) for i, g in enumerate(sorted(groups))]
    deltas = iter([0.9, 0.4])  # PCK@0.05 points lost after each fallback step

    def delta_of(graph):
        fell_back = set(quantized_layers(int8_graph)) - set(quantized_layers(graph))
        assert fell_back == {n for s in ranking[: len(seen) + 1] for n in s.layers}
        seen.append(graph)
        return next(deltas)

    def fits(m):
        return m["delta"] <= 0.5

    seen = []
    graph, fb = fit_budget(int8_graph, ranking, lambda g: {"delta": delta_of(g)}, fits, {"delta": 1.2},
                           progress=False)
    assert fb.within_budget and [s.group for s in fb.groups] == [s.group for s in ranking[:2]]
    assert [s["delta"] for s in fb.steps] == [1.2, 0.9, 0.4]
    _, none = fit_budget(int8_graph, ranking, lambda g: {"delta": delta_of(g)}, fits, {"delta": 0.3},
                         progress=False)
    assert none.groups == [] and none.within_budget
    _, capped = fit_budget(int8_graph, ranking, lambda g: {"delta": 2.0}, fits, {"delta": 3.0}, max_groups=1,
                           progress=False)
    assert len(capped.groups) == 1 and not capped.within_budget
    # the pixel budget too: PCK within budget but p95 over it keeps sending groups back
    pixels = iter([{"delta": 0.1, "p95_crop_px": 1.6}, {"delta": 0.2, "p95_crop_px": 0.8}])
    _, both = fit_budget(int8_graph, ranking, lambda g: next(pixels),
                         lambda m: m["delta"] <= 0.5 and m["p95_crop_px"] <= 1.0,
                         {"delta": 0.2, "p95_crop_px": 2.5}, progress=False)
    assert len(both.groups) == 2 and both.within_budget and both.steps[-1]["p95_crop_px"] == 0.8


def test_markdown_table_has_one_row_per_graph():
    row = {"graph": "FP16", "pck": {"PCK@0.05": 0.5, "PCK@0.1": 0.6, "PCK@0.15": 0.7, "PCK@0.2": 0.8, "mPCK": 0.65},
           "delta_pck05": -0.25, "pixel_error_vs_fp32": {"mean_px": 0.1, "p95_px": 0.2, "max_px": 0.3},
           "ms_per_pair": 12.0}
    text = markdown([row], {"images": 3, "data": "d", "subset": "test"})
    assert "| FP16 | 50.00 | 60.00 | 70.00 | 80.00 | 65.00 | -0.25 | 0.100 | 0.200 | 0.300 | 12 |" in text


def test_sensitivity_ranks_groups_by_their_own_error(fp32_graph, minmax_ranges, calib_pairs):
    import onnx

    from calibration.accuracy import predict, session_for
    from calibration.qdq import quantize_qdq
    from calibration.sensitivity import rank_groups

    model = onnx.load(fp32_graph)
    nodes = [n.name for n in model.graph.node if "backbone/conv1" in n.name or "kpt_branch.2/mlp/mlp.0" in n.name]
    qdq = quantize_qdq(model, minmax_ranges, nodes=nodes)
    pairs = calib_pairs.head(2)
    reference = predict(session_for(model), pairs, progress=False)
    ranking = rank_groups(qdq, pairs, reference, progress=False)
    assert sorted(s.group for s in ranking) == ["backbone/conv1", "predictor/kpt_branch.2"]
    assert ranking[0].error_px >= ranking[1].error_px > 0


@pytest.mark.slow
def test_report_end_to_end(tmp_path, calib_ckpt, precision_graphs, benchmark, capsys):
    """Calibration on real pairs, three graphs scored on held-out pairs; table, JSON, graphs. The FP32 / FP16
    exports of the fixture are reused (--reuse-graphs checks they match the checkpoint)."""
    import shutil

    out = tmp_path / "report"
    for p in ("fp32", "fp16"):
        shutil.copytree(precision_graphs[p].files["full"].parent, out / p)
    code = main(["--ckpt", str(calib_ckpt), "--data", str(benchmark), "--pairs", "3", "--calib-pairs", "3",
                 "--budget", "100", "--out", str(out), "--quiet", "--reuse-graphs"])
    text = capsys.readouterr().out
    assert code == 0, text
    report = json.loads((out / "report.json").read_text())
    assert [r["graph"] for r in report["rows"]] == ["FP32", "FP16", "INT8"]
    assert report["images"] == 3 and report["calibration"]["pairs"] == 3
    assert report["checks"]["fp16_export_ok"] and report["checks"]["int8_qdq_rules_ok"]
    assert report["timings_s"]["export_fp32_s"] < 2 and report["timings_s"]["export_fp16_s"] < 2  # reused
    assert report["rows"][0]["pixel_error_vs_fp32"]["max_px"] == 0
    assert 0 < report["rows"][2]["pixel_error_vs_fp32"]["mean_px"] < 20
    assert "| FP32 |" in text and "| INT8 |" in text and "budget 100" in text
    for g in ("fp32", "fp16", "int8"):
        assert (out / g / "model.onnx").is_file()


def test_a_wrong_data_folder_is_reported_before_any_export(tmp_path, monkeypatch, capsys):
    import export.onnx

    def no_export(*args, **kwargs):
        raise AssertionError("exported before reading the data folder")

    monkeypatch.setattr(export.onnx, "export_onnx", no_export)
    assert main(["--ckpt", str(tmp_path / "any.pth"), "--data", str(tmp_path / "nowhere"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --data: expected an MP-100 / COCO keypoint data set: a folder with annotations/")


def test_shared_categories_and_repeated_pairs_are_warned(benchmark, tmp_path):
    import warnings

    from calibration.episodes import load_episodes
    from tests.fgsa.data.test_own_coco import own_coco

    folder, _ = own_coco(benchmark, tmp_path / "mine")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pairs = load_episodes(folder, "test", 40, progress=False)
    # 2 categories x 5 instances: 40 pairs cannot all be distinct
    msgs = [str(w.message) for w in caught]
    assert len(pairs) == 40 and any("40 pairs of 'test' of which only" in m for m in msgs), msgs


def test_calibrating_and_scoring_on_the_same_categories_is_warned(benchmark, tmp_path, monkeypatch, capsys):
    import export.onnx
    from fgsa.errors import ConfigError
    from tests.fgsa.data.test_own_coco import own_coco

    def stop(*args, **kwargs):  # the data was read and judged; the exports are not the point here
        raise ConfigError("stopped before exporting")

    monkeypatch.setattr(export.onnx, "export_onnx", stop)
    folder, _ = own_coco(benchmark, tmp_path / "mine")
    with pytest.warns(UserWarning, match="--calib-subset 'train' and --subset 'test' share 2 of 2 held-out"):
        assert main(["--ckpt", str(tmp_path / "any.pth"), "--data", str(folder), "--pairs", "3",
                     "--calib-pairs", "3", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == "error: stopped before exporting"


@pytest.mark.parametrize("old, new", [("--episodes", "--pairs"), ("--calib-episodes", "--calib-pairs")])
def test_the_old_pair_flags_name_the_new_ones(tmp_path, capsys, old, new):
    assert main(["--ckpt", str(tmp_path / "any.pth"), "--data", str(tmp_path), old, "3", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {old}: expected {new} here") and "episodes per category" in err[0]
