"""Streamed replay times each answer as a chat client sees it: first token, then the rest."""

from __future__ import annotations

import asyncio
import json

import httpx

from controller.sim.replay import ReplayRequest, StreamResult, stream_replay_async


class Clock:
    """A clock the fake server moves as it sends."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def event(chunk: dict[str, object]) -> bytes:
    """One server-sent event carrying `chunk`."""
    return f"data: {json.dumps(chunk)}\n\n".encode()


def replay_against(
    handler: httpx.MockTransport, clock: Clock, *reqs: ReplayRequest
) -> list[StreamResult]:
    return asyncio.run(
        stream_replay_async("http://chat", list(reqs), model="m", transport=handler, clock=clock)
    )


class TimedStream(httpx.AsyncByteStream):
    """Server-sent events that advance the clock by `step_s` before each one."""

    def __init__(self, clock: Clock, events: list[bytes], step_s: float) -> None:
        self.clock, self.events, self.step_s = clock, events, step_s

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        for event in self.events:
            self.clock.t += self.step_s
            yield event


def test_first_token_and_time_per_token_come_from_the_stream_and_its_usage() -> None:
    clock = Clock()
    bodies: list[dict[str, object]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        role = {"choices": [{"index": 0, "delta": {"role": "assistant"}}]}
        words = [{"choices": [{"index": 0, "delta": {"content": w}}]} for w in ("a", "b", "c")]
        usage = {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 5}}
        events = [*(event(c) for c in (role, *words, usage)), b"data: [DONE]\n\n"]
        return httpx.Response(200, stream=TimedStream(clock, events, 0.1))

    (result,) = replay_against(httpx.MockTransport(handle), clock, ReplayRequest(0.0, 3, 5))
    assert result.ok and result.tokens == 5, "usage counts tokens, not chunks"
    assert abs((result.ttft_s or 0) - 0.2) < 1e-9, "the role chunk carries no token"
    assert result.tpot_s is not None and abs(result.tpot_s - (0.6 - 0.2) / 4) < 1e-9
    assert bodies[0]["stream"] is True and bodies[0]["max_tokens"] == 5
    assert bodies[0]["stream_options"] == {"include_usage": True}
    assert bodies[0]["messages"] == [{"role": "user", "content": "the model serves"}]


def test_an_overloaded_answer_is_shed_with_no_token_times() -> None:
    clock = Clock()

    def handle(request: httpx.Request) -> httpx.Response:
        body = {"error": {"message": "busy", "type": "server_error", "code": "overloaded"}}
        return httpx.Response(503, json=body, headers={"retry-after": "1"})

    (result,) = replay_against(httpx.MockTransport(handle), clock, ReplayRequest(0.0, 3, 5))
    assert not result.ok and result.shed
    assert result.ttft_s is None and result.tpot_s is None and result.tokens == 0
