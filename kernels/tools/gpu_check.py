"""GPU check of the CUDA kernels: parity with the float64 PyTorch reference, then timing of one FGSA module.

    python -m kernels.tools.gpu_check                 # full check (B in {1, 8, 64}, S in {1, 5}), about 2-4 min
    python -m kernels.tools.gpu_check --quick         # B in {1, 8}, S = 1
    python -m kernels.tools.gpu_check --json out.json

1. Builds the torch extension (kernels/torch_ext) for the visible GPU.
2. Parity: both ops, batch B*S for B in --batches and S in --shots, precisions fp32 (FP32 everything),
   fp16 (FP16 values and output, FP32 coordinates: the precision policy) and fp16-coords16 (FP16
   everything); outputs poisoned with NaN before every call; inputs from kernels.tools.cases (borders,
   points far outside, invisible keypoints, links outside [0, K)). The tolerance is derived, not tuned:
   2 x the error that the PyTorch reference itself makes in that precision against float64.
3. Timing of one FGSA module (8 side heads x 8 heads, K = 70) with CUDA events, median of --runs runs:
   the PyTorch reference (grid_sample, 8 side heads as 8 msda calls), 8 x MSDA kernel (with and without
   the location/softmax preparation in PyTorch) and 1 x FGSA_Attention kernel. Prints a Markdown table.
Exit status: 0 all checks passed, 1 a check failed, 2 no usable GPU / toolchain (with the reason).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_JSON = REPO_ROOT / "build" / "kernels" / "gpu_check.json"

# precision name -> (value/output dtype, coordinate dtype), as torch dtype names
PRECISIONS: dict[str, tuple[str, str]] = {
    "fp32": ("float32", "float32"),
    "fp16": ("float16", "float32"),
    "fp16-coords16": ("float16", "float16"),
}
# (vec, groups): 0 = launcher's choice. The forced layouts run on the smallest batch only.
AUTO_LAYOUT = (0, 0)
FORCED_LAYOUTS = ((1, 1), (0, 1))


class Ops(Protocol):
    """The two ops as the check calls them (the torch extension on a GPU; the CPU reference in tests)."""

    def msda(self, value, spatial_shapes, sampling_locations, attention_weights, *, out=None, vec=0, groups=0): ...

    def fgsa_attention(self, value, spatial_shapes, ref_points, links, offsets, logits, *, out=None, vec=0,
                       groups=0): ...


class ExtensionOps:
    """Ops backed by the compiled torch extension."""

    def __init__(self, ext):
        self.ext = ext

    def msda(self, value, spatial_shapes, sampling_locations, attention_weights, *, out=None, vec=0, groups=0):
        from kernels import torch_ext

        return torch_ext.msda(self.ext, value, spatial_shapes, sampling_locations, attention_weights, out=out,
                              vec=vec, groups=groups)

    def fgsa_attention(self, value, spatial_shapes, ref_points, links, offsets, logits, *, out=None, vec=0,
                       groups=0):
        from kernels import torch_ext

        return torch_ext.fgsa_attention(self.ext, value, spatial_shapes, ref_points, links, offsets, logits, out=out,
                                        vec=vec, groups=groups)


@dataclass
class CheckResult:
    op: str
    precision: str
    batch: int
    shots: int
    layout: str
    max_abs_err: float
    torch_same_precision_err: float
    tolerance: float
    all_written: bool  # no NaN left from the poison
    invalid_links_zero: bool
    passed: bool


def _dtype(name: str):
    import torch

    return getattr(torch, name)


def _max_err(a, b) -> float:
    return float((a.double() - b.double()).abs().max().item()) if a.numel() else 0.0


def _tolerance(torch_err: float, expected, value_dtype) -> float:
    """2 x the PyTorch reference's own error in this precision; never below a few output ulps (also when
    PyTorch's own low-precision run is not finite, which would otherwise make every comparison fail)."""
    import math

    import torch

    eps = torch.finfo(value_dtype).eps
    scale = float(expected.abs().max().item()) if expected.numel() else 1.0
    floor = 4.0 * eps * max(scale, 1.0)
    return max(2.0 * torch_err, floor) if math.isfinite(torch_err) else floor


def _layouts(first: bool) -> list[tuple[int, int]]:
    return [AUTO_LAYOUT, *FORCED_LAYOUTS] if first else [AUTO_LAYOUT]


