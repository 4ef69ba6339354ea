"""Phases of a GPU check run: each one's outcome is recorded, printed and saved as soon as it ends.

A lent GPU runs one call for a few minutes, and anything can end it: a compile error, a TORCH_CHECK in a
launcher, an out-of-memory error, an illegal address, the caller's timeout. So every phase (the build, each
parity case, each timing) records pass / fail / error with its message and seconds, prints one flushed
progress line, and the whole report is rewritten to the JSON file after every phase and once more at the
end, however the run ends (also on SIGTERM, which `timeout` sends).
"""

from __future__ import annotations

import json
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

PASS, FAIL, ERROR, SKIPPED = "pass", "fail", "error", "skipped"

# CUDA errors after which the context is unusable: every later phase would fail with the same error.
CONTEXT_LOST = ("illegal memory access", "unspecified launch failure", "misaligned address",
                "illegal instruction", "an illegal address", "device-side assert")


def say(text: str) -> None:
    print(text, flush=True)


class Phases:
    """The report of one run (a dict written to ``path``) and its phases, in order."""

    def __init__(self, path: Path, report: dict[str, Any], clock: Callable[[], float] = time.perf_counter):
        self.path, self.report, self.clock = path, report, clock
        self.t0 = clock()
        self.lost: str | None = None  # the phase after which the CUDA context was lost
        report.setdefault("phases", [])
        self.write()

    @property
    def phases(self) -> list[dict[str, Any]]:
        return self.report["phases"]

    def elapsed(self) -> float:
        return self.clock() - self.t0

    def run(self, name: str, fn: Callable[[], Any], verdict: Callable[[Any], bool] = lambda _: True,
            keep: Callable[[Any], None] | None = None) -> Any:
        """Runs phase ``name``; returns fn's result (None when it raised or was skipped). ``verdict`` says
        whether a result passed; ``keep`` stores it in the report before the report is written."""
        entry: dict[str, Any] = {"name": name}
        if self.lost is not None:
            entry.update(status=SKIPPED, seconds=0.0, message=f"the CUDA context was lost in {self.lost}")
            return self._done(entry, None)
        say(f"[{self.elapsed():7.1f} s] {name} ...")
        start = self.clock()
        result = None
        try:
            result = fn()
            entry["status"] = PASS if verdict(result) else FAIL
            if keep is not None:
                keep(result)
        except (Exception, SystemExit) as exc:  # SystemExit: setuptools reports a compile error by exiting
            message = f"{type(exc).__name__}: {exc}".strip()
            entry.update(status=ERROR, message=message, traceback=traceback.format_exc(limit=8))
            if any(marker in message.lower() for marker in CONTEXT_LOST):
                self.lost = name
        except BaseException as exc:  # Terminated, KeyboardInterrupt: record where the run stopped, then stop
            entry.update(status=ERROR, message=f"interrupted ({type(exc).__name__}: {exc})",
                         seconds=round(self.clock() - start, 3))
            self._done(entry, None)
            raise
        entry["seconds"] = round(self.clock() - start, 3)
        return self._done(entry, result)

    def _done(self, entry: dict[str, Any], result: Any) -> Any:
        self.phases.append(entry)
        message = entry.get("message", "")
        first_line = message.splitlines()[0][:300] if message else ""
        say(f"[{self.elapsed():7.1f} s] {entry['status'].upper():7s} {entry['name']} ({entry['seconds']:.1f} s)"
            + (f": {first_line}" if first_line else ""))
        self.write()
        return result

    def count(self, status: str) -> int:
        return sum(p["status"] == status for p in self.phases)

    def exit_code(self) -> int:
        """0: every phase passed; 1: some failed, errored or were skipped."""
        return 0 if self.phases and all(p["status"] == PASS for p in self.phases) else 1

    def write(self) -> None:
        self.report["elapsed_s"] = round(self.elapsed(), 3)
        self.report["passed"] = self.exit_code() == 0 and self.report.get("finished", False)
        write_json(self.path, self.report)


def write_json(path: Path, report: dict[str, Any]) -> None:
    """Written to a temporary file, then renamed: a kill mid-write leaves the previous complete report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str))
    tmp.replace(path)


class Terminated(BaseException):
    """SIGTERM arrived; a BaseException so that no phase's error handling swallows it."""


def terminate_as_exception():
    """SIGTERM (`timeout`'s signal) raises Terminated in the main thread, so `finally` blocks still write.
    Returns the handler it replaced (None where none could be installed: not the main thread)."""
    def handler(signum, frame):
        raise Terminated(f"signal {signum}")

    try:
        return signal.signal(signal.SIGTERM, handler)
    except (ValueError, AttributeError):  # not the main thread, or no SIGTERM on this platform
        return None


def restore_terminate(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def line_buffered_stdout() -> None:
    """Every line reaches the caller as it is printed, also through a pipe (a killed run shows where it was)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(line_buffering=True)
            except (ValueError, OSError):  # a stream replaced by a test harness
                pass
