"""The GPU check tool, run on CPU: argument parsing, its refusal without CUDA, and its check and benchmark
logic driven by the CPU reference instead of the torch extension (tests/kernels/conftest.py::CpuOps)."""

from __future__ import annotations

import pytest
import torch

from kernels.tools import cases, gpu_check


def test_defaults_follow_the_issue():
    args = gpu_check.parse_args([])
    assert args.batches == [1, 8, 64] and args.shots == [1, 5] and args.runs >= 100
    assert set(args.precisions) == {"fp32", "fp16", "fp16-coords16"}
    quick = gpu_check.parse_args(["--quick", "--seed", "3"])
    assert quick.batches == [1, 8] and quick.shots == [1] and quick.seed == 3


def test_fewer_than_100_runs_is_refused():
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--runs", "20"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_fails_loudly(tmp_path, capsys):
    assert gpu_check.main(["--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device" in err and "needs a CUDA GPU" in err
    assert not (tmp_path / "r.json").exists()


def test_checks_pass_with_a_correct_backend(cpu_ops):
    logged = []
    results = gpu_check.run_checks(cpu_ops, batches=[1], shots=[2], precisions=["fp32"], seed=1, device="cpu",
                                   log=logged.append)
    assert len(results) == len(logged) == 2 * (1 + len(gpu_check.FORCED_LAYOUTS))  # 2 ops x layouts
    assert all(r.passed and r.all_written and r.invalid_links_zero for r in results), logged


class _DropsOneHead:
    """A broken backend: side head 3 of FGSAAttention is never written (the poison must be caught)."""

    def __init__(self, ops):
        self.ops = ops

    def msda(self, *a, **kw):
        return self.ops.msda(*a, **kw)

    def fgsa_attention(self, value, shapes, ref, links, offsets, logits, *, out=None, vec=0, groups=0):
        res = self.ops.fgsa_attention(value, shapes, ref, links, offsets, logits, vec=vec, groups=groups)
        B, K = res.shape[:2]
        keep = res.clone().view(B, K, 8, -1)
        keep[:, :, 3] = out.view(B, K, 8, -1)[:, :, 3]
        out.copy_(keep.view(B, K, -1))
        return out


def test_checks_catch_unwritten_outputs(cpu_ops):
    results = gpu_check.check_fgsa(_DropsOneHead(cpu_ops), 1, 1, "fp32", seed=2, device="cpu", first=False)
    assert len(results) == 1 and not results[0].passed and not results[0].all_written


def test_the_benchmarked_ways_compute_the_same_module(cpu_ops):
    case = cases.make_fgsa_case(1, invalid_links=False, seed=6)
    variants = gpu_check.fgsa_module_variants(cpu_ops, case, torch.float32, torch.float32)
    outs = {name: fn() for name, fn in variants.items()}
    fused = outs["1 x FGSA_Attention kernel"].double()
    expected = cases.expected_fgsa(case)
    assert (fused - expected).abs().max() < 1e-4
    for name in ("PyTorch reference (grid_sample, 8 x msda)", "8 x MSDA kernel + PyTorch locations/softmax",
                 "_msda_x8_result"):
        assert (outs[name].double() - fused).abs().max() < 1e-4, name
    assert len(outs["8 x MSDA kernel (locations precomputed)"]) == 8


def test_markdown_table_has_one_row_per_method():
    rows = [{"precision": "fp32", "batch": 1, "method": m, "median_us": 10.0 * (i + 1), "p10_us": 9.0,
             "p90_us": 11.0, "speedup_vs_pytorch": 1.0 / (i + 1)} for i, m in enumerate("abc")]
    table = gpu_check.markdown_table(rows).splitlines()
    assert len(table) == 2 + 3 and table[2].startswith("| fp32 | 1 | a | 10.0 |")


def test_bench_rows_with_a_wall_clock_timer(cpu_ops):
    def timer(fn, runs, warmup):
        fn()
        return {"median_us": 2.0, "p10_us": 1.0, "p90_us": 3.0}

    rows = gpu_check.run_bench(cpu_ops, batches=[1], precisions=["fp32"], runs=100, warmup=1, seed=0, device="cpu",
                               timer=timer)
    assert [r["method"] for r in rows] == [
        "PyTorch reference (grid_sample, 8 x msda)", "8 x MSDA kernel + PyTorch locations/softmax",
        "8 x MSDA kernel (locations precomputed)", "1 x FGSA_Attention kernel"]
    assert all(r["speedup_vs_pytorch"] == 1.0 for r in rows)
    assert all(r["max_diff_fused_vs_pytorch"] < 1e-4 and r["max_diff_msda_x8_vs_fused"] < 1e-4 for r in rows)
