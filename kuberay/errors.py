"""Kubernetes API failures translated into the control plane's typed errors.

Every call into the `kubernetes` client goes through `k8s_call`, so nothing above this
module sees an `ApiException` or a urllib3 error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import urllib3
from kubernetes.client.exceptions import ApiException

from controller.errors import ConflictError, GovernorError, PermanentError, TemporaryError

T = TypeVar("T")

DEFAULT_RETRY_AFTER_S = 1.0


class NotFoundError(PermanentError):
    """The object does not exist (HTTP 404)."""


@dataclass(frozen=True)
class Operation:
    """What was attempted, for error messages: `patch rayservices.ray.io ns/name`."""

    verb: str
    resource: str
    group: str
    namespace: str
    name: str | None = None

    @property
    def target(self) -> str:
        """`namespace/name`, or the namespace alone for collection calls."""
        return f"{self.namespace}/{self.name}" if self.name else self.namespace

    def describe(self) -> str:
        """One phrase naming the operation."""
        qualified = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{self.verb} {qualified} {self.target}"


def _server_message(err: ApiException) -> str:
    body = err.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not body:
        return str(err.reason or "")
    try:
        status = json.loads(body)
    except ValueError:
        return str(body)[:300]
    if isinstance(status, dict) and status.get("message"):
        return str(status["message"])[:300]
    return str(body)[:300]


def _retry_after(err: ApiException) -> float:
    headers = err.headers or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    if value is None:
        return DEFAULT_RETRY_AFTER_S
    try:
        return max(DEFAULT_RETRY_AFTER_S, float(value))
    except ValueError:
        return DEFAULT_RETRY_AFTER_S


def translate_api_error(err: ApiException, op: Operation) -> GovernorError:
    """The typed error for an API server answer that was not a success."""
    status = int(err.status or 0)
    detail = _server_message(err)
    what = op.describe()
    if status == 409:
        return ConflictError(f"{what}: conflict, the object changed: {detail}", 0.0)
    if status == 404:
        return NotFoundError(f"{what}: not found: {detail}")
    if status == 403:
        api_group = op.group or '""'
        return PermanentError(
            f"{what}: forbidden: the service account may not {op.verb!r} {op.resource!r} "
            f"(apiGroup {api_group}) in namespace {op.namespace!r}; grant verb {op.verb!r} "
            f"on {op.resource!r} in the Role: {detail}"
        )
    if status == 401:
        return PermanentError(f"{what}: unauthorized, the credentials were refused: {detail}")
    if status == 429 or status >= 500 or status == 0:
        return TemporaryError(f"{what}: HTTP {status or 'error'}: {detail}", _retry_after(err))
    return PermanentError(f"{what}: HTTP {status}: {detail}")


def k8s_call(op: Operation, fn: Callable[[], T]) -> T:
    """Run one API call, translating its failures into typed errors."""
    try:
        return fn()
    except ApiException as err:
        raise translate_api_error(err, op) from err
    except (urllib3.exceptions.HTTPError, OSError) as err:
        # Timeouts, refused connections and dropped streams all may pass.
        raise TemporaryError(
            f"{op.describe()}: {type(err).__name__}: {err}", DEFAULT_RETRY_AFTER_S
        ) from err


class TooLargeError(PermanentError):
    """An object would outgrow what the API server or etcd accepts; nothing was written."""
