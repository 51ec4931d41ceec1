"""Typed errors of the data plane.

Errors raised inside a model replica travel back to the router wrapped by Ray; Ray keeps
the original class as a base, so the router can still catch them by type.
"""

from __future__ import annotations


class ServingError(Exception):
    """Base of every error the data plane raises on purpose."""


class ArgsError(ServingError, ValueError):
    """The application's `args` or a deployment's `user_config` cannot be used."""


class ModelSourceError(ServingError):
    """A model source (path, bundle or hub id) cannot be found or loaded."""


class InputRejectedError(ServingError):
    """A request that the model refuses as given (for example a prompt over the context)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class ApiError(ServingError):
    """An HTTP error answered to the client in the OpenAI error format."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str = "invalid_request",
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind


class QueueWaitExceededError(ServingError):
    """A request still queued at a version past the time it had to start: shed, not computed.

    Constructed from its message alone, so that Ray can rebuild it in the router.
    """


class AdmissionRefusedError(ServingError):
    """A version already has as many requests in flight as it answers within the target: shed."""
