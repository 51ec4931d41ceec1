"""Errors raised by FastAPI and Starlette themselves (unknown route, wrong method) are
OpenAI error bodies, like every other error of the router."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from serving.router import api


@pytest.fixture(scope="module")
def client() -> TestClient:
    """The router's ASGI app, called without Serve: routing fails before any route runs."""
    return TestClient(api, raise_server_exceptions=False)


def _error(response_json: dict[str, object]) -> dict[str, object]:
    assert set(response_json) == {"error"}
    error = response_json["error"]
    assert isinstance(error, dict)
    assert set(error) == {"message", "type", "param", "code"}
    return error


@pytest.mark.parametrize("path", ["/nope", "/v1/chat/completion", "/docs", "/redoc", "/v2/models"])
def test_unknown_route_is_an_openai_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    error = _error(response.json())
    assert error["code"] == "unknown_route" and path in str(error["message"])


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/embeddings", "POST"),
        ("PUT", "/v1/completions", "POST"),
        ("DELETE", "/v1/models", "GET"),
        ("POST", "/health", "GET"),
    ],
)
def test_wrong_method_is_an_openai_405(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    error = _error(response.json())
    assert error["code"] == "method_not_allowed" and allowed in str(error["message"])


def test_undecodable_path_is_quoted_safely(client: TestClient) -> None:
    response = client.get("/%ED%A0%80%00")
    assert response.status_code == 404
    _error(response.json())
