"""kernels.tools.gpu_timing on the CPU: the memory floor's bandwidth from the device properties."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kernels.tools import gpu_timing


@pytest.mark.parametrize("name,clock_khz,bus_bits,gbps", [
    ("NVIDIA H100 80GB HBM3", 2_619_000, 5120, 3352.32),  # SXM
    ("NVIDIA H100 PCIe", 1_593_000, 5120, 2039.04),  # the same name table entry "H100" said 3350
    ("NVIDIA H100 NVL", 2_619_000, 6144, 4022.784),
])
def test_bandwidth_is_clock_times_bus_width_times_two(name, clock_khz, bus_bits, gbps):
    props = SimpleNamespace(name=name, memory_clock_rate=clock_khz, memory_bus_width=bus_bits)
    peak, source = gpu_timing.peak_gbps(props)
    assert peak == pytest.approx(gbps, rel=1e-9)
    assert source == f"device properties: {clock_khz / 1e3:.0f} MHz memory clock x {bus_bits}-bit bus x 2"


def test_without_a_memory_clock_the_name_table_is_used_and_said():
    peak, source = gpu_timing.peak_gbps(SimpleNamespace(name="NVIDIA H100 80GB HBM3", memory_clock_rate=0,
                                                        memory_bus_width=5120))
    assert peak == 3350.0 and source.startswith("by GPU name")
    peak, source = gpu_timing.peak_gbps(SimpleNamespace(name="Tesla T4"))
    assert peak is None and "--peak-gbps" in source
