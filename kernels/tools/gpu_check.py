"""GPU check of the CUDA kernels: parity with the float64 PyTorch reference, then timing of one FGSA module.

    python -u -m kernels.tools.gpu_check --json out.json --build-dir "$(mktemp -d)"  # ~3-6 min (estimate)
    python -m kernels.tools.gpu_check --quick          # B = 1 only, S = 1

Needs a CUDA GPU, a CUDA build of torch and a CUDA toolkit (nvcc); not TensorRT. ninja is used when found
(on PATH or as the `ninja` pip package), else the extension is built by setuptools.
Every phase (environment, build, launch status, each parity case, each timing) is recorded as pass / fail /
error with its message and seconds, printed as one flushed progress line, and the JSON is rewritten after
each one and at the end, however the run ends (kernels/tools/phases.py): a compile error, a TORCH_CHECK, an
out-of-memory error or an illegal address costs that phase, not the results gathered so far (after an
illegal address the CUDA context is gone, so the remaining phases are recorded as skipped).
1. Finds the CUDA toolkit (also behind an nvcc wrapper script) and builds the torch extension
   (kernels/torch_ext) for the visible GPU's architecture only, whatever TORCH_CUDA_ARCH_LIST says. A
   stale torch build lock (left by a killed build; torch would wait for it forever) is removed first; one a
   live build holds makes the check build in a fresh folder instead. The report says which.
2. Parity: both ops, both thread layouts (team, item), batch B*S for B in --batches and S in --shots,
   precisions fp32 (FP32 everything), fp16 (FP16 values, FP32 coordinates: the precision policy),
   fp16-coords16 (FP16 everything) and fp32-coords16 (FP32 values, FP16 coordinates); outputs poisoned with
   NaN before every call; inputs from kernels.tools.cases (borders, points far outside, invisible
   keypoints, links outside [0, K)). The automatic layouts use 16-byte vectors and, at small batches,
   several point groups (shuffles); forced layouts (vec 1, one group, 64-bit indices) run on the first
   combination. The tolerance is derived, not tuned: 2 x the error that the PyTorch reference itself makes
   in that precision against float64. Also: a launcher reports its own launch status, not an unrelated
   earlier error.
3. Timing of one FGSA module (8 side heads x 8 heads, K = 70) at --bench-batches (default 1 and 64), FP32
   and FP16: the PyTorch reference (grid_sample, 8 side heads as 8 msda calls), 8 x MSDA kernel (with and
   without the location/softmax preparation in PyTorch), 1 x FGSA_Attention kernel in each layout. Each
   method is timed as CUDA-graph replays of 20 calls (no Python overhead; median of --runs) and eagerly;
   the memory floor (every input read once, the output written once, at the GPU's peak bandwidth) and
   which layout is faster are reported. Prints Markdown tables.
   The memory floor's bandwidth is memory clock x bus width x 2 from the device properties (one GPU name
   covers several memory systems: H100 SXM / PCIe / NVL); the report says where the figure came from.
Exit status: 0 every phase passed, 1 some phase failed or raised (the build included), 2 nothing could run:
no usable GPU / toolchain (with the reason; the JSON file then holds the reason too).
"""

from __future__ import annotations

import argparse
import platform as platform_module
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
    "fp32-coords16": ("float32", "float16"),
}


@dataclass(frozen=True)
class Layout:
    """A launch configuration (fgsa/params.h LaunchConfig); 0 = the launcher's choice."""

    layout: str  # "team" or "item"
    vec: int = 0
    groups: int = 0
    index_bits: int = 0

    @property
    def name(self) -> str:
        auto = lambda v: "auto" if v == 0 else str(v)  # noqa: E731
        bits = "" if self.index_bits == 0 else f",index={self.index_bits}"
        return f"{self.layout}:vec={auto(self.vec)},groups={auto(self.groups)}{bits}"

    def kwargs(self) -> dict[str, Any]:
        return {"vec": self.vec, "groups": self.groups, "layout": self.layout, "index_bits": self.index_bits}


