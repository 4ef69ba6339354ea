"""The one way a command of fgsa-deploy starts and ends (no torch, nothing heavy: every stage may import it).

A command is ``main(argv: list[str] | None = None) -> int`` decorated with :func:`command`::

    @command
    def main(argv=None) -> int:
        args = build_parser().parse_args(argv)
        result = run(args)          # library code raises InputError / EngineError (FgsaError)
        print(...)
        return EXIT_OK

The decorator owns the contract every command keeps: a toolkit error becomes ONE line ``error: ...`` on
stderr and exit code 2 (never a traceback), and Python warnings print as one ``warning: ...`` line.
Report commands (Markdown on stdout, ``<out>/<name>.md`` + ``.json`` written all or none) use
:func:`report_main` or :func:`write_report`.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

from fgsa.errors import FgsaError, InputError
from fgsa.files.outputs import write_files

#: exit codes: success; the command ran but its check failed (parity, accuracy, budget); bad input
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def error(message: object, code: int = EXIT_USAGE) -> int:
    """Print ``error: <message>`` on stderr; returns ``code`` (``return error(exc)`` ends a command)."""
    print(f"error: {message}", file=sys.stderr)
    return code


def warn(message: object) -> None:
    """Print ``warning: <message>`` on stderr (the format :func:`one_line_warnings` gives Python warnings)."""
    print(f"warning: {message}", file=sys.stderr)


def one_line_warnings() -> None:
    """Print warnings as one ``warning: ...`` line (the CLIs' format), without file and line of the caller."""
    warnings.formatwarning = lambda message, category, filename, lineno, line=None: f"warning: {message}\n"


def command(main: Callable[..., int] | None = None, *, catch: tuple[type[BaseException], ...] = (),
            one_line: bool = True) -> Callable:
    """Decorate a command's ``main``: an :class:`FgsaError` (or one of ``catch``, e.g. a missing optional
    package) prints :func:`error` and returns :data:`EXIT_USAGE`; ``one_line`` installs
    :func:`one_line_warnings` first (False keeps Python's own warning format for that command)."""
    def wrap(fn: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(fn)
        def run(*args, **kwargs) -> int:
            if one_line:
                one_line_warnings()
            try:
                return fn(*args, **kwargs)
            except (FgsaError, *catch) as exc:
                return error(exc)
        return run
    return wrap if main is None else wrap(main)


def add_checkpoint_and_data(ap) -> None:
    """The flags of the commands that run a checkpoint on a data folder: --ckpt, --config, --data (``--pairs``
    and ``--subset`` are each command's own: their defaults and meaning differ)."""
    ap.add_argument("--ckpt", type=Path, required=True, help="checkpoint (ours, official mmcv, or a bare state_dict)")
    ap.add_argument("--config", default=None, help="model config for checkpoints without one")
    add_data(ap)


#: --data's help: every layout fgsa.data.layout.open_subset reads
DATA_HELP = ("the data set: a folder with annotations/*.json + images/ (MP-100), a folder holding one COCO "
             "keypoint .json next to its images, or a .json file (see --image-root)")


def add_data(ap, required: bool = True) -> None:
    """--data and --image-root, the same in every command that reads a data set."""
    ap.add_argument("--data", type=Path, required=required, default=None, help=DATA_HELP)
    ap.add_argument("--image-root", type=Path, default=None,
                    help="the folder the annotations' file_name values are relative to (default: DATA/images, "
                         "or the .json file's folder)")


class _Renamed(argparse.Action):
    """A flag whose old name means something else in other commands: one error that names the new flag."""

    def __init__(self, option_strings, dest, new: str = "", meaning: str = "", **kwargs):
        kwargs.update(nargs=1, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        super().__init__(option_strings, argparse.SUPPRESS, **kwargs)
        self.new, self.meaning = new, meaning

    def __call__(self, parser, namespace, values, option_string=None):
        raise InputError(option_string, f"{self.new} here ({self.meaning})", f"{option_string} {values[0]}",
                         f"use {self.new} {values[0]} (--episodes means episodes per category, as in "
                         "fgsa.evaluate and runtime.parity; --pairs counts (support, query) pairs)")


def renamed(ap, old: str, new: str, meaning: str) -> None:
    """``old`` refused with one error naming ``new``: one word, one meaning across the commands."""
    ap.add_argument(old, action=_Renamed, new=new, meaning=meaning)


def check_threads(threads: int | None, fix: str | None = "leave it out for the default") -> None:
    """InputError naming ``--threads`` unless it is left out (None) or >= 1."""
    if threads is not None and threads < 1:
        raise InputError("--threads", "a thread count >= 1", threads, fix)


def json_safe(obj: Any) -> Any:
    """JSON-safe: infinities/NaN as strings, tuples as lists, NumPy scalars as Python numbers."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            obj = obj.item()
        except (TypeError, ValueError):
            pass
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


def write_report(out_dir: str | Path, name: str, markdown: str, data: dict, *, clean: bool = True,
                 json_default: Callable[[Any], Any] | None = None, newline: bool = True) -> tuple[Path, Path]:
    """``<out_dir>/<name>.md`` and ``.json``, both or neither (:func:`fgsa.files.outputs.write_files`).
    ``clean`` passes the data through :func:`json_safe`; ``json_default`` serialises what JSON cannot."""
    out = Path(out_dir)
    md, js = out / f"{name}.md", out / f"{name}.json"
    text = json.dumps(json_safe(data) if clean else data, indent=1, sort_keys=False, default=json_default)
    write_files({md: ("--out", (markdown.rstrip() + "\n").encode()),
                 js: ("--out", (text + ("\n" if newline else "")).encode())})
    return md, js


def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


@command
def report_main(name: str, run: Callable[[Any], dict], to_markdown: Callable[[dict], str], args: Any,
                files: Callable[[dict], list] = lambda result: [],
                status: Callable[[dict], int] = lambda result: EXIT_OK) -> int:
    """The report commands' common main: ``run(args)``, write ``<args.out>/<name>.md/.json``, print the
    Markdown and the files written (+ ``files(result)``); returns ``status(result)``."""
    check_threads(getattr(args, "threads", None))
    result = run(args)
    markdown = to_markdown(result)
    md, js = write_report(args.out, name, markdown, result)
    print(markdown)
    print("\nwrote " + ", ".join(str(p) for p in (md, js, *files(result))))
    return status(result)
