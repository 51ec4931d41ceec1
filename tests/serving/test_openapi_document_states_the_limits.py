"""Each application's OpenAPI document names its own endpoint, schemas and limits."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from fastapi.openapi.utils import get_openapi

from serving.http_body import MAX_JSON_DEPTH, BodyLimits
from serving.openai_api import CHAT_PATH, COMPLETIONS_PATH, EMBEDDINGS_PATH, openapi_document
from serving.router import API_VERSION, OPENAPI_PATH, api
from serving.spec import AppArgs


def _args(task: str) -> AppArgs:
    return AppArgs.model_validate(
        {
            "task": task,
            "model_name": "m",
            "versions": [{"name": "v1", "model": "x"}, {"name": "v2", "model": "x"}],
            "max_inputs": 3,
            "max_input_chars": 10,
            "max_body_bytes": 4096,
            "max_tokens_limit": 32,
        }
    )


def _document(task: str) -> dict[str, Any]:
    base = get_openapi(title=api.title, version=API_VERSION, routes=api.routes)
    return openapi_document(base, _args(task), ["v1", "v2"], BodyLimits(max_bytes=4096))


def _body_schema(document: dict[str, Any], path: str) -> dict[str, Any]:
    body = document["paths"][path]["post"]["requestBody"]
    assert "4096 bytes" in body["description"]
    schema: dict[str, Any] = body["content"]["application/json"]["schema"]
    return schema


def test_only_the_served_endpoint_is_documented() -> None:
    embeddings, generation = _document("embeddings"), _document("generation")
    assert EMBEDDINGS_PATH in embeddings["paths"] and COMPLETIONS_PATH not in embeddings["paths"]
    assert COMPLETIONS_PATH in generation["paths"] and EMBEDDINGS_PATH not in generation["paths"]
    assert CHAT_PATH in generation["paths"] and CHAT_PATH not in embeddings["paths"]
    assert OPENAPI_PATH not in embeddings["paths"]
    assert api.docs_url is None and api.redoc_url is None


def test_limits_are_stated() -> None:
    document = _document("generation")
    assert document["x-governor-limits"] == {
        "max_body_bytes": 4096,
        "max_json_depth": MAX_JSON_DEPTH,
        "integer_range": [-(2**63), 2**63 - 1],
        "refused_characters": "NUL (U+0000) or a lone surrogate (U+D800..U+DFFF)",
        "max_inputs": 3,
        "max_input_chars": 10,
        "max_tokens": 32,
    }
    assert f"nested at most {MAX_JSON_DEPTH} deep" in document["info"]["description"]


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"model": "m", "input": "hi"}, True),
        ({"model": "m:v2", "input": ["a", "b", "c"]}, True),
        ({"model": "m:v3", "input": "hi"}, False),
        ({"model": "m", "input": ["a", "b", "c", "d"]}, False),
        ({"model": "m", "input": "x" * 11}, False),
        ({"model": "m", "input": ""}, False),
        ({"model": "m", "input": "a\x00b"}, False),
        ({"model": "m", "input": "hi", "dimensions": 8}, False),
        ({"model": "m", "input": "hi", "extra": 1}, False),
    ],
)
def test_embeddings_schema_carries_the_limits(body: dict[str, Any], valid: bool) -> None:
    schema = _body_schema(_document("embeddings"), EMBEDDINGS_PATH)
    assert jsonschema.Draft202012Validator(schema).is_valid(body) is valid


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"model": "m", "prompt": "hi", "max_tokens": 32, "stop": ["a"] * 4}, True),
        ({"model": "m", "prompt": "hi", "max_tokens": 33}, False),
        ({"model": "m", "prompt": "hi", "n": 2}, False),
        ({"model": "m", "prompt": "hi", "stream": True}, True),
        ({"model": "m", "prompt": "hi", "seed": 3}, False),
        ({"model": "m", "prompt": "hi", "stop": ["a"] * 5}, False),
        ({"model": "m", "prompt": "hi", "logit_bias": {"1": 1.0}}, False),
    ],
)
def test_completions_schema_marks_unsupported_options(body: dict[str, Any], valid: bool) -> None:
    schema = _body_schema(_document("generation"), COMPLETIONS_PATH)
    assert jsonschema.Draft202012Validator(schema).is_valid(body) is valid


def test_errors_are_documented_as_openai_bodies() -> None:
    responses = _document("embeddings")["paths"][EMBEDDINGS_PATH]["post"]["responses"]
    for status in ("400", "404", "413", "500", "503"):
        schema = responses[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, True),
        ({"model": "m:v2", "messages": [{"role": "user", "content": "hi"}], "stream": True}, True),
        ({"model": "m", "messages": []}, False),
        ({"model": "m", "messages": [{"role": "user", "content": "x" * 11}]}, False),
        ({"model": "m", "messages": [{"role": "user", "content": "hi"}] * 4}, False),
        ({"model": "m", "messages": [{"role": "robot", "content": "hi"}]}, False),
        ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 33}, False),
        ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 2}, False),
        ({"model": "m", "messages": [{"role": "user", "content": "a\x00"}]}, False),
    ],
)
def test_chat_schema_carries_the_limits(body: dict[str, Any], valid: bool) -> None:
    schema = _body_schema(_document("generation"), CHAT_PATH)
    assert jsonschema.Draft202012Validator(schema).is_valid(body) is valid
