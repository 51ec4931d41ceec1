"""Errors the simulator raises for input it cannot use."""

from __future__ import annotations

from controller.errors import GovernorError


class SimInputError(GovernorError):
    """A trace, profile or config the simulator refuses; the message says why."""

    kind = "input"


class TraceError(SimInputError):
    """A trace row that cannot be used, with its 1-based line number in the file."""

    def __init__(self, source: str, line: int, reason: str) -> None:
        super().__init__(f"{source}:{line}: {reason}")
        self.source = source
        self.line = line
        self.reason = reason


class InfeasibleError(SimInputError):
    """A profile and config that cannot describe a fleet able to meet the SLO."""
