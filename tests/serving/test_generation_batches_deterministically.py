"""Batched generation with left padding gives the same greedy text as one prompt alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.errors import InputRejectedError
from serving.generation import Generator
from serving.spec import VersionSpec


@pytest.fixture(scope="module")
def generator(tiny_causal_lm: Path) -> Generator:
    return Generator.load(VersionSpec(name="v1", model=str(tiny_causal_lm), device="cpu"))


def test_greedy_output_does_not_depend_on_the_batch(generator: Generator) -> None:
    short = generator.encode("hello", max_tokens=6)
    long = generator.encode("the quick brown fox jumps over", max_tokens=6)
    alone = generator.generate([short])[0]
    batched = generator.generate([long, short])[1]
    assert batched == alone
    assert generator.generate([short]) == [alone]


def test_each_prompt_keeps_its_own_max_tokens(generator: Generator) -> None:
    prompts = [generator.encode("hello", max_tokens=2), generator.encode("hello", max_tokens=9)]
    first, second = generator.generate(prompts)
    assert first.completion_tokens <= 2 and second.completion_tokens <= 9
    assert first.finish_reason in {"length", "stop"}


def test_sampled_and_greedy_prompts_share_a_call_in_groups(generator: Generator) -> None:
    prompts = [
        generator.encode("hello", max_tokens=4, temperature=0.9),
        generator.encode("hello", max_tokens=4),
    ]
    sampled, greedy = generator.generate(prompts)
    assert greedy == generator.generate([generator.encode("hello", max_tokens=4)])[0]
    assert sampled.completion_tokens <= 4


def test_prompt_over_the_context_is_refused(generator: Generator) -> None:
    with pytest.raises(InputRejectedError, match="exceeds the model's context of 128 tokens"):
        generator.encode("hello world " * 60, max_tokens=8)


def test_stop_sequence_cuts_the_text_and_finishes_with_stop(generator: Generator) -> None:
    full = generator.generate([generator.encode("hello", max_tokens=8)])[0]
    assert len(full.text) > 2
    stop = full.text[2:4]
    cut = generator.generate([generator.encode("hello", max_tokens=8, stop=(stop,))])[0]
    assert cut.text == full.text[: full.text.find(stop)]
    assert cut.finish_reason == "stop"
