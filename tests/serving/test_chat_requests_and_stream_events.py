"""Chat requests are checked before any version is chosen, and streams are written in
OpenAI's chunk format; a model without a chat template refuses chats by name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from serving.errors import ApiError, InputRejectedError
from serving.generation import Generator
from serving.openai_api import CompletionRequest, parse_request
from serving.openai_chat import DONE, ChatCompletionRequest, StreamFormat
from serving.results import StreamChunk
from serving.spec import VersionSpec

HI = [{"role": "user", "content": "hi"}]


def events(*chunks: bytes) -> list[dict[str, Any]]:
    return [json.loads(c.decode().removeprefix("data: ")) for c in chunks]


def test_a_chat_stream_opens_with_the_role_and_ends_with_the_reason() -> None:
    fmt = StreamFormat("m", chat=True, include_usage=False)
    first, middle, last = events(
        fmt.chunk(StreamChunk("", None, 3, 0)),
        fmt.chunk(StreamChunk("he", None, 3, 1)),
        fmt.chunk(StreamChunk("y", "stop", 3, 2)),
    )
    assert first["object"] == "chat.completion.chunk"
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert middle["choices"][0]["delta"] == {"content": "he"}
    assert last["choices"][0]["finish_reason"] == "stop"
    assert first["id"] == last["id"] and first["id"].startswith("chatcmpl-")
    assert "usage" not in first


def test_usage_comes_last_with_no_choices_when_asked_for() -> None:
    fmt = StreamFormat("m", chat=False, include_usage=True)
    chunk, usage = events(
        fmt.chunk(StreamChunk("x", "length", 3, 1)), fmt.usage(StreamChunk("", "length", 3, 5))
    )
    assert chunk["usage"] is None and chunk["choices"][0]["text"] == "x"
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    assert DONE == b"data: [DONE]\n\n"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": ["hi"]}]}, "messages.0.content"),
        ({"messages": []}, "messages"),
        ({"messages": HI, "n": 3}, None),
        ({"messages": HI, "max_tokens": 4, "max_completion_tokens": 4}, None),
        ({"messages": HI, "stream_options": {"include_usage": True}}, None),
        ({"messages": HI, "stream": True, "stream_options": {"other": 1}}, "stream_options.other"),
        ({"messages": HI, "functions": []}, "functions"),
    ],
)
def test_bad_chat_requests_are_400s(body: dict[str, Any], param: str | None) -> None:
    with pytest.raises(ApiError) as refused:
        parse_request(ChatCompletionRequest, {"model": "m", **body})
    assert refused.value.status == 400
    if param is not None:
        assert refused.value.param == param


def test_a_stream_takes_one_prompt() -> None:
    with pytest.raises(ApiError, match="one prompt"):
        parse_request(CompletionRequest, {"model": "m", "prompt": ["a", "b"], "stream": True})
    request = parse_request(CompletionRequest, {"model": "m", "prompt": ["a"], "stream": True})
    assert request.stream


def test_a_model_without_a_chat_template_refuses_chats(tiny_causal_lm: Path) -> None:
    generator = Generator.load(VersionSpec(name="v1", model=str(tiny_causal_lm), device="cpu"))
    assert "assistant:" in generator.render_chat(HI)
    generator.tokenizer.chat_template = None
    with pytest.raises(InputRejectedError, match="no chat template"):
        generator.render_chat(HI)
