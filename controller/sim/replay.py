"""Replays a trace against a live OpenAI-compatible endpoint, at the trace's times.

Each request is sent at its (already scaled) arrival time, with an input of as many
words as the trace row has prompt tokens (capped, since the server limits input size),
and the answer's latency is measured from the scheduled time, so a client that falls
behind shows up as latency rather than as a quieter load. At most `concurrency` requests
are in flight; each row of the result says whether its send was late.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import numpy as np

from controller.sim.trace import Trace

WORDS = ("the", "model", "serves", "a", "request", "with", "tokens", "from", "trace", "now")
"""Common words that tokenizers keep whole: about one token per word."""

Body = Callable[["ReplayRequest", str], dict[str, Any]]
Clock = Callable[[], float]


@dataclass(frozen=True)
class ReplayRequest:
    """One request to send: when (seconds from the start) and how big."""

    at_s: float
    prompt_tokens: int
    output_tokens: int


def error_code(response: httpx.Response) -> str | None:
    """The `error.code` of an OpenAI error body; None when the body is not one."""
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) else None


@dataclass(frozen=True)
class ReplayResult:
    """What happened to one request."""

    at_s: float
    sent_s: float
    done_s: float
    status: int | None
    """HTTP status, or None when no answer came (timeout, connection error)."""
    error: str | None = None
    code: str | None = None
    """The OpenAI error body's `code` of an error answer, when it has one."""

    @property
    def ok(self) -> bool:
        """Answered with a 2xx status."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def shed(self) -> bool:
        """Refused for overload (503 `overloaded`, with Retry-After): not served, not an error."""
        return self.status == 503 and self.code == "overloaded"

    @property
    def latency_s(self) -> float:
        """From the scheduled send to the answer."""
        return self.done_s - self.at_s


def requests_from_trace(trace: Trace, max_input_tokens: int = 512) -> list[ReplayRequest]:
    """One request per trace row, inputs capped at `max_input_tokens` words."""
    return [
        ReplayRequest(float(t), int(min(p, max_input_tokens)), int(o))
        for t, p, o in zip(trace.arrival_s, trace.prompt_tokens, trace.output_tokens, strict=True)
    ]


def text_of(tokens: int) -> str:
    """A deterministic input of about `tokens` tokens (at least one word)."""
    n = max(1, tokens)
    return " ".join(WORDS[i % len(WORDS)] for i in range(n))


def embedding_body(req: ReplayRequest, model: str) -> dict[str, Any]:
    """`POST /v1/embeddings` body for one request."""
    return {"model": model, "input": [text_of(req.prompt_tokens)]}


def completion_body(req: ReplayRequest, model: str) -> dict[str, Any]:
    """`POST /v1/completions` body for one request (the trace's output length as max_tokens)."""
    return {
        "model": model,
        "prompt": text_of(req.prompt_tokens),
        "max_tokens": max(1, req.output_tokens),
    }


async def replay_async(
    url: str,
    requests: Sequence[ReplayRequest],
    *,
    model: str,
    route: str = "/v1/embeddings",
    body: Body = embedding_body,
    concurrency: int = 256,
    timeout_s: float = 60.0,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = time.perf_counter,
    on_result: Callable[[ReplayResult], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[ReplayResult]:
    """Send every request at its time; return one result per request, in input order.

    `on_result` sees each result as it arrives (for live views); once `should_stop()`
    is true no further request is sent, and those already sent are awaited.
    """

    async def send(client: httpx.AsyncClient, req: ReplayRequest, since: Since) -> ReplayResult:
        sent = since()
        status: int | None = None
        error: str | None = None
        code: str | None = None
        try:
            response = await client.post(route, json=body(req, model))
            status = response.status_code
            if status >= 400:
                error, code = response.text[:200], error_code(response)
        except httpx.HTTPError as err:
            error = f"{type(err).__name__}: {err}"
        return ReplayResult(req.at_s, sent, since(), status, error, code)

    return await _paced(
        url, requests, send, concurrency, timeout_s, transport, clock, on_result, should_stop
    )


Since = Callable[[], float]
"""Seconds since the replay started."""
R = TypeVar("R")


async def _paced(
    url: str,
    requests: Sequence[ReplayRequest],
    send: Callable[[httpx.AsyncClient, ReplayRequest, Since], Awaitable[R]],
    concurrency: int,
    timeout_s: float,
    transport: httpx.AsyncBaseTransport | None,
    clock: Clock,
    on_result: Callable[[R], None] | None,
    should_stop: Callable[[], bool],
) -> list[R]:
    """Start `send` for each request at its time, at most `concurrency` at once."""
    gate = asyncio.Semaphore(concurrency)
    results: list[R | None] = [None] * len(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url.rstrip("/"), timeout=timeout_s, limits=limits, transport=transport
    ) as client:
        start = clock()

        def since() -> float:
            return clock() - start

        async def one(i: int, req: ReplayRequest) -> None:
            async with gate:
                result = await send(client, req, since)
            results[i] = result
            if on_result is not None:
                on_result(result)

        tasks = []
        for i, req in enumerate(requests):
            if should_stop():
                break
            delay = req.at_s - since()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, req)))
        await asyncio.gather(*tasks)
    return [r for r in results if r is not None]


