"""The one error family of :mod:`policies`.

A policy problem is an operator's problem, found when the file is loaded (at start-up or
on reload), never during a call: the message names the file, the line and the key so
that the operator can fix it without guessing.
"""

from __future__ import annotations

__all__ = ["PolicyError", "PolicyLoadError"]


class PolicyError(Exception):
    """Root of the policy errors (also: a value that is not a URI or pattern)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PolicyLoadError(PolicyError):
    """A policy file that cannot be loaded: ``<file>:<line>[:<col>]: <key>: <reason>``."""

    def __init__(
        self,
        reason: str,
        *,
        filename: str,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
    ) -> None:
        self.filename = filename
        self.line = line
        self.column = column
        self.key = key
        where = filename
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        message = f"{where}: {key}: {reason}" if key else f"{where}: {reason}"
        super().__init__(message)
        self.reason = reason

    def __str__(self) -> str:
        return str(self.args[0])
