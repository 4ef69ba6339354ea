"""One exception family for the whole toolkit.

Messages name the field, what was expected, what was received and, where we know it, how to fix it:
"an overly verbose error is better than a cryptic one". Importing this module imports nothing heavy.
"""

from __future__ import annotations


class FgsaError(Exception):
    """Base class of every error raised on purpose by fgsa-deploy."""


class InputError(FgsaError, ValueError):
    """An argument (array, file, option) is not what the toolkit accepts."""

    def __init__(self, field: str, expected: str | None = None, got: object = None, fix: str | None = None):
        self.field, self.expected, self.got, self.fix = field, expected, got, fix
        # one argument = an already formatted message: how torch's DataLoader re-raises a worker's error
        msg = field if expected is None else f"{field}: expected {expected}"
        if got is not None:
            msg += f", got {got}"
        if fix:
            msg += f". {fix}"
        super().__init__(msg)


class CheckpointError(FgsaError, ValueError):
    """A checkpoint file is missing, corrupt, foreign, or does not fit the model config."""


class ConfigError(FgsaError, ValueError):
    """A model or tool configuration is invalid or inconsistent."""


def as_flag(exc: InputError, fields: dict[str, str]) -> InputError:
    """``exc`` with a library argument name (``path``, ``boxes[0]``) replaced by the CLI flag it came from."""
    flag = fields.get(exc.field)
    return exc if flag is None else InputError(flag, exc.expected, exc.got, exc.fix)

