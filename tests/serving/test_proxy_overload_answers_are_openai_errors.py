"""The proxy's own 503 (the router's queue at the proxy is full) gets the OpenAI error body and
keeps its status and Retry-After; every other answer passes through untouched."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ray.serve._private.http_util import convert_object_to_asgi_messages, retry_after_headers

from serving.proxy_errors import OpenAIProxyErrors

BACKPRESSURE = "Request dropped due to backpressure (num_queued_requests=8, max_queued_requests=8)."


def _app(messages: list[dict[str, Any]]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        for message in messages:
            await send(message)

    return app


async def _through(
    messages: list[dict[str, Any]], scope_type: str = "http"
) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    await OpenAIProxyErrors(_app(messages))({"type": scope_type}, receive, send)
    return sent


def _headers(start: dict[str, Any]) -> dict[bytes, bytes]:
    return {bytes(k).lower(): bytes(v) for k, v in start["headers"]}


@pytest.mark.anyio
async def test_the_proxy_backpressure_503_becomes_an_openai_error_with_retry_after() -> None:
    ray_answer = convert_object_to_asgi_messages(
        BACKPRESSURE, status_code=503, extra_headers=retry_after_headers(1.0)
    )
    start, body = await _through(ray_answer)
    assert start["status"] == 503
    headers = _headers(start)
    assert headers[b"retry-after"] == b"1"
    assert headers[b"content-type"] == b"application/json"
    assert int(headers[b"content-length"]) == len(body["body"])
    error = json.loads(body["body"])["error"]
    assert (error["type"], error["code"], error["param"]) == ("server_error", "overloaded", None)
    assert "overloaded" in error["message"] and "max_queued_requests=8" in error["message"]


@pytest.mark.anyio
async def test_an_unavailable_deployment_503_is_an_openai_unavailable_error() -> None:
    ray_answer = convert_object_to_asgi_messages(
        "Deployment(name='router', app='embeddings') is unavailable because it failed to deploy.",
        status_code=503,
    )
    _, body = await _through(ray_answer)
    assert json.loads(body["body"])["error"]["code"] == "unavailable"


@pytest.mark.anyio
async def test_a_body_sent_in_parts_is_rewritten_once_whole() -> None:
    start, whole = convert_object_to_asgi_messages(BACKPRESSURE, status_code=429)
    parts = [
        start,
        {"type": "http.response.body", "body": whole["body"][:10], "more_body": True},
        {"type": "http.response.body", "body": whole["body"][10:], "more_body": False},
    ]
    sent = await _through(parts)
    assert len(sent) == 2 and sent[0]["status"] == 429
    assert json.loads(sent[1]["body"])["error"]["code"] == "overloaded"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "messages",
    [
        convert_object_to_asgi_messages({"error": {"code": "overloaded"}}, status_code=503),
        convert_object_to_asgi_messages({"object": "list"}, status_code=200),
        convert_object_to_asgi_messages("Request timed out", status_code=408),
    ],
    ids=["router_json_503", "ok", "timeout_408"],
)
async def test_other_answers_pass_through_untouched(messages: list[dict[str, Any]]) -> None:
    assert await _through(messages) == messages


@pytest.mark.anyio
async def test_non_http_scopes_pass_through() -> None:
    messages = [{"type": "websocket.close"}]
    assert await _through(messages, scope_type="websocket") == messages