AUTO_LAYOUTS = (Layout("team"), Layout("item"))
# Run on the first (batch, shots) combination only: scalar channels, one group, 64-bit item indices.
FORCED_LAYOUTS = (Layout("team", 1, 1), Layout("team", 0, 1), Layout("item", 1, 0), Layout("item", 0, 1),
                  Layout("item", 0, 0, 64))


class Ops(Protocol):
    """The two ops as the check calls them (the torch extension on a GPU; the CPU reference in tests)."""

    def msda(self, value, spatial_shapes, sampling_locations, attention_weights, *, out=None, vec=0, groups=0,
             layout="team", index_bits=0): ...

    def fgsa_attention(self, value, spatial_shapes, ref_points, links, offsets, logits, *, out=None, vec=0,
                       groups=0, layout="team", index_bits=0): ...


class ExtensionOps:
    """Ops backed by the compiled torch extension."""

    def __init__(self, ext):
        self.ext = ext

    def msda(self, value, spatial_shapes, sampling_locations, attention_weights, *, out=None, vec=0, groups=0,
             layout="team", index_bits=0):
        from kernels import torch_ext

        return torch_ext.msda(self.ext, value, spatial_shapes, sampling_locations, attention_weights, out=out,
                              vec=vec, groups=groups, layout=layout, index_bits=index_bits)

    def fgsa_attention(self, value, spatial_shapes, ref_points, links, offsets, logits, *, out=None, vec=0,
                       groups=0, layout="team", index_bits=0):
        from kernels import torch_ext

        return torch_ext.fgsa_attention(self.ext, value, spatial_shapes, ref_points, links, offsets, logits, out=out,
                                        vec=vec, groups=groups, layout=layout, index_bits=index_bits)


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
    error: str = ""  # the op raised (a TORCH_CHECK, out of memory, a CUDA error): its message


def _raised(op: str, precision: str, batch: int, shots: int, layout: "Layout", exc: Exception, torch_err: float,
            tol: float) -> CheckResult:
    return CheckResult(op, precision, batch, shots, layout.name, float("nan"), torch_err, tol, False, False, False,
                       f"{type(exc).__name__}: {exc}".splitlines()[0][:500])


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


