"""Back-pressure from a version's bounded queue is a 503 with Retry-After in OpenAI's format,
counted as shed, never as an error of the version."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ray.exceptions import RayActorError
from ray.serve._private.common import DeploymentID
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

from serving.errors import ApiError
from serving.metrics import NO_VERSION
from serving.router import (
    DEFAULT_RETRY_AFTER_S,
    OVERLOADED,
    UNAVAILABLE,
    error_headers,
    error_response,
    record_failure,
    unavailable_error,
)


class CountingMetrics:
    """Stands in for RouterMetrics: remembers which counter each request went to."""

    def __init__(self) -> None:
        self.shed: list[tuple[str, str]] = []
        self.errors: list[tuple[str, str, str, int]] = []

    def record_shed(self, version: str, endpoint: str) -> None:
        self.shed.append((version, endpoint))

    def record_error(self, version: str, endpoint: str, kind: str, status: int) -> None:
        self.errors.append((version, endpoint, kind, status))


def _answer(error: ApiError, version: str = "v1") -> tuple[int, dict[str, str], dict[str, Any]]:
    response = error_response(error, error_headers(error, version))
    return response.status_code, dict(response.headers), json.loads(bytes(response.body))


def test_a_full_queue_is_a_503_with_retry_after_in_openai_format() -> None:
    error = unavailable_error(BackPressureError(8, 8, retry_after_s=2.0), "v1")
    assert error is not None
    status, headers, body = _answer(error)
    assert status == 503
    assert headers["retry-after"] == "2"
    assert headers["x-governor-version"] == "v1"
    assert body == {
        "error": {
            "message": "version v1 is overloaded: its queue is full; retry after 2 s",
            "type": "server_error",
            "param": None,
            "code": OVERLOADED,
        }
    }


@pytest.mark.parametrize(
    ("retry_after_s", "header"),
    [(None, str(int(DEFAULT_RETRY_AFTER_S))), (0.2, "1"), (1.0, "1"), (2.5, "3"), (0.0, "0")],
)
def test_retry_after_is_whole_seconds_rounded_up(retry_after_s: float | None, header: str) -> None:
    error = unavailable_error(BackPressureError(1, 1, retry_after_s=retry_after_s), "v1")
    assert error is not None
    assert error_headers(error, "v1") == {"x-governor-version": "v1", "retry-after": header}


def test_a_shed_request_counts_as_shed_not_as_an_error_of_the_version() -> None:
    metrics = CountingMetrics()
    error = unavailable_error(BackPressureError(4, 4), "v2")
    assert error is not None and error.shed
    record_failure(metrics, "v2", "embeddings", error)  # type: ignore[arg-type]
    assert metrics.shed == [("v2", "embeddings")]
    assert metrics.errors == []


@pytest.mark.parametrize(
    "exc",
    [
        DeploymentUnavailableError(DeploymentID("model_v1", "embeddings")),
        RayActorError(),
    ],
    ids=["deployment_unavailable", "actor_died"],
)
def test_a_version_without_replicas_is_a_503_error_of_that_version(exc: Exception) -> None:
    metrics = CountingMetrics()
    error = unavailable_error(exc, "v1")
    assert error is not None and not error.shed
    status, headers, body = _answer(error)
    assert (status, body["error"]["code"], body["error"]["type"]) == (
        503,
        UNAVAILABLE,
        "server_error",
    )
    assert headers["retry-after"] == "1"
    record_failure(metrics, "v1", "embeddings", error)  # type: ignore[arg-type]
    assert metrics.errors == [("v1", "embeddings", UNAVAILABLE, 503)] and metrics.shed == []


def test_other_failures_are_not_mapped_to_503() -> None:
    assert unavailable_error(RuntimeError("boom"), "v1") is None


def test_errors_decided_before_routing_carry_no_version_and_no_retry_after() -> None:
    error = ApiError(400, "body.input: Field required")
    assert error_headers(error, NO_VERSION) is None
    metrics = CountingMetrics()
    record_failure(metrics, NO_VERSION, "embeddings", error)  # type: ignore[arg-type]
    assert metrics.errors == [(NO_VERSION, "embeddings", "invalid_request", 400)]
