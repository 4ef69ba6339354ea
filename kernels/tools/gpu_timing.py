"""Timing helpers of the GPU check: CUDA events around eager calls or around CUDA-graph replays, and the
memory floor of one FGSA module.

At batch 1 a kernel runs for a few microseconds while a Python call into torch costs 10-30 us, so eager
timings measure Python. :func:`time_cuda_graph` captures `calls` back-to-back calls into one CUDA graph and
times its replays: per call, only the GPU's own time (launch gaps included) remains.
"""

from __future__ import annotations

from typing import Any, Callable

# Peak DRAM bandwidth in GB/s by GPU name (first match): only where the device properties hold no memory clock.
# A name is not enough where one name covers several memory systems (H100 SXM 3350, PCIe 2000, NVL 3900).
PEAK_GBPS = (("H200", 4800.0), ("H100", 3350.0), ("H800", 3350.0), ("B200", 8000.0), ("A100", 2039.0),
             ("L40S", 864.0), ("L40", 864.0), ("A10", 600.0), ("L4", 300.0), ("RTX 4090", 1008.0))


def peak_gbps_by_name(device_name: str) -> float | None:
    for key, gbps in PEAK_GBPS:
        if key in device_name:
            return gbps
    return None


def peak_gbps(props) -> tuple[float | None, str]:
    """(peak DRAM bandwidth in GB/s, where it comes from) for torch.cuda.get_device_properties(): memory
    clock (kHz) x bus width (bytes) x 2 (double data rate) where the properties have them, else the name
    table, else None (no memory floor)."""
    clock_khz = int(getattr(props, "memory_clock_rate", 0) or 0)
    bus_bits = int(getattr(props, "memory_bus_width", 0) or 0)
    if clock_khz > 0 and bus_bits > 0:
        gbps = clock_khz * 1e3 * (bus_bits / 8) * 2 / 1e9
        return gbps, f"device properties: {clock_khz / 1e3:.0f} MHz memory clock x {bus_bits}-bit bus x 2"
    by_name = peak_gbps_by_name(props.name)
    if by_name is not None:
        return by_name, f"by GPU name ({props.name}; the properties hold no memory clock)"
    return None, f"unknown ({props.name}: no memory clock in the properties, not in the name table; --peak-gbps)"


def _percentiles(us: list[float]) -> dict[str, float]:
    us = sorted(us)
    return {"median_us": us[len(us) // 2], "p10_us": us[len(us) // 10], "p90_us": us[(len(us) * 9) // 10]}


def time_cuda(fn: Callable[[], Any], runs: int, warmup: int) -> dict[str, float]:
    """Median, p10 and p90 in microseconds of `runs` eager calls, each between two CUDA events."""
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
    return _percentiles([s.elapsed_time(e) * 1000.0 for s, e in zip(starts, ends)])


def time_cuda_graph(fn: Callable[[], Any], runs: int, warmup: int, calls: int = 20) -> dict[str, float]:
    """Per-call median, p10 and p90 (us) of `runs` replays of a CUDA graph holding `calls` calls of fn."""
    import torch

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
        for _ in range(max(warmup, 3)):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    for _ in range(3):
        graph.replay()
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    for i in range(runs):
        starts[i].record()
        graph.replay()
        ends[i].record()
    torch.cuda.synchronize()
    return _percentiles([s.elapsed_time(e) * 1000.0 / calls for s, e in zip(starts, ends)])


def graph_calls(eager_us: float) -> int:
    """Calls per captured graph: 20 for microsecond-scale work, fewer where one call already takes long
    enough that Python's overhead does not matter (keeps a 5 ms PyTorch call from costing minutes)."""
    return max(1, min(20, int(1000.0 / max(eager_us, 1e-3))))


def time_gpu(fn: Callable[[], Any], runs: int, warmup: int) -> dict[str, Any]:
    """CUDA-graph timing (the figure to compare) plus the eager median (what a Python caller sees); falls
    back to eager timing, and says so, where capture fails."""
    eager = time_cuda(fn, runs, warmup)
    try:
        graph = time_cuda_graph(fn, runs, warmup, calls=graph_calls(eager["median_us"]))
    except RuntimeError as e:  # torch raises RuntimeError for capture failures
        return {**eager, "timing": f"eager (CUDA graph capture failed: {str(e).splitlines()[0]})",
                "eager_median_us": eager["median_us"]}
    return {**graph, "timing": "cuda-graph", "eager_median_us": eager["median_us"]}


def fgsa_module_bytes(case, value_dtype, coord_dtype) -> int:
    """Bytes one FGSA module must move at least: every input read once, the output written once."""
    import torch

    v = torch.tensor([], dtype=value_dtype).element_size()
    c = torch.tensor([], dtype=coord_dtype).element_size()
    B, K, _ = case.links.shape
    HM, Dh = case.value.shape[2], case.value.shape[3]
    return (case.value.numel() * v + B * K * HM * Dh * v + case.links.numel() * 4 +
            (case.ref_points.numel() + case.offsets.numel() + case.logits.numel()) * c)
