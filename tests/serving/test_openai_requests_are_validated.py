"""OpenAI request bodies: wrong types, limits and unsupported features are 400s."""

from __future__ import annotations

from typing import Any

import pytest

from serving.errors import ApiError
from serving.openai_api import (
    CompletionRequest,
    EmbeddingRequest,
    check_inputs,
    max_tokens_of,
    parse_request,
)
from serving.spec import AppArgs

ARGS = AppArgs.model_validate(
    {
        "task": "embeddings",
        "model_name": "minilm",
        "versions": [{"name": "v1", "model": "bundled:all-MiniLM-L6-v2"}],
        "max_inputs": 3,
        "max_input_chars": 10,
        "max_tokens_limit": 32,
    }
)


def _api_error(schema: Any, body: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_request(schema, body)
    return caught.value


def test_string_or_list_input_is_accepted() -> None:
    assert parse_request(EmbeddingRequest, {"model": "m", "input": "hi"}).texts == ["hi"]
    assert parse_request(EmbeddingRequest, {"model": "m", "input": ["a", "b"]}).texts == ["a", "b"]


def test_missing_field_is_named() -> None:
    error = _api_error(EmbeddingRequest, {"input": "hi"})
    assert error.status == 400 and "body.model: Field required" in error.message
    assert error.param == "model"


def test_wrong_typed_field_is_named() -> None:
    error = _api_error(CompletionRequest, {"model": "m", "prompt": "x", "max_tokens": "5"})
    assert error.status == 400 and "body.max_tokens" in error.message


def test_token_arrays_are_refused() -> None:
    error = _api_error(EmbeddingRequest, {"model": "m", "input": [[1, 2, 3]]})
    assert error.status == 400 and "body.input" in error.message


def test_stream_options_without_stream_is_a_clear_400() -> None:
    body = {"model": "m", "prompt": "x", "stream_options": {"include_usage": True}}
    error = _api_error(CompletionRequest, body)
    assert error.status == 400 and "only allowed with stream=true" in error.message


def test_unsupported_features_are_named() -> None:
    error = _api_error(CompletionRequest, {"model": "m", "prompt": "x", "n": 2, "echo": True})
    assert "n, echo" in error.message


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ([], "input must not be empty"),
        (["a", "b", "c", "d"], "input has 4 items; the maximum is 3"),
        (["a", ""], "input[1] is an empty string"),
        (["a" * 11], "input is 11 characters; the maximum is 10"),
    ],
)
def test_input_limits(texts: list[str], message: str) -> None:
    with pytest.raises(ApiError) as caught:
        check_inputs(texts, "input", ARGS)
    assert caught.value.status == 400 and message in caught.value.message


@pytest.mark.parametrize("max_tokens", [0, 33, -1])
def test_max_tokens_out_of_range_is_400(max_tokens: int) -> None:
    request = parse_request(
        CompletionRequest, {"model": "m", "prompt": "x", "max_tokens": max_tokens}
    )
    with pytest.raises(ApiError, match=r"max_tokens must be within 1\.\.32"):
        max_tokens_of(request, ARGS)


def test_max_tokens_defaults_from_args() -> None:
    request = parse_request(CompletionRequest, {"model": "m", "prompt": "x"})
    assert max_tokens_of(request, ARGS) == ARGS.default_max_tokens
