"""kernels.torch_ext.toolchain: the CUDA toolkit behind an nvcc wrapper script, and ninja, found for the
torch extension build (fake toolkits in tmp_path; nothing is compiled)."""

from __future__ import annotations

import os
import shutil
import sys
import types

from kernels.torch_ext import toolchain


def _toolkit(root):
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "nvcc").write_text("#!/bin/sh\n")
    (root / "bin" / "nvcc").chmod(0o755)
    (root / "targets" / "x86_64-linux" / "include").mkdir(parents=True)
    (root / "targets" / "x86_64-linux" / "include" / "cuda_runtime.h").write_text("// fake\n")
    return root


def _wrapper(bin_dir, toolkit):
    """An nvcc like /usr/local/bin/nvcc: a script in a directory whose parent is no toolkit, which answers
    --dryrun with the real toolkit's TOP, as nvcc does."""
    bin_dir.mkdir(parents=True)
    nvcc = bin_dir / "nvcc"
    nvcc.write_text(f'#!/bin/sh\necho "#$ _HERE_={toolkit}/bin" >&2\necho "#$ TOP={toolkit}/bin/.." >&2\n')
    nvcc.chmod(0o755)
    return nvcc


def test_wrapper_nvcc_leads_to_the_real_toolkit(tmp_path):
    real = _toolkit(tmp_path / "cuda-13.0")
    _wrapper(tmp_path / "usr" / "bin", real)
    home, tried = toolchain.find_cuda_home({"PATH": str(tmp_path / "usr" / "bin")})
    assert home == real.resolve()
    assert any("resolved" in t and str(tmp_path / "usr") in t for t in tried)  # the wrapper's parent was refused


def test_cuda_home_wins_when_it_is_a_toolkit(tmp_path):
    real = _toolkit(tmp_path / "cuda")
    assert toolchain.find_cuda_home({"CUDA_HOME": str(real), "PATH": ""})[0] == real.resolve()
    home, tried = toolchain.find_cuda_home({"CUDA_HOME": str(tmp_path / "nothing"), "PATH": ""})
    assert tried[0].startswith("CUDA_HOME:") and home != tmp_path / "nothing"


def test_prepare_exports_cuda_home_and_path(tmp_path, monkeypatch):
    real = _toolkit(tmp_path / "cuda-13.0")
    _wrapper(tmp_path / "usr" / "bin", real)
    env = {"PATH": str(tmp_path / "usr" / "bin")}
    monkeypatch.setattr(toolchain, "find_ninja", lambda: None)
    found = toolchain.prepare(env)
    assert env["CUDA_HOME"] == str(real.resolve()) == found["cuda_home"]
    assert env["PATH"].split(os.pathsep)[0] == str(real.resolve() / "bin") and found["ninja"] is None


def test_ninja_from_the_pip_package_when_not_on_path(tmp_path, monkeypatch):
    (tmp_path / "ninja").write_text("#!/bin/sh\n")
    monkeypatch.setattr(shutil, "which", lambda name, path=None: None)
    monkeypatch.setitem(sys.modules, "ninja", types.SimpleNamespace(BIN_DIR=str(tmp_path)))
    assert toolchain.find_ninja() == str(tmp_path / "ninja")
    monkeypatch.setitem(sys.modules, "ninja", None)  # not installed: import fails
    assert toolchain.find_ninja() is None
