"""python -m kernels.tools.gpu_check end to end on the CPU: a stand-in platform (the CPU reference as the ops)
whose build or one case fails. The JSON must hold the finished phases and the error, the exit status must
say so, and a stale torch build lock must not make the build wait."""

from __future__ import annotations

import json
import os
import re
import signal
import threading

import pytest

from kernels.tools import gpu_check, phases
from kernels.torch_ext import build_lock

QUICK = ["--quick", "--precisions", "fp32", "--skip-bench", "--seed", "5"]


class _Ext:
    """The extension's two launch-status helpers (the check's first phase after the build)."""

    def __init__(self):
        self.planted = False

    def leave_unrelated_error(self):
        self.planted = True
        return 101

    def take_last_error(self):
        return 101 if self.planted else 0


class Platform:
    """gpu_check.CudaPlatform's four methods, on the CPU."""

    device = "cpu"

    def __init__(self, ops, build=None):
        self._ops, self._build = ops, build
        self.built_in = None

    def environment(self):
        return {"cuda_home": "/fake/cuda", "nvcc": "/fake/cuda/bin/nvcc", "ninja": None}

    def describe(self):
        return {"device": "CPU stand-in", "capability": "sm_00", "peak_gbps": None, "peak_gbps_source": "none",
                "arch": "no architecture", "torch": "cpu", "cuda": None}

    def build(self, build_dir, verbose):
        self.built_in = build_dir
        return self._build(build_dir) if self._build else _Ext()

    def ops(self, ext):
        return self._ops


def _report(path):
    return json.loads(path.read_text())


def test_a_clean_run_passes_every_phase(cpu_ops, tmp_path, capsys):
    out = tmp_path / "r.json"
    code = gpu_check.main([*QUICK, "--json", str(out), "--build-dir", str(tmp_path / "b")], Platform(cpu_ops))
    report = _report(out)
    names = [p["name"] for p in report["phases"]]
    assert code == 0 and report["passed"] and report["finished"]
    assert names[:4] == ["environment (CUDA device, torch, toolkit)", "device properties", "build torch extension",
                         "launch status (an unrelated earlier error is not this launch's)"]
    assert [n.split(" (seed")[0] for n in names[4:]] == ["parity FGSA_MSDA fp32 B=1 S=1",
                                                         "parity FGSA_Attention fp32 B=1 S=1"]
    n_layouts = len(gpu_check.AUTO_LAYOUTS) + len(gpu_check.FORCED_LAYOUTS)
    assert len(report["checks"]) == 2 * n_layouts and all(c["passed"] for c in report["checks"])
    # one progress line per phase, with the elapsed seconds, as the phase starts and as it ends
    lines = capsys.readouterr().out.splitlines()
    for name in names:
        assert any(re.fullmatch(rf"\[\s*\d+\.\d s\] PASS\s+{re.escape(name)} \(\d+\.\d s\)", ln) for ln in lines), name


@pytest.mark.parametrize("failure", [RuntimeError("Error building extension 'fgsa_torch_ext': nvcc fatal: bad"),
                                     SystemExit("error: command '/usr/local/cuda/bin/nvcc' failed with exit code 1")])
def test_a_failed_build_is_reported_with_its_error(cpu_ops, tmp_path, failure):
    def build(build_dir):
        raise failure

    out = tmp_path / "r.json"
    code = gpu_check.main([*QUICK, "--json", str(out), "--build-dir", str(tmp_path / "b")], Platform(cpu_ops, build))
    report = _report(out)
    assert code == 1 and report["passed"] is False and report["finished"] is False
    assert [(p["name"], p["status"]) for p in report["phases"]] == [
        ("environment (CUDA device, torch, toolkit)", "pass"), ("device properties", "pass"),
        ("build torch extension", "error")]
    assert str(failure) in report["phases"][2]["message"] and str(failure) in report["error"]


class _ItemLayoutRefused:
    """A launcher whose TORCH_CHECK refuses the item layout of FGSA_Attention; it also records what the JSON
    file held when it was called (the report is written after every phase, not only at the end)."""

    def __init__(self, ops, json_path):
        self.ops, self.json_path, self.seen_phases = ops, json_path, None

    def msda(self, *a, **kw):
        return self.ops.msda(*a, **kw)

    def fgsa_attention(self, *a, layout="team", **kw):
        if layout == "item":
            self.seen_phases = [p["name"] for p in _report(self.json_path)["phases"]]
            raise RuntimeError("fgsa_attention_out: expected a contiguous value tensor (TORCH_CHECK)")
        return self.ops.fgsa_attention(*a, layout=layout, **kw)


