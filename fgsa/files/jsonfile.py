"""Read JSON files that may come from anywhere, and keep the image paths they name inside their folder.

:func:`read_json` bounds what it accepts: at most :data:`MAX_JSON_BYTES` (the unified MP-100 file is about
130 MB) and nesting at most :data:`MAX_JSON_DEPTH` deep (COCO keypoint files are 4 deep); a file outside
either bound, unreadable or not JSON is an :class:`InputError` naming the file (never a RecursionError).
:func:`path_inside` resolves a ``file_name`` from an annotation file against the image folder, symbolic
links included, and refuses absolute names and names that leave the folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fgsa.errors import InputError

MAX_JSON_BYTES = 1 << 30
MAX_JSON_DEPTH = 64


def _depth_within(obj: Any, limit: int) -> bool:
    """Whether ``obj`` nests at most ``limit`` containers deep (iterative: no recursion limit to hit)."""
    stack = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return False
                stack.append((child, depth + 1))
    return True


def read_json(path: str | Path, field: str, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The parsed JSON of ``path``; InputError(``field``) when unreadable, too large, too deep or invalid."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                raise InputError(field, f"a JSON file of at most {max_bytes:,} bytes", f"{size:,} bytes in {path}",
                                 "split the file, or pass max_bytes if you trust it")
            # read what fstat promised, not max_bytes: read(n) allocates n bytes up front
            raw = fh.read(size)
            grew = fh.read(1)
    except OSError as exc:
        raise InputError(field, "a readable JSON file", f"{path} ({exc.strerror or exc})", "check the path") from None
    if grew:
        raise InputError(field, f"a JSON file of at most {max_bytes:,} bytes", f"more in {path}")
    try:
        data = json.loads(raw)
    except RecursionError:
        data = None
        too_deep = True
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "bytes that are not UTF-8"
        raise InputError(field, "valid JSON", f"a parse error{where} of {path}: {msg}", "fix the file") from None
    else:
        too_deep = isinstance(data, (dict, list)) and not _depth_within(data, max_depth)
    if too_deep:
        raise InputError(field, f"JSON nested at most {max_depth} levels deep", f"deeper nesting in {path}",
                         "a COCO keypoint file is 4 levels deep; check where the file came from")
    return data


def path_inside(root: str | Path, name: Any, field: str) -> Path:
    """``root / name`` when it stays inside ``root`` once both are resolved (symbolic links included);
    InputError(``field``) for absolute names, ``..`` escapes and links pointing outside."""
    if not isinstance(name, str) or not name:
        raise InputError(field, "a non-empty relative file name", repr(name)[:80])
    rel = Path(name)
    if rel.is_absolute() or rel.drive:
        raise InputError(field, "a file name relative to the image folder", repr(name)[:200],
                         "image paths in annotation files are relative to the image folder")
    base = Path(root).resolve()
    full = (base / rel).resolve()
    if full != base and base not in full.parents:
        raise InputError(field, f"a file inside the image folder {base}", f"{name!r} -> {full}",
                         "move the image into the folder (links out of it are refused too)")
    return Path(root) / rel
