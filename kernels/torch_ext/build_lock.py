"""The lock file of torch's extension builder, and when it is stale.

torch.utils.cpp_extension.load() takes ``<build_dir>/lock`` with ``os.open(O_CREAT | O_EXCL)`` (FileBaton),
keeps that descriptor open while it compiles and deletes the file when done; a second builder waits, with
no time limit, for the file to disappear. A build killed by a timeout never deletes it, so every later
build of that folder hangs. The lock is stale exactly when no process has the file open: the builder that
took it holds its descriptor until it removes it, so a live builder shows up in ``/proc/<pid>/fd``.
"""

from __future__ import annotations

import os
from pathlib import Path

LOCK_NAME = "lock"  # FileBaton(os.path.join(build_directory, 'lock')) in torch.utils.cpp_extension


def lock_holders(lock: Path, proc: Path = Path("/proc")) -> list[int] | None:
    """Ids of the processes that have ``lock`` open, or None where ``proc`` cannot tell (no /proc, or the
    descriptors of a process of the lock's owner could not be read). Only the owner's processes are looked
    at: the builder that holds the lock created the file."""
    if not proc.is_dir():
        return None
    target = os.path.realpath(lock)
    try:
        owner = os.stat(lock).st_uid
    except OSError:  # removed meanwhile: nobody holds it
        return []
    holders, unreadable = [], False
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != owner:
                continue
            fds = list((entry / "fd").iterdir())
        except PermissionError:
            unreadable = True
            continue
        except OSError:  # the process ended while we looked
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == target:
                    holders.append(int(entry.name))
                    break
            except OSError:
                continue
    return holders if holders or not unreadable else None


def clear_stale_lock(build_dir: Path, proc: Path = Path("/proc")) -> tuple[bool, str]:
    """(usable, what was found): removes ``build_dir``'s lock when no process holds it. Not usable (a
    builder holds it, or /proc cannot tell) means: build in another folder rather than wait."""
    lock = Path(build_dir) / LOCK_NAME
    if not lock.exists():
        return True, f"no build lock in {build_dir}"
    holders = lock_holders(lock, proc)
    if holders is None:
        return False, f"{lock} exists and this system cannot tell whether a builder holds it"
    if holders:
        return False, f"{lock} is held by a running build (process {', '.join(map(str, holders))})"
    lock.unlink(missing_ok=True)
    return True, f"removed a stale build lock {lock} (no process holds it: a killed build left it)"
