"""OpenAI-compatible request schemas, their limits, and the response bodies."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from serving.errors import ApiError
from serving.results import CompletionResult, EmbeddingResult
from serving.spec import AppArgs, describe


class EmbeddingRequest(BaseModel):
    """Body of `POST /v1/embeddings`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None

    @model_validator(mode="after")
    def _supported(self) -> EmbeddingRequest:
        if self.dimensions is not None:
            raise ValueError("dimensions is not supported; omit it to get the model's size")
        return self

    @property
    def texts(self) -> list[str]:
        """The inputs as a list."""
        return [self.input] if isinstance(self.input, str) else list(self.input)


class CompletionRequest(BaseModel):
    """Body of `POST /v1/completions` (the features this server supports)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str
    prompt: str | list[str]
    max_tokens: int | None = None
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: int = 1
    stream: bool = False
    stop: str | list[str] | None = None
    echo: bool = False
    logprobs: int | None = None
    best_of: int | None = None
    suffix: str | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[str, float] | None = None
    seed: int | None = None
    stream_options: dict[str, Any] | None = None
    user: str | None = None

    @model_validator(mode="after")
    def _supported(self) -> CompletionRequest:
        unsupported = {
            "n": self.n != 1,
            "echo": self.echo,
            "logprobs": self.logprobs is not None,
            "best_of": self.best_of not in (None, 1),
            "suffix": self.suffix is not None,
            "presence_penalty": self.presence_penalty != 0.0,
            "frequency_penalty": self.frequency_penalty != 0.0,
            "logit_bias": bool(self.logit_bias),
            "seed": self.seed is not None,
            "stream_options": self.stream_options is not None,
        }
        named = [name for name, used in unsupported.items() if used]
        if named:
            raise ValueError(f"not supported here: {', '.join(named)}; leave them at defaults")
        if isinstance(self.stop, list) and len(self.stop) > 4:
            raise ValueError("stop takes at most 4 sequences")
        return self

    @property
    def prompts(self) -> list[str]:
        """The prompts as a list."""
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    @property
    def stops(self) -> tuple[str, ...]:
        """The stop sequences as a tuple."""
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


Request = TypeVar("Request", bound=BaseModel)


def parse_request(schema: type[Request], body: dict[str, Any]) -> Request:
    """Validate a body; a failure is a 400 that names the field."""
    if body.get("stream") is True:
        raise ApiError(
            400,
            "stream=true is not supported yet; send stream=false for a single response",
            param="stream",
            code="unsupported_parameter",
        )
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]["loc"]
        raise ApiError(
            400, describe(exc, "body"), param=".".join(str(p) for p in first) or None
        ) from exc


def check_inputs(texts: list[str], field: str, args: AppArgs) -> None:
    """Refuse empty input, too many inputs, and inputs over the character limit."""
    if not texts:
        raise ApiError(400, f"{field} must not be empty", param=field)
    if len(texts) > args.max_inputs:
        raise ApiError(
            400,
            f"{field} has {len(texts)} items; the maximum is {args.max_inputs}",
            param=field,
        )
    for index, text in enumerate(texts):
        where = field if len(texts) == 1 else f"{field}[{index}]"
        if not text:
            raise ApiError(400, f"{where} is an empty string", param=field)
        if len(text) > args.max_input_chars:
            raise ApiError(
                400,
                f"{where} is {len(text)} characters; the maximum is {args.max_input_chars}",
                param=field,
            )


def max_tokens_of(request: CompletionRequest, args: AppArgs) -> int:
    """The request's `max_tokens`, defaulted and checked against the configured range."""
    if request.max_tokens is None:
        return args.default_max_tokens
    if not 1 <= request.max_tokens <= args.max_tokens_limit:
        raise ApiError(
            400,
            f"max_tokens must be within 1..{args.max_tokens_limit}, got {request.max_tokens}",
            param="max_tokens",
        )
    return request.max_tokens


def _encode(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    values: list[float] = vector.astype(np.float32).tolist()
    return values


def embeddings_body(result: EmbeddingResult, model: str, encoding_format: str) -> dict[str, Any]:
    """The OpenAI embeddings response for a result."""
    return {
        "object": "list",
        "model": model,
        "data": [
            {"object": "embedding", "index": i, "embedding": _encode(row, encoding_format)}
            for i, row in enumerate(result.vectors)
        ],
        "usage": {"prompt_tokens": result.input_tokens, "total_tokens": result.input_tokens},
    }


def completions_body(result: CompletionResult, model: str) -> dict[str, Any]:
    """The OpenAI completions response for a result."""
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": i, "text": c.text, "logprobs": None, "finish_reason": c.finish_reason}
            for i, c in enumerate(result.completions)
        ],
        "usage": {
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens,
        },
    }


def models_body(model_name: str, versions: list[str], created: int) -> dict[str, Any]:
    """The OpenAI model list: the routed name, then one pinned id per version."""
    ids = [model_name, *(f"{model_name}:{v}" for v in versions)]
    return {
        "object": "list",
        "data": [
            {"id": i, "object": "model", "created": created, "owned_by": "governor"} for i in ids
        ],
    }
