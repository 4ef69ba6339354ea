"""The GPU check tool, run on CPU: argument parsing, its refusal without CUDA, and its check and benchmark
logic driven by the CPU reference instead of the torch extension (tests/kernels/conftest.py::CpuOps)."""

from __future__ import annotations

import json

import pytest
import torch

from kernels.tools import cases, gpu_check


def test_defaults_follow_the_issue():
    args = gpu_check.parse_args([])
    assert args.batches == [1, 64] and args.shots == [1, 5] and args.runs >= 100 and args.bench_batches == [1, 64]
    assert set(args.precisions) == {"fp32", "fp16", "fp16-coords16", "fp32-coords16"}
    quick = gpu_check.parse_args(["--quick", "--seed", "3"])
    assert quick.batches == [1] and quick.shots == [1] and quick.seed == 3


def test_fewer_than_100_runs_is_refused():
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--runs", "20"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_fails_loudly(tmp_path, capsys):
    assert gpu_check.main(["--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device" in err and "needs a CUDA GPU" in err
    report = json.loads((tmp_path / "r.json").read_text())  # the caller's file says why, too
    assert report["passed"] is False and "no CUDA device" in report["error"]


def test_checks_pass_with_a_correct_backend(cpu_ops):
    logged = []
    results = gpu_check.run_checks(cpu_ops, batches=[1], shots=[2], precisions=["fp32"], seed=1, device="cpu",
                                   log=logged.append)
    n_layouts = len(gpu_check.AUTO_LAYOUTS) + len(gpu_check.FORCED_LAYOUTS)
    assert len(results) == len(logged) == 2 * n_layouts  # 2 ops x layouts
    assert {r.layout.split(":")[0] for r in results} == {"team", "item"}
    assert all(r.passed and r.all_written and r.invalid_links_zero for r in results), logged


class _DropsOneHead:
    """A broken backend: side head 3 of FGSAAttention is never written (the poison must be caught)."""

    def __init__(self, ops):
        self.ops = ops

    def msda(self, *a, **kw):
        return self.ops.msda(*a, **kw)

    def fgsa_attention(self, value, shapes, ref, links, offsets, logits, *, out=None, **kw):
        res = self.ops.fgsa_attention(value, shapes, ref, links, offsets, logits, **kw)
        B, K = res.shape[:2]
        keep = res.clone().view(B, K, 8, -1)
        keep[:, :, 3] = out.view(B, K, 8, -1)[:, :, 3]
        out.copy_(keep.view(B, K, -1))
        return out


def test_checks_catch_unwritten_outputs(cpu_ops):
    results = gpu_check.check_fgsa(_DropsOneHead(cpu_ops), 1, 1, "fp32", seed=2, device="cpu", first=False)
    assert len(results) == len(gpu_check.AUTO_LAYOUTS)
    assert not any(r.passed or r.all_written for r in results)


def test_the_benchmarked_ways_compute_the_same_module(cpu_ops):
    case = cases.make_fgsa_case(1, invalid_links=False, seed=6)
    variants = gpu_check.fgsa_module_variants(cpu_ops, case, torch.float32, torch.float32)
    outs = {name: fn() for name, fn in variants.items()}
    fused = outs[gpu_check.FUSED_TEAM].double()
    expected = cases.expected_fgsa(case)
    assert (fused - expected).abs().max() < 1e-4
    for name in (gpu_check.PYTORCH, gpu_check.MSDA_PREP, gpu_check.FUSED_ITEM, "_msda_x8_result"):
        assert (outs[name].double() - fused).abs().max() < 1e-4, name
    for name in (gpu_check.MSDA_TEAM, gpu_check.MSDA_ITEM):
        assert (torch.cat(outs[name], -1).double() - fused).abs().max() < 1e-4, name


def test_markdown_table_has_one_row_per_method():
    rows = [{"precision": "fp32", "batch": 1, "method": m, "median_us": 10.0 * (i + 1), "p10_us": 9.0,
             "p90_us": 11.0, "speedup_vs_pytorch": 1.0 / (i + 1)} for i, m in enumerate("abc")]
    table = gpu_check.markdown_table(rows).splitlines()
    assert len(table) == 2 + 3 and table[2].startswith("| fp32 | 1 | a | 10.0 |")


def test_bench_rows_and_layout_verdict_with_a_fake_timer(cpu_ops):
    times = {gpu_check.PYTORCH: 400.0, gpu_check.MSDA_PREP: 300.0, gpu_check.MSDA_TEAM: 90.0,
             gpu_check.MSDA_ITEM: 60.0, gpu_check.FUSED_TEAM: 40.0, gpu_check.FUSED_ITEM: 20.0}
    order = iter(list(times.values()) * 4)

    def timer(fn, runs, warmup):
        fn()
        t = next(order)
        return {"median_us": t, "p10_us": t, "p90_us": t, "timing": "fake"}

    rows = gpu_check.run_bench(cpu_ops, batches=[1], precisions=["fp32"], runs=100, warmup=1, seed=0, device="cpu",
                               timer=timer, peak_gbps=1000.0)
    assert [r["method"] for r in rows] == list(times)
    assert rows[-1]["speedup_vs_pytorch"] == 20.0
    assert all(r["max_diff_fused_vs_pytorch"] < 1e-4 and r["max_diff_msda_x8_and_item_vs_fused"] < 1e-4 for r in rows)
    # Floor: value 1344 x 64 x 32 floats, output 70 x 2048 floats, links, ref/offsets/logits floats; at 1000 GB/s.
    nbytes = (1344 * 64 * 32 + 70 * 2048) * 4 + 70 * 8 * 4 + (70 * 2 + 70 * 64 * 12 * 2 + 70 * 64 * 12) * 4
    assert rows[0]["module_bytes"] == nbytes and abs(rows[0]["floor_us"] - nbytes / 1e6) < 1e-9
    (v,) = gpu_check.layout_verdict(rows)
    assert v["fgsa_faster"] == "item" and v["fgsa_item_over_team"] == 0.5 and v["msda_faster"] == "item"
    assert v["best_fused_us"] == 20.0 and v["fused_speedup_vs_msda_x8"] == 3.0 and v["target_b1_under_10us"] is False
    assert "| fp32 | 1 | item (0.50) | item (0.67) | 20.0 | 3.00x |" in gpu_check.verdict_table([v])


class _FakeExt:
    def __init__(self):
        self.planted = False

    def leave_unrelated_error(self):
        self.planted = True
        return 101  # cudaErrorInvalidDevice

    def take_last_error(self):
        return 101 if self.planted else 0


class _ReportsEarlierError:
    """A launcher that returns cudaGetLastError(): it fails on the planted, unrelated error."""

    def __init__(self, ops, ext):
        self.ops, self.ext = ops, ext

    def msda(self, *a, **kw):
        if self.ext.planted:
            raise RuntimeError("launch_msda: invalid device ordinal")
        return self.ops.msda(*a, **kw)


def test_launch_status_check(cpu_ops):
    ok = gpu_check.check_launch_status(_FakeExt(), cpu_ops, "cpu")
    assert ok["passed"] and ok["planted_error"] == 101 and not ok["launch_raised"]
    ext = _FakeExt()
    bad = gpu_check.check_launch_status(ext, _ReportsEarlierError(cpu_ops, ext), "cpu")
    assert not bad["passed"] and "invalid device ordinal" in bad["launch_raised"]


def test_graph_replays_hold_fewer_calls_for_long_calls():
    from kernels.tools import gpu_timing

    assert gpu_timing.graph_calls(5.0) == 20 and gpu_timing.graph_calls(200.0) == 5
    assert gpu_timing.graph_calls(5000.0) == 1 and gpu_timing.graph_calls(0.0) == 20
