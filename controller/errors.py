"""Typed errors of the control plane.

Exceptions of Ray, kubernetes and HTTP libraries are translated into these where they
enter (`raise ... from`), so the loop only has to tell temporary from permanent.
"""

from __future__ import annotations


class GovernorError(Exception):
    """Base of every error the control plane raises on purpose."""

    kind = "error"


class TemporaryError(GovernorError):
    """A failure that may pass: retry after `retry_after_s` (with back-off)."""

    kind = "temporary"

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentError(GovernorError):
    """A failure that will not pass by retrying (bad request, missing permission)."""

    kind = "permanent"


class ConflictError(TemporaryError):
    """The object changed underneath us (HTTP 409); re-read and retry."""

    kind = "conflict"


class ConfigError(GovernorError):
    """A configuration that cannot be used; the message names the field and the reason."""

    kind = "config"
