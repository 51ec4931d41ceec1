"""A stream sends its first text at once, then at most one event per interval, and its end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from serving.continuous import Delta, coalesced


def run(deltas: list[tuple[float, Delta]], interval_s: float) -> list[tuple[float, Delta]]:
    now = [0.0]

    async def source() -> AsyncIterator[Delta]:
        for at, delta in deltas:
            now[0] = at
            yield delta

    async def drain() -> list[tuple[float, Delta]]:
        return [(now[0], d) async for d in coalesced(source(), interval_s, lambda: now[0])]

    return asyncio.run(drain())


def test_tokens_within_the_interval_go_out_as_one_event_and_nothing_is_lost() -> None:
    steps = [(0.01 * i, Delta(c, i + 1)) for i, c in enumerate("abcdefghij")]
    steps[-1] = (0.09, Delta("j", 10, "length"))
    sent = run(steps, interval_s=0.035)
    assert [(round(t, 2), d.text) for t, d in sent] == [
        (0.0, "a"),  # the first token at once
        (0.04, "bcde"),
        (0.08, "fghi"),
        (0.09, "j"),  # the end at once
    ]
    assert sent[-1][1] == Delta("j", 10, "length")
    assert "".join(d.text for _, d in sent) == "abcdefghij"
    assert [d.completion_tokens for _, d in sent] == [1, 5, 9, 10]


def test_no_interval_sends_every_delta_with_text() -> None:
    steps = [(0.0, Delta("a", 1)), (0.0, Delta("", 2)), (0.0, Delta("b", 3, "stop"))]
    assert [d for _, d in run(steps, 0.0)] == [Delta("a", 1), Delta("b", 3, "stop")]


def test_a_stream_that_ends_without_a_reason_still_sends_what_it_held() -> None:
    steps = [(0.0, Delta("a", 1)), (0.001, Delta("b", 2))]
    assert [d.text for _, d in run(steps, 1.0)] == ["a", "b"]
