"""TensorRT-RTX's one loader condition for plugin graphs, handled for the user.

When TensorRT-RTX's ONNX parser meets its first plugin node it ``dlopen``s ``libtensorrt_rtx.so`` (the
unversioned name). The pip wheel ships only ``libtensorrt_rtx.so.1``, so without help the parser throws
inside a no-throw path and the process aborts ("terminate called without an active exception"). The
dynamic loader reads ``LD_LIBRARY_PATH`` once, at process start, so the fix cannot be applied inside a
running process: :func:`loader_env` makes a private folder holding a ``libtensorrt_rtx.so`` link to the
wheel's library, and the build of a plugin graph runs in a child process with that folder on its loader
path. Nothing is written into the installed package or outside a temporary folder.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from pathlib import Path

UNVERSIONED = "libtensorrt_rtx.so"
LOADER_ENV = "LD_LIBRARY_PATH"


def versioned_library() -> Path | None:
    """The ``libtensorrt_rtx.so.N`` the ``tensorrt_rtx`` module loads (pip wheel or tarball), or None."""
    spec = importlib.util.find_spec("tensorrt_rtx_libs")
    dirs = list(spec.submodule_search_locations or []) if spec else []
    for d in dirs:
        found = sorted(Path(d).glob(f"{UNVERSIONED}.[0-9]*"))
        if found:
            return found[0]
    try:  # a tarball install: the library is already mapped into this process
        for line in Path("/proc/self/maps").read_text().splitlines():
            path = line.split()[-1]
            if f"/{UNVERSIONED}." in path:
                return Path(path)
    except OSError:
        pass
    return None


def unversioned_on_path(env: dict | None = None) -> bool:
    """True when the parser's ``dlopen("libtensorrt_rtx.so")`` will succeed in a process started with ``env``:
    the name is beside the versioned library (found through its $ORIGIN rpath) or in a loader-path folder."""
    env = os.environ if env is None else env
    lib = versioned_library()
    folders = [lib.parent] if lib else []
    folders += [Path(p) for p in env.get(LOADER_ENV, "").split(os.pathsep) if p]
    return any((f / UNVERSIONED).exists() for f in folders)


def loader_env(folder: Path) -> dict:
    """The environment for a child process whose loader finds ``libtensorrt_rtx.so``: a link in ``folder``
    (a temporary folder the caller owns) to the versioned library, put first on the loader path."""
    lib = versioned_library()
    if lib is None:
        raise FileNotFoundError(f"{UNVERSIONED}.N not found: is tensorrt-rtx installed (pip install tensorrt-rtx-cu12)?")
    link = Path(folder) / UNVERSIONED
    if not link.exists():
        link.symlink_to(lib)
    env = dict(os.environ)
    env[LOADER_ENV] = os.pathsep.join([str(folder)] + [p for p in env.get(LOADER_ENV, "").split(os.pathsep) if p])
    return env


def expose_symbols() -> None:
    """Put TensorRT-RTX's library in the process' global symbol scope, so that a plugin library loaded after it
    resolves ``getPluginRegistry`` / ``getLogger`` there. Our plugin is linked against no TensorRT library (for
    TensorRT-RTX there is no libnvinfer to link), and the Python bindings load TensorRT-RTX's library with
    local scope. dlopen of an already loaded library with RTLD_GLOBAL only widens its scope."""

    lib = versioned_library()
    if lib is not None:
        ctypes.CDLL(str(lib), mode=os.RTLD_GLOBAL)
