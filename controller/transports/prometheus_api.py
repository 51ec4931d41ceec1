"""Client of Prometheus's HTTP query API; every failure becomes a QueryFailed with a reason."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from controller.errors import TemporaryError

TIMEOUT = "timeout"
UNREACHABLE = "unreachable"
HTTP_ERROR = "http_error"
QUERY_ERROR = "query_error"
BAD_RESPONSE = "bad_response"


class QueryFailed(TemporaryError):
    """A query got no usable answer; `reason` is one of the module's reason constants."""

    kind = "signal"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, retry_after_s=2.0)
        self.reason = reason

    @property
    def server_down(self) -> bool:
        """True when the server did not answer at all (later queries would fail the same way)."""
        return self.reason in (TIMEOUT, UNREACHABLE)


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels, evaluation time (Unix s) and value."""

    labels: dict[str, str]
    timestamp: float
    value: float


class InstantQueries(Protocol):
    """What a signal source asks of Prometheus: instant queries, and to let go of it."""

    def query(self, expr: str) -> list[Sample]:
        """The instant vector `expr` evaluates to now (QueryFailed if none)."""
        ...

    def close(self) -> None:
        """Release what the client holds."""
        ...


class PrometheusClient:
    """Runs instant queries against `base_url` (`POST /api/v1/query`)."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        token: str | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout_s, headers=headers, transport=transport
        )

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def query(self, expr: str) -> list[Sample]:
        """The instant vector `expr` evaluates to now."""
        try:
            response = self._http.post(
                "/api/v1/query", data={"query": expr, "timeout": f"{self.timeout_s:g}"}
            )
        except httpx.TimeoutException as err:
            raise QueryFailed(
                TIMEOUT, f"no answer from {self.base_url} within {self.timeout_s:g}s"
            ) from err
        except httpx.TransportError as err:
            raise QueryFailed(UNREACHABLE, f"cannot reach {self.base_url}: {err}") from err
        return parse_vector(response)


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, ValueError, UnicodeDecodeError):
        return None


def parse_vector(response: httpx.Response) -> list[Sample]:
    """The samples of a query answer, or QueryFailed saying what was wrong with it."""
    body = _body(response)
    code = response.status_code
    if not isinstance(body, dict):
        if code >= 400:
            raise QueryFailed(HTTP_ERROR, f"HTTP {code}: {response.text.strip()[:200]}")
        raise QueryFailed(BAD_RESPONSE, f"HTTP {code}: the answer is not a JSON object")
    if body.get("status") != "success":
        error_type = str(body.get("errorType", ""))
        detail = f"HTTP {code}: {error_type}: {str(body.get('error', ''))[:300]}"
        if error_type == "timeout":
            raise QueryFailed(TIMEOUT, detail)
        raise QueryFailed(QUERY_ERROR if code in (200, 400, 422) else HTTP_ERROR, detail)
    data = body.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        kind = data.get("resultType") if isinstance(data, dict) else type(data).__name__
        raise QueryFailed(BAD_RESPONSE, f"expected an instant vector, got {kind}")
    try:
        return [
            Sample(
                labels={str(k): str(v) for k, v in item["metric"].items()},
                timestamp=float(item["value"][0]),
                value=float(item["value"][1]),
            )
            for item in data.get("result") or []
        ]
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
        raise QueryFailed(BAD_RESPONSE, f"malformed sample in the answer: {err!r}") from err