def _layout_name(layout: tuple[int, int]) -> str:
    vec, groups = layout
    return f"vec={'auto' if vec == 0 else vec},groups={'auto' if groups == 0 else groups}"


def check_msda(ops: Ops, batch: int, shots: int, precision: str, *, seed: int, device: str,
               first: bool) -> list[CheckResult]:
    import torch

    from kernels.tools import cases

    vdt, cdt = (_dtype(n) for n in PRECISIONS[precision])
    case64 = cases.make_msda_case(batch * shots, seed=seed, device=device)
    value, loc, w = case64.value.to(vdt), case64.sampling_locations.to(cdt), case64.attention_weights.to(cdt)
    rounded = cases.MsdaCase(value.double(), loc.double(), w.double(), case64.spatial_shapes)
    expected = cases.expected_msda(rounded)
    # The PyTorch reference in this precision (grid_sample wants one dtype for map and grid: the value's).
    torch_err = _max_err(cases.expected_msda(rounded, vdt), expected)
    tol = _tolerance(torch_err, expected, vdt)
    results = []
    for layout in _layouts(first):
        out = torch.full(expected.shape, float("nan"), dtype=vdt, device=device)
        ops.msda(value, case64.spatial_shapes, loc, w, out=out, vec=layout[0], groups=layout[1])
        err = _max_err(out, expected)
        written = bool(torch.isfinite(out).all().item())
        results.append(CheckResult("FGSA_MSDA", precision, batch, shots, _layout_name(layout), err, torch_err, tol,
                                   written, True, written and err <= tol))
    return results


def check_fgsa(ops: Ops, batch: int, shots: int, precision: str, *, seed: int, device: str,
               first: bool) -> list[CheckResult]:
    import torch

    from kernels.tools import cases

    vdt, cdt = (_dtype(n) for n in PRECISIONS[precision])
    c = cases.make_fgsa_case(batch * shots, seed=seed, device=device)
    value, ref, off, logits = c.value.to(vdt), c.ref_points.to(cdt), c.offsets.to(cdt), c.logits.to(cdt)
    c.value = None  # at B*S = 320 the float64 value is 7 GB; keep one float64 copy alive, not two
    rounded = cases.FgsaCase(value.double(), ref.double(), c.links, off.double(), logits.double(), c.spatial_shapes)
    expected = cases.expected_fgsa(rounded)
    torch_err = _max_err(cases.expected_fgsa(rounded, vdt), expected)
    tol = _tolerance(torch_err, expected, vdt)
    B, K, Hs = c.links.shape
    invalid = c.invalid_links
    results = []
    for layout in _layouts(first):
        out = torch.full(expected.shape, float("nan"), dtype=vdt, device=device)
        ops.fgsa_attention(value, c.spatial_shapes, ref, c.links, off, logits, out=out, vec=layout[0],
                           groups=layout[1])
        err = _max_err(out, expected)
        written = bool(torch.isfinite(out).all().item())
        zeros = bool((out.view(B, K, Hs, -1)[invalid] == 0).all().item())
        results.append(CheckResult("FGSA_Attention", precision, batch, shots, _layout_name(layout), err, torch_err,
                                   tol, written, zeros, written and zeros and err <= tol))
    return results


def run_checks(ops: Ops, *, batches: Sequence[int], shots: Sequence[int], precisions: Sequence[str], seed: int,
               device: str, log: Callable[[str], None] = print) -> list[CheckResult]:
    """Parity of both ops for every (batch, shots, precision); forced layouts on the first combination."""
    results: list[CheckResult] = []
    first = True
    for b in batches:
        for s in shots:
            for p in precisions:
                for check in (check_msda, check_fgsa):
                    for r in check(ops, b, s, p, seed=seed + len(results), device=device, first=first):
                        results.append(r)
                        log(f"{'ok  ' if r.passed else 'FAIL'} {r.op:15s} {r.precision:14s} B={r.batch:<3d} S={r.shots} "
                            f"{r.layout:24s} err={r.max_abs_err:.2e} tol={r.tolerance:.2e} "
                            f"(torch {r.precision}: {r.torch_same_precision_err:.2e}) written={r.all_written} "
                            f"bad-links-zero={r.invalid_links_zero}")
                _release(device)
            first = False
    return results