@dataclass(frozen=True)
class StreamResult(ReplayResult):
    """What happened to one streamed request: also when its first token came, and how many."""

    first_s: float | None = None
    """When the first content arrived (seconds from the start); None if none did."""
    tokens: int = 0
    """Completion tokens (the final usage chunk's count, else content chunks seen)."""

    @property
    def ttft_s(self) -> float | None:
        """Time to first token, from the scheduled send."""
        return None if self.first_s is None else self.first_s - self.at_s

    @property
    def tpot_s(self) -> float | None:
        """Time per output token after the first; None below two tokens."""
        if self.first_s is None or self.tokens < 2:
            return None
        return (self.done_s - self.first_s) / (self.tokens - 1)


def completion_stream_body(req: ReplayRequest, model: str) -> dict[str, Any]:
    """`POST /v1/completions` streaming body, usage in the last chunk."""
    return {
        **completion_body(req, model),
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def chat_stream_body(req: ReplayRequest, model: str) -> dict[str, Any]:
    """`POST /v1/chat/completions` streaming body: one user turn, the trace's output length."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": text_of(req.prompt_tokens)}],
        "max_tokens": max(1, req.output_tokens),
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def stream_replay_async(
    url: str,
    requests: Sequence[ReplayRequest],
    *,
    model: str,
    route: str = "/v1/chat/completions",
    body: Body = chat_stream_body,
    concurrency: int = 256,
    timeout_s: float = 60.0,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = time.perf_counter,
    on_result: Callable[[StreamResult], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[StreamResult]:
    """As `replay_async`, streaming each answer (server-sent events) to time its tokens."""

    async def send(client: httpx.AsyncClient, req: ReplayRequest, since: Since) -> StreamResult:
        sent = since()
        first: float | None = None
        chunks, usage = 0, None
        status: int | None = None
        error = code = None
        try:
            async with client.stream("POST", route, json=body(req, model)) as response:
                status = response.status_code
                if status >= 400:
                    await response.aread()
                    error, code = response.text[:200], error_code(response)
                else:
                    async for line in response.aiter_lines():
                        chunk = _event(line)
                        if chunk is None:
                            continue
                        if _has_content(chunk):
                            chunks += 1
                            first = since() if first is None else first
                        usage = (chunk.get("usage") or {}).get("completion_tokens", usage)
        except httpx.HTTPError as err:
            error = f"{type(err).__name__}: {err}"
        tokens = usage if isinstance(usage, int) else chunks
        return StreamResult(req.at_s, sent, since(), status, error, code, first, tokens)

    return await _paced(
        url, requests, send, concurrency, timeout_s, transport, clock, on_result, should_stop
    )


def _event(line: str) -> dict[str, Any] | None:
    """The JSON of one `data:` line of a stream; None for other lines and `[DONE]`."""
    if not line.startswith("data:"):
        return None
    data = line.removeprefix("data:").strip()
    if data == "[DONE]":
        return None
    try:
        chunk = json.loads(data)
    except ValueError:
        return None
    return chunk if isinstance(chunk, dict) else None


def _has_content(chunk: dict[str, Any]) -> bool:
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content") or choice.get("text"):
            return True
    return False


def replay(url: str, requests: Sequence[ReplayRequest], **kwargs: Any) -> list[ReplayResult]:
    """Blocking form of `replay_async`."""
    return asyncio.run(replay_async(url, requests, **kwargs))


def latency_summary(results: Sequence[ReplayResult]) -> dict[str, float | int | None]:
    """p50/p95/p99 latency (ms) of answered requests, with counts of failures and late sends."""
    ok = np.array([r.latency_s * 1000.0 for r in results if r.ok])
    late = sum(1 for r in results if r.sent_s - r.at_s > 0.1)

    def q(p: float) -> float | None:
        return float(np.quantile(ok, p)) if ok.size else None

    return {
        "requests": len(results),
        "answered": int(ok.size),
        "failed": len(results) - int(ok.size),
        "late_sends": late,
        "p50_ms": q(0.50),
        "p95_ms": q(0.95),
        "p99_ms": q(0.99),
    }
