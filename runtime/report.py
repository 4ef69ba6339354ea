"""Write a CLI's results as Markdown + JSON side by side (``<out>/<name>.md``, ``<out>/<name>.json``)."""

from __future__ import annotations

import json
import math
import platform
import sys
from pathlib import Path
from typing import Any, Callable


def host_info() -> dict:
    import os

    info = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    try:
        info["load_avg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return info


def _clean(obj: Any) -> Any:
    """JSON-safe: infinities/NaN as strings, tuples as lists, NumPy scalars as Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            obj = obj.item()
        except (TypeError, ValueError):
            pass
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


def write_report(out_dir: str | Path, name: str, markdown: str, data: dict) -> tuple[Path, Path]:
    """``<out_dir>/<name>.md`` and ``.json``, both or neither (:func:`fgsa.files.outputs.write_files`)."""
    from fgsa.files.outputs import write_files

    out = Path(out_dir)
    md, js = out / f"{name}.md", out / f"{name}.json"
    write_files({md: ("--out", (markdown.rstrip() + "\n").encode()),
                 js: ("--out", (json.dumps(_clean(data), indent=1, sort_keys=False) + "\n").encode())})
    return md, js


def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def report_main(name: str, run: Callable[[Any], dict], to_markdown: Callable[[dict], str], args: Any,
                files: Callable[[dict], list] = lambda result: [],
                status: Callable[[dict], int] = lambda result: 0) -> int:
    """The report CLIs' common main: ``run(args)``, print its Markdown, write ``<args.out>/<name>.md/.json``
    (+ ``files(result)`` named); a toolkit error prints ``error: ...`` and exits 2."""
    from fgsa.errors import one_line_warnings
    from runtime.errors import FgsaError, InputError

    one_line_warnings()
    try:
        threads = getattr(args, "threads", None)
        if threads is not None and threads < 1:
            raise InputError("--threads", "a thread count >= 1", threads, "leave it out for the default")
        result = run(args)
        markdown = to_markdown(result)
        md, js = write_report(args.out, name, markdown, result)
    except FgsaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown)
    print("\nwrote " + ", ".join(str(p) for p in (md, js, *files(result))))
    return status(result)
