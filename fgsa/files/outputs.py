"""Write a command's output files all or none, never through a symbolic link (no torch).

``python -m runtime.predict`` writes a PNG and optionally a JSON; reports write Markdown + JSON. Paths are
checked before anything is written (a symlink, a directory, an unknown image extension or a parent that
cannot be created is an :class:`InputError` naming the flag), the bytes are prepared in memory, and each
file is written to a temporary name in its folder and renamed over the target: a link planted after the
check is replaced, never followed, and a failure leaves no half-written result. The files get the
permissions the umask gives any new file (0644 under the usual 022), as the ONNX exports do.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Mapping

from fgsa.errors import InputError

#: image extensions OpenCV can write without extra codecs (the predict / parity pictures)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def check_output_path(path: str | Path, field: str, extensions: tuple[str, ...] | None = None) -> Path:
    """``path`` as a Path if a regular file may be written there; InputError naming ``field`` otherwise."""
    path = Path(path)
    if path.is_symlink():
        raise InputError(field, "a path that is not a symbolic link (outputs are never written through links)",
                         f"{path} -> {os.readlink(path)}", "remove the link or choose another path")
    if path.is_dir():
        raise InputError(field, "a file path", f"{path}, an existing directory",
                         f"name a file inside it, e.g. {path / ('out' + (extensions or ('.json',))[0])}")
    if extensions is not None and path.suffix.lower() not in extensions:
        raise InputError(field, f"a file name ending in one of {', '.join(extensions)}",
                         repr(path.name), f"e.g. {path.with_suffix(extensions[0]).name}")
    for parent in [path.parent, *path.parent.parents]:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise InputError(field, "a path whose folders are folders", f"{parent} is a file",
                                 "choose another path")
            if not os.access(parent, os.W_OK | os.X_OK) and parent == path.parent:
                raise InputError(field, "a writable folder", f"{parent} is not writable", "choose another path")
            break
    return path


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (``os.umask`` can only be read by
    setting it, which races with other threads creating files)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_files(files: Mapping[Path, tuple[str, bytes]]) -> list[Path]:
    """Write ``{path: (field, bytes)}``: every path is checked first, then each file goes to a temporary name
    next to it and all are renamed into place. Returns the paths written."""
    checked = [(check_output_path(p, field), data, field) for p, (field, data) in files.items()]
    temps: list[tuple[str, Path]] = []
    try:
        for path, data, field in checked:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
                temps.append((tmp, path))
                os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; outputs follow the umask
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
            except OSError as exc:
                raise InputError(field, "a path where a file can be written", f"{path} ({exc.strerror or exc})",
                                 "choose another path") from None
        for tmp, path in temps:
            os.replace(tmp, path)  # replaces a link at ``path`` itself, never its target
    finally:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return [p for p, _, _ in checked]
