"""Errors of the runtime: bad input is :class:`fgsa.errors.InputError`; an engine that cannot run here is
:class:`EngineError`, whose message always says how to fix it (rebuild the plan, load the plugin library,
install a package, export another attention form)."""

from __future__ import annotations

from fgsa.errors import FgsaError, InputError


class EngineError(FgsaError, RuntimeError):
    """An engine file cannot be loaded or run on this host (version, GPU, plugin library, missing package)."""

    def __init__(self, problem: str, fix: str):
        self.problem, self.fix = problem, fix
        super().__init__(f"{problem}. Fix: {fix}")


__all__ = ["EngineError", "FgsaError", "InputError"]
