"""The replay client sends each request at its time, sized by its tokens, and records answers."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest

from controller.sim.capacity import EPOCH
from controller.sim.replay import (
    ReplayRequest,
    completion_body,
    latency_summary,
    replay,
    replay_async,
    requests_from_trace,
    text_of,
)
from controller.sim.trace import Trace


def test_requests_follow_the_trace_and_inputs_are_capped() -> None:
    trace = Trace(np.array([0.0, 0.5]), np.array([3, 5000]), np.array([7, 1]), EPOCH)
    reqs = requests_from_trace(trace, max_input_tokens=100)
    assert reqs == [ReplayRequest(0.0, 3, 7), ReplayRequest(0.5, 100, 1)]
    assert len(text_of(3).split()) == 3
    assert completion_body(reqs[0], "m")["max_tokens"] == 7


def test_each_request_is_sent_at_its_time_and_answers_are_timed() -> None:
    received: list[tuple[float, dict]] = []
    loop_start: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        now = asyncio.get_running_loop().time()
        received.append((now - loop_start[0], json.loads(request.content)))
        if request.url.path != "/v1/embeddings":
            return httpx.Response(404)
        await asyncio.sleep(0.02)
        return httpx.Response(200, json={"data": [{"embedding": [0.0]}]})

    async def run() -> list:
        loop_start.append(asyncio.get_running_loop().time())
        reqs = [ReplayRequest(0.0, 4, 1), ReplayRequest(0.15, 2, 1), ReplayRequest(0.3, 1, 1)]
        return await replay_async("http://stand-in", reqs, model="minilm",
                                  transport=httpx.MockTransport(handler))

    results = asyncio.run(run())
    assert [r.status for r in results] == [200, 200, 200]
    sent = [t for t, _ in received]
    assert sent == pytest.approx([0.0, 0.15, 0.3], abs=0.05)
    assert received[0][1] == {"model": "minilm", "input": ["the model serves a"]}
    assert all(0.015 <= r.latency_s <= 0.2 for r in results)
    summary = latency_summary(results)
    assert summary["answered"] == 3 and summary["failed"] == 0 and summary["late_sends"] == 0


def test_errors_and_unreachable_servers_are_recorded_not_raised() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if len(body["input"][0].split()) > 2:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(503, text="overloaded")

    results = replay("http://stand-in", [ReplayRequest(0.0, 1, 1), ReplayRequest(0.0, 5, 1)],
                     model="m", transport=httpx.MockTransport(handler))
    assert results[0].status == 503 and results[0].error == "overloaded"
    assert results[1].status is None and "ConnectError" in (results[1].error or "")
    assert latency_summary(results)["failed"] == 2


def test_a_bounded_client_sends_late_rather_than_dropping() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.1)
        return httpx.Response(200, json={})

    reqs = [ReplayRequest(0.0, 1, 1) for _ in range(4)]
    results = replay("http://stand-in", reqs, model="m", concurrency=2,
                     transport=httpx.MockTransport(handler))
    assert all(r.ok for r in results)
    assert sorted(round(r.sent_s, 1) for r in results) == [0.0, 0.0, 0.1, 0.1]
    # Latency counts from the scheduled time, so the wait for a free slot shows.
    assert sorted(round(r.latency_s, 1) for r in results) == [0.1, 0.1, 0.2, 0.2]