def test_one_case_that_raises_fails_only_that_case(cpu_ops, tmp_path):
    out = tmp_path / "r.json"
    ops = _ItemLayoutRefused(cpu_ops, out)
    code = gpu_check.main([*QUICK, "--json", str(out), "--build-dir", str(tmp_path / "b")], Platform(ops))
    report = _report(out)
    statuses = {p["name"].split(" (seed")[0]: p["status"] for p in report["phases"]}
    assert code == 1 and report["finished"] and not report["passed"]
    assert statuses["parity FGSA_MSDA fp32 B=1 S=1"] == "pass"
    assert statuses["parity FGSA_Attention fp32 B=1 S=1"] == "fail"
    raised = [c for c in report["checks"] if c["error"]]
    assert raised and all(c["layout"].startswith("item") and "TORCH_CHECK" in c["error"] for c in raised)
    assert any(c["op"] == "FGSA_Attention" and c["layout"].startswith("team") and c["passed"] for c in report["checks"])
    assert "parity FGSA_MSDA fp32 B=1 S=1" in [n.split(" (seed")[0] for n in ops.seen_phases]


def test_a_lost_cuda_context_skips_the_rest_and_keeps_what_ran(cpu_ops, tmp_path, monkeypatch):
    def crash(*a, **kw):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(gpu_check, "check_msda", crash)
    out = tmp_path / "r.json"
    code = gpu_check.main(["--batches", "1", "--shots", "1", "--precisions", "fp32", "fp16", "--skip-bench",
                           "--json", str(out), "--build-dir", str(tmp_path / "b")], Platform(cpu_ops))
    report = _report(out)
    parity = [p for p in report["phases"] if p["name"].startswith("parity")]
    assert code == 1
    assert [p["status"] for p in parity] == ["error", "skipped", "skipped", "skipped"]
    assert "illegal memory access" in parity[0]["message"] and "lost in parity FGSA_MSDA" in parity[1]["message"]


def test_a_stale_build_lock_does_not_make_the_build_wait(cpu_ops, tmp_path):
    """The stand-in build takes the lock as torch's load() does (FileBaton: try_acquire, else wait while the
    file exists); a lock left by a killed build would make it wait forever."""
    from torch.utils.file_baton import FileBaton

    build_dir = tmp_path / "kernels-torch"
    build_dir.mkdir()
    (build_dir / build_lock.LOCK_NAME).touch()

    def build(folder):
        baton = FileBaton(os.path.join(folder, build_lock.LOCK_NAME), wait_seconds=0.01)
        if baton.try_acquire():
            baton.release()
            return _Ext()
        waiter = threading.Thread(target=baton.wait, daemon=True)
        waiter.start()
        waiter.join(timeout=3)
        if waiter.is_alive():
            (build_dir / build_lock.LOCK_NAME).unlink()  # let the waiting thread end
            raise TimeoutError("torch's FileBaton.wait() would wait forever on the stale lock")
        return _Ext()

    out = tmp_path / "r.json"
    platform = Platform(cpu_ops, build)
    code = gpu_check.main([*QUICK, "--json", str(out), "--build-dir", str(build_dir)], platform)
    report = _report(out)
    assert code == 0 and platform.built_in == build_dir
    assert report["build_lock"].startswith("removed a stale build lock") and report["build_dir"] == str(build_dir)


def test_a_held_lock_builds_in_a_fresh_folder(cpu_ops, tmp_path):
    build_dir = tmp_path / "kernels-torch"
    build_dir.mkdir()
    fd = os.open(build_dir / build_lock.LOCK_NAME, os.O_CREAT | os.O_EXCL)  # this process is the live builder
    try:
        out = tmp_path / "r.json"
        platform = Platform(cpu_ops)
        assert gpu_check.main([*QUICK, "--json", str(out), "--build-dir", str(build_dir)], platform) == 0
    finally:
        os.close(fd)
    report = _report(out)
    assert platform.built_in != build_dir and report["build_dir"] == str(platform.built_in)
    assert f"held by a running build (process {os.getpid()})" in report["build_lock"]
    assert "building in a fresh folder" in report["build_lock"]


def test_sigterm_ends_the_run_with_its_report_written(cpu_ops, tmp_path):
    def build(build_dir):
        signal.raise_signal(signal.SIGTERM)  # what `timeout` sends, arriving mid-build
        return _Ext()

    previous = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "r.json"
    code = gpu_check.main([*QUICK, "--json", str(out), "--build-dir", str(tmp_path / "b")], Platform(cpu_ops, build))
    assert signal.getsignal(signal.SIGTERM) is previous  # the run's handler is gone with the run
    report = _report(out)
    assert code == 1 and report["error"].startswith("terminated (signal 15)")
    assert report["phases"][-1]["name"] == "build torch extension" and "interrupted" in report["phases"][-1]["message"]


def test_phase_json_is_replaced_atomically(tmp_path):
    out = tmp_path / "r.json"
    run = phases.Phases(out, {})
    run.run("one", lambda: 1)
    assert [p["name"] for p in _report(out)["phases"]] == ["one"] and not (tmp_path / "r.json.tmp").exists()
