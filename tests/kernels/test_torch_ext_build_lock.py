"""kernels.torch_ext.build_lock: torch's extension build lock, removed only when no process holds it."""

from __future__ import annotations

import subprocess
import sys

from kernels.torch_ext import build_lock


def test_a_lock_no_process_holds_is_removed(tmp_path):
    lock = tmp_path / build_lock.LOCK_NAME
    lock.touch()  # what a build killed by a timeout leaves behind
    usable, note = build_lock.clear_stale_lock(tmp_path)
    assert usable and not lock.exists() and note.startswith("removed a stale build lock")
    assert build_lock.clear_stale_lock(tmp_path) == (True, f"no build lock in {tmp_path}")


def test_a_lock_a_live_build_holds_is_kept(tmp_path):
    lock = tmp_path / build_lock.LOCK_NAME
    # torch's FileBaton.try_acquire: os.open(O_CREAT | O_EXCL), the descriptor kept while compiling
    holder = subprocess.Popen([sys.executable, "-c", f"import os, time; os.open({str(lock)!r}, os.O_CREAT | os.O_EXCL);"
                               "print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert build_lock.lock_holders(lock) == [holder.pid]
        usable, note = build_lock.clear_stale_lock(tmp_path)
        assert not usable and lock.exists() and f"process {holder.pid}" in note
    finally:
        holder.kill()
        holder.wait()
    assert build_lock.clear_stale_lock(tmp_path)[0] and not lock.exists()  # its holder is gone: stale now


def test_without_proc_nobody_can_tell(tmp_path):
    (tmp_path / build_lock.LOCK_NAME).touch()
    usable, note = build_lock.clear_stale_lock(tmp_path, proc=tmp_path / "no-proc")
    assert not usable and "cannot tell" in note and (tmp_path / build_lock.LOCK_NAME).exists()
