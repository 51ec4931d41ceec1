"""OpenAI-format errors for the answers Serve's HTTP proxy gives by itself.

When the router's own queue at the proxy is full (its `max_queued_requests`), or no
router replica is available, the proxy answers without reaching the router: 503 (or 429)
with a plain-text body and, from `backpressure_config.retry_after_s`, a `Retry-After`
header. This ASGI middleware gives those answers the body every other error of the
service has, `{"error": {"message", "type", "param", "code"}}`, and keeps their status
and headers. The proxy loads it from the Ray node's environment:

    RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH=serving.proxy_errors:middlewares ray start ...
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.middleware import Middleware

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

REWRITTEN_STATUSES = frozenset({429, 503})
_BACKPRESSURE_HINT = "backpressure"


def proxy_error_body(status: int, text: str) -> bytes:
    """The OpenAI error body for a plain-text answer of the proxy."""
    overloaded = status == 429 or _BACKPRESSURE_HINT in text.lower()
    body = {
        "error": {
            "message": f"the service is overloaded; retry later ({text.strip()})"
            if overloaded
            else f"the service is unavailable; retry later ({text.strip()})",
            "type": "server_error",
            "param": None,
            "code": "overloaded" if overloaded else "unavailable",
        }
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _plain_text(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.lower().startswith(b"text/plain")
    return False


class OpenAIProxyErrors:
    """Rewrites the proxy's own plain-text 429/503 answers into OpenAI error bodies."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        """Pass the request through; hold a plain-text 429/503 answer and send it rewritten."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        body = b""

        async def rewriting_send(message: Message) -> None:
            nonlocal held, body
            if message["type"] == "http.response.start" and _rewritable(message):
                held = message
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                await _send_rewritten(send, held, body)

        await self.app(scope, receive, rewriting_send)


def _rewritable(start: Message) -> bool:
    return start["status"] in REWRITTEN_STATUSES and _plain_text(list(start.get("headers", [])))


async def _send_rewritten(send: Send, start: Message, text: bytes) -> None:
    body = proxy_error_body(start["status"], text.decode("utf-8", "replace"))
    kept = [
        (name, value)
        for name, value in start.get("headers", [])
        if name.lower() not in (b"content-type", b"content-length")
    ]
    headers = [
        *kept,
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def middlewares() -> list[Middleware]:
    """The proxy middlewares (RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH).

    Ray wraps the proxy in them in order, so the last is outermost: admission refuses
    before anything else runs, and the proxy's own plain-text answers are rewritten.
    """
    from serving.proxy_admission import ProxyAdmission

    return [Middleware(OpenAIProxyErrors), Middleware(ProxyAdmission)]
