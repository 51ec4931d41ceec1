"""transformers' continuous batching behind one stream per request, on the test-made tiny LM."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.continuous import ContinuousEngine, Delta, collect
from serving.generation import Generator
from serving.spec import VersionSpec


@pytest.fixture(scope="module")
def engine(tiny_causal_lm: Path) -> Iterator[ContinuousEngine]:
    generator = Generator.load(VersionSpec(name="v1", model=str(tiny_causal_lm), device="cpu"))
    engine = ContinuousEngine(generator, max_sequences=4)
    engine.start()
    yield engine
    engine.stop()


async def deltas(engine: ContinuousEngine, text: str, **sampling: object) -> list[Delta]:
    prompt = engine.generator.encode(text, **sampling)  # type: ignore[arg-type]
    return [d async for d in engine.stream(prompt)]


def test_a_stream_adds_up_to_its_text_and_ends_at_max_tokens(engine: ContinuousEngine) -> None:
    got = asyncio.run(deltas(engine, "hello world", max_tokens=12, temperature=0.0))
    assert got[-1].finish_reason in ("length", "stop")
    assert all(d.finish_reason is None for d in got[:-1])
    counts = [d.completion_tokens for d in got]
    assert counts == sorted(counts) and 1 <= counts[-1] <= 12
    if got[-1].finish_reason == "length":
        assert counts[-1] == 12


def test_temperature_zero_decodes_the_same_text_every_time(engine: ContinuousEngine) -> None:
    runs = [
        "".join(
            d.text for d in asyncio.run(deltas(engine, "the quick", max_tokens=10, temperature=0.0))
        )
        for _ in range(3)
    ]
    assert runs[0] == runs[1] == runs[2]


def test_a_stop_string_ends_the_text_before_it(engine: ContinuousEngine) -> None:
    full = "".join(
        d.text for d in asyncio.run(deltas(engine, "the quick", max_tokens=16, temperature=0.0))
    )
    assert len(full) >= 4, full
    stop = full[2:4]
    got = asyncio.run(deltas(engine, "the quick", max_tokens=16, temperature=0.0, stop=(stop,)))
    text = "".join(d.text for d in got)
    assert got[-1].finish_reason == "stop"
    assert stop not in text and full.startswith(text)


def test_a_closed_stream_leaves_the_running_batch(engine: ContinuousEngine) -> None:
    async def scenario() -> tuple[int, int, float | None, float | None]:
        prompt = engine.generator.encode("hello", max_tokens=100, temperature=1.0)
        stream = engine.stream(prompt)
        await anext(stream)
        running_before, _ = engine.sequences()
        kv_before = engine.kv_cache_usage()
        await stream.aclose()  # the client went away
        deadline = time.monotonic() + 10
        while engine.sequences()[0] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return running_before, engine.sequences()[0], kv_before, engine.kv_cache_usage()

    before, after, kv_before, kv_after = asyncio.run(scenario())
    assert before == 1
    assert after == 0
    assert engine.manager.output_router.result_handlers == {}
    assert kv_before is not None and kv_after is not None
    assert 0 < kv_before <= 1, "a running sequence holds pages of the KV cache"
    assert kv_after < kv_before, "a cancelled sequence gives its pages back"


def test_a_short_sequence_returns_while_a_long_one_still_runs(engine: ContinuousEngine) -> None:
    async def scenario() -> tuple[float, float]:
        # Greedy, so the test model's long answer runs its full length every time.
        long = engine.generator.encode("hello world", max_tokens=100, temperature=0.0)
        short = engine.generator.encode("the quick", max_tokens=2, temperature=1.0)

        async def timed(prompt: object) -> float:
            _, last, _ = await collect(engine.stream(prompt))  # type: ignore[arg-type]
            assert prompt is not long or last.finish_reason == "length"
            return time.perf_counter()

        long_task = asyncio.create_task(timed(long))
        await asyncio.sleep(0.05)
        short_done = await timed(short)
        return short_done, await long_task

    short_done, long_done = asyncio.run(scenario())
    assert short_done < long_done