def _release(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def fgsa_module_variants(ops: Ops, case, value_dtype, coord_dtype) -> dict[str, Callable[[], Any]]:
    """One FGSA module computed four ways, each a no-argument callable returning [B, K, Hs*M*Dh]."""
    import torch

    from fgsa.ops import reference

    shapes = case.spatial_shapes
    B, K, Hs = case.links.shape
    HM, L = case.value.shape[2], len(shapes)
    M, P = HM // Hs, case.offsets.shape[4]
    value = case.value.to(value_dtype)
    ref, off, logits = (t.to(coord_dtype) for t in (case.ref_points, case.offsets, case.logits))
    links = case.links
    # The model has one value projection per side head: 8 contiguous [B, Len_in, M, Dh] tensors.
    value_heads = [value[:, :, h * M:(h + 1) * M].contiguous() for h in range(Hs)]
    norm = torch.tensor([[w, h] for h, w in shapes], dtype=coord_dtype, device=value.device)

    def locations_and_weights(h: int, dtype):
        idx = links[..., h].long().clamp(0, K - 1).unsqueeze(-1).expand(B, K, 2)
        refs = torch.gather(ref, 1, idx)
        loc = refs[:, :, None, None, None, :] + off[:, :, h * M:(h + 1) * M] / norm[:, None, :]
        w = torch.softmax(logits[:, :, h * M:(h + 1) * M], dim=-1).view(B, K, M, L, P)
        return loc.to(dtype), w.to(dtype)

    prepared = [locations_and_weights(h, coord_dtype) for h in range(Hs)]
    head_outs = [torch.empty((B, K, M * value.shape[3]), dtype=value_dtype, device=value.device) for _ in range(Hs)]
    fused_out = torch.empty((B, K, HM * value.shape[3]), dtype=value_dtype, device=value.device)

    def torch_reference():
        # grid_sample needs one dtype for map and grid: the reference runs entirely in the value dtype.
        return torch.cat([reference.msda(value_heads[h], shapes, None, *locations_and_weights(h, value_dtype))
                          for h in range(Hs)], dim=-1)

    def msda_x8_with_prep():
        return torch.cat([ops.msda(value_heads[h], shapes, *locations_and_weights(h, coord_dtype))
                          for h in range(Hs)], dim=-1)

    def msda_x8():
        for h in range(Hs):
            ops.msda(value_heads[h], shapes, *prepared[h], out=head_outs[h])
        return torch.cat(head_outs, dim=-1)  # only for comparing; timing uses msda_x8_kernels

    def msda_x8_kernels():
        for h in range(Hs):
            ops.msda(value_heads[h], shapes, *prepared[h], out=head_outs[h])
        return head_outs

    def fused():
        return ops.fgsa_attention(value, shapes, ref, links, off, logits, out=fused_out)

    return {
        "PyTorch reference (grid_sample, 8 x msda)": torch_reference,
        "8 x MSDA kernel + PyTorch locations/softmax": msda_x8_with_prep,
        "8 x MSDA kernel (locations precomputed)": msda_x8_kernels,
        "1 x FGSA_Attention kernel": fused,
        "_msda_x8_result": msda_x8,
    }


def time_cuda(fn: Callable[[], Any], runs: int, warmup: int) -> dict[str, float]:
    """Median, p10 and p90 in microseconds of `runs` calls, each between two CUDA events."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    for i in range(runs):
        starts[i].record()
        fn()
        ends[i].record()
    torch.cuda.synchronize()
    us = sorted(s.elapsed_time(e) * 1000.0 for s, e in zip(starts, ends))
    return {"median_us": us[len(us) // 2], "p10_us": us[len(us) // 10], "p90_us": us[(len(us) * 9) // 10]}


def run_bench(ops: Ops, *, batches: Sequence[int], precisions: Sequence[str], runs: int, warmup: int, seed: int,
              device: str, timer: Callable[[Callable[[], Any], int, int], dict[str, float]] = time_cuda
              ) -> list[dict[str, Any]]:
    """Times every way of computing one FGSA module; rows in the order of fgsa_module_variants."""
    from kernels.tools import cases

    rows = []
    for p in precisions:
        vdt, cdt = (_dtype(n) for n in PRECISIONS[p])
        for b in batches:
            case = cases.make_fgsa_case(b, invalid_links=False, seed=seed + b, device=device)
            variants = fgsa_module_variants(ops, case, vdt, cdt)
            check = variants.pop("_msda_x8_result")
            # The benchmark's own sanity: all ways agree (PyTorch in this precision sets the scale).
            base = variants["PyTorch reference (grid_sample, 8 x msda)"]().double()
            fused = variants["1 x FGSA_Attention kernel"]().double()
            agree = _max_err(check().double(), fused)
            baseline = None
            for name, fn in variants.items():
                t = timer(fn, runs, warmup)
                baseline = baseline or t["median_us"]
                rows.append({"precision": p, "batch": b, "method": name, **t,
                             "speedup_vs_pytorch": baseline / t["median_us"],
                             "max_diff_fused_vs_pytorch": _max_err(fused, base),
                             "max_diff_msda_x8_vs_fused": agree})
            _release(device)
    return rows


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| precision | batch | method | median (us) | p10-p90 (us) | speed-up vs PyTorch |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['precision']} | {r['batch']} | {r['method']} | {r['median_us']:.1f} | "
                     f"{r['p10_us']:.1f}-{r['p90_us']:.1f} | {r['speedup_vs_pytorch']:.2f}x |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kernels.tools.gpu_check",
                                     description="Parity and timing of the fgsa CUDA kernels on this GPU.")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 64], help="B values (default 1 8 64)")
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5], help="S values; batch = B*S (default 1 5)")
    parser.add_argument("--precisions", nargs="+", choices=sorted(PRECISIONS), default=list(PRECISIONS))
    parser.add_argument("--bench-batches", type=int, nargs="+", default=[1, 5],
                        help="batches of the FGSA-module timing (default 1 = one query, 5 = five support shots)")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per method (median; at least 100)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None, help="default: fresh, printed")
    parser.add_argument("--skip-bench", action="store_true")
    parser.add_argument("--quick", action="store_true", help="B in {1, 8}, S = 1, 100 runs")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON})")
    parser.add_argument("--build-dir", type=Path, default=None, help="torch extension build dir")
    parser.add_argument("--verbose-build", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.shots, args.runs = [1, 8], [1], 100
    if args.runs < 100:
        parser.error(f"--runs must be at least 100 for a stable median, got {args.runs}")
    if args.seed is None:
        args.seed = int(time.time()) % 100_000
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from kernels import torch_ext

    try:
        torch_ext.check_environment()
    except torch_ext.ExtensionUnavailable as e:
        print(f"gpu_check: {e}. This check needs a CUDA GPU, a CUDA build of torch, nvcc and ninja.",
              file=sys.stderr)
        return 2
    device = "cuda"
    props = torch.cuda.get_device_properties(0)
    print(f"device: {props.name} (sm_{props.major}{props.minor}), torch {torch.__version__}, CUDA {torch.version.cuda}"
          f", seed {args.seed}")
    t0 = time.perf_counter()
    build_kw = {"verbose": args.verbose_build}
    if args.build_dir:
        build_kw["build_dir"] = args.build_dir
    ops = ExtensionOps(torch_ext.load(**build_kw))
    build_s = time.perf_counter() - t0
    print(f"torch extension built/loaded in {build_s:.1f} s")

    checks = run_checks(ops, batches=args.batches, shots=args.shots, precisions=args.precisions, seed=args.seed,
                        device=device)
    bench = [] if args.skip_bench else run_bench(ops, batches=args.bench_batches, precisions=[
        p for p in ("fp32", "fp16") if p in args.precisions], runs=args.runs, warmup=args.warmup, seed=args.seed,
        device=device)
    passed = all(r.passed for r in checks)
    if bench:
        print("\n" + markdown_table(bench) + "\n")
    report = {
        "device": props.name, "capability": f"sm_{props.major}{props.minor}", "torch": torch.__version__,
        "cuda": torch.version.cuda, "python": platform.python_version(), "seed": args.seed,
        "extension_build_s": build_s, "total_s": time.perf_counter() - t0, "passed": passed,
        "checks": [asdict(r) for r in checks], "bench": bench,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"{sum(r.passed for r in checks)}/{len(checks)} checks passed; results in {args.json}")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
