"""kernels.torch_ext.arch_flags: the extension is built for the visible GPU only, whatever
TORCH_CUDA_ARCH_LIST says (checked against torch's own flag logic; nothing is compiled)."""

from __future__ import annotations

from torch.utils import cpp_extension

from kernels import torch_ext

PRESET = "6.0 7.0 8.0 8.6 9.0+PTX"  # as GPU images set it; 6.0 and 7.0 stop nvcc 13


def test_a_preset_arch_list_is_ignored_and_said(monkeypatch):
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", PRESET)
    flags, note = torch_ext.arch_flags((9, 0))
    assert flags == ["-gencode=arch=compute_90,code=sm_90"]
    assert note == (f"building for sm_90 only (this GPU); TORCH_CUDA_ARCH_LIST={PRESET!r} from the environment "
                    "is ignored")
    # torch alone would compile every kernel six times, twice for architectures nvcc 13 refuses:
    assert "-gencode=arch=compute_60,code=sm_60" in cpp_extension._get_cuda_arch_flags(["-O3"])
    # with our flag among the extension's nvcc flags, torch adds none of its own
    assert cpp_extension._get_cuda_arch_flags(["-O3", "-lineinfo", *flags]) == []


def test_without_a_preset_the_note_says_only_the_architecture():
    flags, note = torch_ext.arch_flags((8, 6), {})
    assert flags == ["-gencode=arch=compute_86,code=sm_86"] and note == "building for sm_86 only (this GPU)"