def _layouts(first: bool) -> list[Layout]:
    return [*AUTO_LAYOUTS, *FORCED_LAYOUTS] if first else list(AUTO_LAYOUTS)


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
        try:
            ops.msda(value, case64.spatial_shapes, loc, w, out=out, **layout.kwargs())
        except Exception as exc:  # one layout refused or crashed: the others still run and report
            results.append(_raised("FGSA_MSDA", precision, batch, shots, layout, exc, torch_err, tol))
            continue
        err = _max_err(out, expected)
        written = bool(torch.isfinite(out).all().item())
        results.append(CheckResult("FGSA_MSDA", precision, batch, shots, layout.name, err, torch_err, tol,
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
        try:
            ops.fgsa_attention(value, c.spatial_shapes, ref, c.links, off, logits, out=out, **layout.kwargs())
        except Exception as exc:
            results.append(_raised("FGSA_Attention", precision, batch, shots, layout, exc, torch_err, tol))
            continue
        err = _max_err(out, expected)
        written = bool(torch.isfinite(out).all().item())
        zeros = bool((out.view(B, K, Hs, -1)[invalid] == 0).all().item())
        results.append(CheckResult("FGSA_Attention", precision, batch, shots, layout.name, err, torch_err,
                                   tol, written, zeros, written and zeros and err <= tol))
    return results


def parity_cases(ops: Ops, *, batches: Sequence[int], shots: Sequence[int], precisions: Sequence[str], seed: int,
                 device: str) -> list[tuple[str, Callable[[], list[CheckResult]]]]:
    """(phase name, no-argument check) for every (batch, shots, precision, op); forced layouts on the first
    combination. Each case has its own seed, so one case can be rerun alone."""
    out: list[tuple[str, Callable[[], list[CheckResult]]]] = []
    offset, first = 0, True
    for b in batches:
        for s in shots:
            for p in precisions:
                for op, check in (("FGSA_MSDA", check_msda), ("FGSA_Attention", check_fgsa)):
                    def case(check=check, b=b, s=s, p=p, case_seed=seed + offset, first=first):
                        try:
                            return check(ops, b, s, p, seed=case_seed, device=device, first=first)
                        finally:
                            _release(device)
                    out.append((f"parity {op} {p} B={b} S={s} (seed {seed + offset})", case))
                    offset += len(_layouts(first))
            first = False
    return out


def result_line(r: CheckResult) -> str:
    head = f"{'ok  ' if r.passed else 'FAIL'} {r.op:15s} {r.precision:14s} B={r.batch:<3d} S={r.shots} {r.layout:34s}"
    if r.error:
        return f"{head} raised {r.error}"
    return (f"{head} err={r.max_abs_err:.2e} tol={r.tolerance:.2e} (torch {r.precision}: "
            f"{r.torch_same_precision_err:.2e}) written={r.all_written} bad-links-zero={r.invalid_links_zero}")


def run_checks(ops: Ops, *, batches: Sequence[int], shots: Sequence[int], precisions: Sequence[str], seed: int,
               device: str, log: Callable[[str], None] = print) -> list[CheckResult]:
    """Parity of both ops for every (batch, shots, precision); forced layouts on the first combination."""
    results: list[CheckResult] = []
    for _, case in parity_cases(ops, batches=batches, shots=shots, precisions=precisions, seed=seed, device=device):
        for r in case():
            results.append(r)
            log(result_line(r))
    return results


def _release(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()


PYTORCH = "PyTorch reference (grid_sample, 8 x msda)"
MSDA_PREP = "8 x MSDA kernel + PyTorch locations/softmax"
MSDA_TEAM = "8 x MSDA kernel (locations precomputed, team layout)"
MSDA_ITEM = "8 x MSDA kernel (locations precomputed, item layout)"
FUSED_TEAM = "1 x FGSA_Attention kernel (team layout)"
FUSED_ITEM = "1 x FGSA_Attention kernel (item layout)"


def fgsa_module_variants(ops: Ops, case, value_dtype, coord_dtype) -> dict[str, Callable[[], Any]]:
    """One FGSA module computed several ways, each a no-argument callable; every one but the 8 x MSDA kernel
    timings returns [B, K, Hs*M*Dh] (those return the 8 head outputs, so that no concatenation is timed)."""
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

    def msda_x8(layout: str):
        def run():
            for h in range(Hs):
                ops.msda(value_heads[h], shapes, *prepared[h], out=head_outs[h], layout=layout)
            return head_outs
        return run

    def fused(layout: str):
        return lambda: ops.fgsa_attention(value, shapes, ref, links, off, logits, out=fused_out, layout=layout)

    return {
        PYTORCH: torch_reference,
        MSDA_PREP: msda_x8_with_prep,
        MSDA_TEAM: msda_x8("team"),
        MSDA_ITEM: msda_x8("item"),
        FUSED_TEAM: fused("team"),
        FUSED_ITEM: fused("item"),
        "_msda_x8_result": lambda: torch.cat(msda_x8("team")(), dim=-1),
    }


def bench_one(ops: Ops, *, batch: int, precision: str, runs: int, warmup: int, seed: int, device: str,
              timer: Callable[[Callable[[], Any], int, int], dict[str, Any]],
              peak_gbps: float | None) -> list[dict[str, Any]]:
    """Times every way of computing one FGSA module at one (precision, batch); rows in the order of
    fgsa_module_variants, returned together (a failure leaves no partial table)."""
    from kernels.tools import cases, gpu_timing

    vdt, cdt = (_dtype(n) for n in PRECISIONS[precision])
    case = cases.make_fgsa_case(batch, invalid_links=False, seed=seed + batch, device=device)
    variants = fgsa_module_variants(ops, case, vdt, cdt)
    check = variants.pop("_msda_x8_result")
    # The benchmark's own sanity: all ways agree (PyTorch in this precision sets the scale).
    base = variants[PYTORCH]().double()
    fused = variants[FUSED_TEAM]().double()
    agree = max(_max_err(check().double(), fused), _max_err(variants[FUSED_ITEM]().double(), fused))
    nbytes = gpu_timing.fgsa_module_bytes(case, vdt, cdt)
    floor_us = nbytes / (peak_gbps * 1e3) if peak_gbps else None
    baseline = None
    rows = []
    for name, fn in variants.items():
        t = timer(fn, runs, warmup)
        baseline = baseline or t["median_us"]
        rows.append({"precision": precision, "batch": batch, "method": name, **t,
                     "speedup_vs_pytorch": baseline / t["median_us"],
                     "module_bytes": nbytes, "floor_us": floor_us,
                     "x_floor": t["median_us"] / floor_us if floor_us else None,
                     "max_diff_fused_vs_pytorch": _max_err(fused, base),
                     "max_diff_msda_x8_and_item_vs_fused": agree})
    return rows


def bench_cases(ops: Ops, *, batches: Sequence[int], precisions: Sequence[str], runs: int, warmup: int, seed: int,
                device: str, timer: Callable[[Callable[[], Any], int, int], dict[str, Any]] | None = None,
                peak_gbps: float | None = None) -> list[tuple[str, Callable[[], list[dict[str, Any]]]]]:
    """(phase name, no-argument timing) per (precision, batch)."""
    from kernels.tools import gpu_timing

    timer = timer or gpu_timing.time_gpu
    out = []
    for p in precisions:
        for b in batches:
            def one(p=p, b=b):
                try:
                    return bench_one(ops, batch=b, precision=p, runs=runs, warmup=warmup, seed=seed, device=device,
                                     timer=timer, peak_gbps=peak_gbps)
                finally:
                    _release(device)
            out.append((f"timing FGSA module {p} B={b}", one))
    return out


def run_bench(ops: Ops, *, batches: Sequence[int], precisions: Sequence[str], runs: int, warmup: int, seed: int,
              device: str, timer: Callable[[Callable[[], Any], int, int], dict[str, Any]] | None = None,
              peak_gbps: float | None = None) -> list[dict[str, Any]]:
    """Times every way of computing one FGSA module; rows in the order of fgsa_module_variants."""
    return [row for _, one in bench_cases(ops, batches=batches, precisions=precisions, runs=runs, warmup=warmup,
                                          seed=seed, device=device, timer=timer, peak_gbps=peak_gbps)
            for row in one()]


def layout_verdict(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (precision, batch): which layout is faster for FGSA_Attention and for 8 x MSDA, and the targets
    of issue 15 (FP16 B = 64 within 1.5x of the memory floor and 3x faster than 8 MSDA launches, B = 1 under
    10 us per module)."""
    out = []
    by_key: dict[tuple[str, int], dict[str, float]] = {}
    for r in rows:
        by_key.setdefault((r["precision"], r["batch"]), {})[r["method"]] = r
    for (p, b), m in by_key.items():
        best_fused = min(m[FUSED_TEAM]["median_us"], m[FUSED_ITEM]["median_us"])
        entry = {"precision": p, "batch": b,
                 "fgsa_faster": "item" if m[FUSED_ITEM]["median_us"] < m[FUSED_TEAM]["median_us"] else "team",
                 "fgsa_item_over_team": m[FUSED_ITEM]["median_us"] / m[FUSED_TEAM]["median_us"],
                 "msda_faster": "item" if m[MSDA_ITEM]["median_us"] < m[MSDA_TEAM]["median_us"] else "team",
                 "msda_item_over_team": m[MSDA_ITEM]["median_us"] / m[MSDA_TEAM]["median_us"],
                 "best_fused_us": best_fused,
                 "fused_speedup_vs_msda_x8": min(m[MSDA_TEAM]["median_us"], m[MSDA_ITEM]["median_us"]) / best_fused}
        floor = m[FUSED_TEAM].get("floor_us")
        entry["best_fused_x_floor"] = best_fused / floor if floor else None
        if b == 1:
            entry["target_b1_under_10us"] = best_fused < 10.0
        if b >= 64 and p == "fp16":
            entry["target_within_1.5x_floor"] = bool(floor) and best_fused <= 1.5 * floor
            entry["target_3x_vs_msda_x8"] = entry["fused_speedup_vs_msda_x8"] >= 3.0
        out.append(entry)
    return out


def check_launch_status(ext, ops: Ops, device: str) -> dict[str, Any]:
    """A launcher must report its own launch: with an unrelated error left in the thread's last-error slot
    (cudaSetDevice(-1)), a valid launch must still succeed."""
    from kernels.tools import cases

    case = cases.make_msda_case(1, queries=3, seed=0, device=device)
    value, loc, w = (t.float() for t in (case.value, case.sampling_locations, case.attention_weights))
    planted = int(ext.leave_unrelated_error())
    try:
        ops.msda(value, case.spatial_shapes, loc, w)
        raised = ""
    except RuntimeError as e:
        raised = str(e).splitlines()[0]
    left = int(ext.take_last_error())
    return {"planted_error": planted, "launch_raised": raised, "last_error_after": left,
            "passed": planted != 0 and not raised}


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| precision | batch | method | median (us) | p10-p90 (us) | eager (us) | x floor | speed-up vs PyTorch |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        eager = r.get("eager_median_us")
        x_floor = r.get("x_floor")
        lines.append(f"| {r['precision']} | {r['batch']} | {r['method']} | {r['median_us']:.1f} | "
                     f"{r['p10_us']:.1f}-{r['p90_us']:.1f} | {'' if eager is None else f'{eager:.1f}'} | "
                     f"{'' if x_floor is None else f'{x_floor:.2f}'} | {r['speedup_vs_pytorch']:.2f}x |")
    return "\n".join(lines)


def verdict_table(verdicts: Sequence[dict[str, Any]]) -> str:
    lines = ["| precision | batch | FGSA faster layout (item/team) | MSDA faster layout (item/team) | best fused (us) "
             "| fused vs 8 x MSDA | fused x floor |", "|---|---|---|---|---|---|---|"]
    for v in verdicts:
        x = v["best_fused_x_floor"]
        lines.append(f"| {v['precision']} | {v['batch']} | {v['fgsa_faster']} ({v['fgsa_item_over_team']:.2f}) | "
                     f"{v['msda_faster']} ({v['msda_item_over_team']:.2f}) | {v['best_fused_us']:.1f} | "
                     f"{v['fused_speedup_vs_msda_x8']:.2f}x | {'' if x is None else f'{x:.2f}'} |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kernels.tools.gpu_check",
                                     description="Parity and timing of the fgsa CUDA kernels on this GPU.")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64], help="B values (default 1 64)")
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5], help="S values; batch = B*S (default 1 5)")
    parser.add_argument("--precisions", nargs="+", choices=sorted(PRECISIONS), default=list(PRECISIONS))
    parser.add_argument("--bench-batches", type=int, nargs="+", default=[1, 64],
                        help="batches of the FGSA-module timing (default 1 and 64)")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per method (median; at least 100)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None, help="default: fresh, printed")
    parser.add_argument("--skip-bench", action="store_true")
    parser.add_argument("--quick", action="store_true", help="B = 1, S = 1, 100 runs")
    parser.add_argument("--peak-gbps", type=float, default=None,
                        help="DRAM bandwidth for the memory floor (default: memory clock x bus width x 2 from the "
                             "device properties)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON})")
    parser.add_argument("--build-dir", type=Path, default=None,
                        help="torch extension build folder (default build/kernels-torch; a stale lock there is "
                             "removed; a fresh folder, e.g. \"$(mktemp -d)\", always compiles anew)")
    parser.add_argument("--verbose-build", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.shots, args.runs, args.bench_batches = [1], [1], 100, [1]
    if args.runs < 100:
        parser.error(f"--runs must be at least 100 for a stable median, got {args.runs}")
    if args.seed is None:
        args.seed = int(time.time()) % 100_000
    return args


class CudaPlatform:
    """What main() needs from the machine: the CUDA GPU, its torch extension and its ops. Tests pass a
    stand-in with the same four methods (the CPU reference as ops, a build that fails or waits on a lock)."""

    device = "cuda"

    def environment(self) -> dict[str, Any]:
        """torch, the CUDA device and the toolkit; raises ExtensionUnavailable naming what is missing."""
        from kernels import torch_ext

        return torch_ext.check_environment()

    def versions(self) -> dict[str, Any]:
        """What the report names before anything runs (so that a refusal says which torch refused)."""
        import torch

        return {"torch": torch.__version__, "cuda": torch.version.cuda}

    def describe(self) -> dict[str, Any]:
        import torch

        from kernels import torch_ext
        from kernels.tools import gpu_timing

        props = torch.cuda.get_device_properties(0)
        peak, source = gpu_timing.peak_gbps(props)
        _, arch = torch_ext.arch_flags((props.major, props.minor))
        return {"device": props.name, "capability": f"sm_{props.major}{props.minor}", "peak_gbps": peak,
                "peak_gbps_source": source, "arch": arch, "torch": torch.__version__, "cuda": torch.version.cuda}

    def build(self, build_dir: Path, verbose: bool):
        from kernels import torch_ext

        return torch_ext.load(build_dir=build_dir, verbose=verbose)

    def ops(self, ext) -> Ops:
        return ExtensionOps(ext)


def choose_build_dir(requested: Path | None) -> tuple[Path, str]:
    """The folder to build in and why: the requested one (default build/kernels-torch) once a stale torch
    build lock is removed from it; a fresh temporary folder where a live build holds the lock (torch would
    wait for it with no time limit) or where this system cannot tell."""
    import tempfile

    from kernels import torch_ext
    from kernels.torch_ext import build_lock

    build_dir = Path(requested or torch_ext.DEFAULT_BUILD_DIR)
    usable, note = build_lock.clear_stale_lock(build_dir)
    if usable:
        return build_dir, note
    fresh = Path(tempfile.mkdtemp(prefix="fgsa-torch-ext-"))
    return fresh, f"{note}; building in a fresh folder {fresh} instead"


def main(argv: Sequence[str] | None = None, platform: CudaPlatform | None = None) -> int:
    """Exit status: 0 every phase passed, 1 some phase failed or raised (the JSON holds which, and why),
    2 nothing could run (no GPU, torch without CUDA, no toolkit). The JSON is rewritten after every phase."""
    from kernels.tools import phases

    args = parse_args(argv)
    phases.line_buffered_stdout()
    previous_handler = phases.terminate_as_exception()
    platform = platform or CudaPlatform()
    report: dict[str, Any] = {"tool": "python -m kernels.tools.gpu_check", "argv": list(sys.argv[1:] if argv is None
                                                                                         else argv),
                              "python": platform_module.python_version(), "seed": args.seed, "finished": False,
                              "launch_status": None, "checks": [], "bench": [], "layout_verdict": []}
    run = phases.Phases(args.json, report)
    try:
        return _run(args, platform, run, report)
    except phases.Terminated as exc:
        report["error"] = f"terminated ({exc}) after {run.elapsed():.0f} s"
        phases.say(f"gpu_check: {report['error']}; partial results in {args.json}")
        return 1
    finally:
        run.write()
        phases.restore_terminate(previous_handler)


def _run(args: argparse.Namespace, platform: CudaPlatform, run, report: dict[str, Any]) -> int:
    from kernels.tools import phases

    try:
        report.update(getattr(platform, "versions", dict)())
    except Exception as exc:  # torch itself does not import: the environment phase says so next
        report["versions_error"] = f"{type(exc).__name__}: {exc}"
    toolchain = run.run("environment (CUDA device, torch, toolkit)", platform.environment)
    if toolchain is None:
        error = run.phases[-1].get("message", "")
        report["error"] = error
        print(f"gpu_check: {error}. This check needs a CUDA GPU, a CUDA build of torch and a CUDA toolkit (nvcc).",
              file=sys.stderr, flush=True)
        return 2
    report["toolchain"] = toolchain
    report.update(run.run("device properties", platform.describe) or {})
    peak = args.peak_gbps or report.get("peak_gbps")
    if args.peak_gbps:
        report["peak_gbps"], report["peak_gbps_source"] = args.peak_gbps, "--peak-gbps"
    phases.say(f"device: {report.get('device')} ({report.get('capability')}), torch {report.get('torch')}, CUDA "
               f"{report.get('cuda')}, seed {args.seed}; toolkit {toolchain.get('cuda_home')}, ninja "
               f"{toolchain.get('ninja') or 'none (setuptools)'}; {report.get('arch', '')}\n"
               f"memory bandwidth for the floor: {peak} GB/s ({report.get('peak_gbps_source')})")

    def build():
        build_dir, lock_note = choose_build_dir(args.build_dir)
        report["build_dir"], report["build_lock"] = str(build_dir), lock_note
        phases.say(f"build folder {build_dir}: {lock_note}")
        return platform.build(build_dir, args.verbose_build)

    ext = run.run("build torch extension", build)
    if ext is None:
        report["error"] = f"the torch extension did not build: {run.phases[-1].get('message', '')}"
        return 1
    ops = platform.ops(ext)
    device = platform.device

    def keep_status(status):
        report["launch_status"] = status
        phases.say(f"launch status with an unrelated earlier error: {status}")

    run.run("launch status (an unrelated earlier error is not this launch's)",
            lambda: check_launch_status(ext, ops, device), verdict=lambda st: st["passed"], keep=keep_status)

    def keep_checks(results):
        report["checks"].extend(asdict(r) for r in results)
        for r in results:
            phases.say(result_line(r))

    for name, case in parity_cases(ops, batches=args.batches, shots=args.shots, precisions=args.precisions,
                                   seed=args.seed, device=device):
        run.run(name, case, verdict=lambda rs: all(r.passed for r in rs), keep=keep_checks)
    if not args.skip_bench:
        for name, one in bench_cases(ops, batches=args.bench_batches, precisions=[
                p for p in ("fp32", "fp16") if p in args.precisions], runs=args.runs, warmup=args.warmup,
                seed=args.seed, device=device, peak_gbps=peak):
            run.run(name, one, keep=report["bench"].extend)
    if report["bench"]:
        report["layout_verdict"] = layout_verdict(report["bench"])
        phases.say("\n" + markdown_table(report["bench"]) + "\n\n" + verdict_table(report["layout_verdict"]) + "\n")
    report["finished"] = True
    checks = report["checks"]
    phases.say(f"{sum(r['passed'] for r in checks)}/{len(checks)} parity checks passed; phases: "
               f"{run.count(phases.PASS)} passed, {run.count(phases.FAIL)} failed, {run.count(phases.ERROR)} raised, "
               f"{run.count(phases.SKIPPED)} skipped; {run.elapsed():.0f} s; results in {args.json}")
    return run.exit_code()


if __name__ == "__main__":
    raise SystemExit(main())
