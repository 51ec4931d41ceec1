"""OpenAI-compatible request schemas, their limits, the response bodies, and the OpenAPI
document that states them."""

from __future__ import annotations

import base64
import copy
import time
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from serving.errors import ApiError
from serving.http_body import MAX_JSON_INT, MIN_JSON_INT, REFUSED_CHARACTERS, BodyLimits
from serving.results import CompletionResult, EmbeddingResult
from serving.spec import RouterArgs, describe

EMBEDDINGS_PATH = "/v1/embeddings"
COMPLETIONS_PATH = "/v1/completions"
CHAT_PATH = "/v1/chat/completions"
TASK_PATHS = {"embeddings": (EMBEDDINGS_PATH,), "generation": (COMPLETIONS_PATH, CHAT_PATH)}
TEXT_PATTERN = "^[^\\u0000]*$"
"""Documents that strings hold no NUL; a JSON Schema pattern cannot name lone surrogates,
which no Unicode string holds, so the document's text says so instead."""


def _only(schema: dict[str, Any]) -> WithJsonSchema:
    """Documents the values an option accepts here, where OpenAI accepts more."""
    return WithJsonSchema({**schema, "description": "OpenAI's other values are not supported here"})


_NULL = {"type": "null"}

GREEDY_BELOW_TEMPERATURE = 1e-5
"""Temperatures under this decode greedily, as 0 does (vLLM's rule too): dividing logits by
a temperature near zero overflows float32 and the sampler fails on the infinities."""


class EmbeddingRequest(BaseModel):
    """Body of `POST /v1/embeddings`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int | None, _only(_NULL)] = None
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


class StreamOptions(BaseModel):
    """`stream_options`: what a stream adds besides its chunks."""

    model_config = ConfigDict(extra="forbid", strict=True)

    include_usage: bool = False
    """A last chunk, before `[DONE]`, with no choices and the request's token usage."""


class SamplingRequest(BaseModel):
    """What completions and chat completions share: sampling, stops, streaming, and the
    OpenAI options this server does not support (accepted only at their defaults)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str
    max_tokens: int | None = None
    temperature: float = Field(
        default=1.0,
        ge=0.0,
        le=2.0,
        description=f"0, or under {GREEDY_BELOW_TEMPERATURE}, decodes greedily",
    )
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: Annotated[int, _only({"type": "integer", "enum": [1]})] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: Annotated[
        str | list[str] | None,
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "string"}, "maxItems": 4},
                    _NULL,
                ]
            }
        ),
    ] = None
    seed: Annotated[int | None, _only(_NULL)] = None
    presence_penalty: Annotated[float, _only({"type": "number", "enum": [0]})] = 0.0
    frequency_penalty: Annotated[float, _only({"type": "number", "enum": [0]})] = 0.0
    logit_bias: Annotated[
        dict[str, float] | None, _only({"anyOf": [{"type": "object", "maxProperties": 0}, _NULL]})
    ] = None
    user: str | None = None

    def _unsupported(self) -> dict[str, bool]:
        """Options set away from their defaults that this server cannot honour."""
        return {
            "n": self.n != 1,
            "presence_penalty": self.presence_penalty != 0.0,
            "frequency_penalty": self.frequency_penalty != 0.0,
            "logit_bias": bool(self.logit_bias),
            "seed": self.seed is not None,
        }

    @model_validator(mode="after")
    def _supported(self) -> SamplingRequest:
        named = [name for name, used in self._unsupported().items() if used]
        if named:
            raise ValueError(f"not supported here: {', '.join(named)}; leave them at defaults")
        if isinstance(self.stop, list) and len(self.stop) > 4:
            raise ValueError("stop takes at most 4 sequences")
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed with stream=true")
        return self

    @property
    def sampling_temperature(self) -> float:
        """The temperature to sample with: 0 (greedy) for any under GREEDY_BELOW_TEMPERATURE."""
        return 0.0 if self.temperature < GREEDY_BELOW_TEMPERATURE else self.temperature

    @property
    def stops(self) -> tuple[str, ...]:
        """The stop sequences as a tuple."""
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class CompletionRequest(SamplingRequest):
    """Body of `POST /v1/completions` (the features this server supports)."""

    prompt: str | list[str]
    echo: Annotated[bool, _only({"type": "boolean", "enum": [False]})] = False
    logprobs: Annotated[int | None, _only(_NULL)] = None
    best_of: Annotated[int | None, _only({"enum": [1, None]})] = None
    suffix: Annotated[str | None, _only(_NULL)] = None

    def _unsupported(self) -> dict[str, bool]:
        return {
            **super()._unsupported(),
            "echo": self.echo,
            "logprobs": self.logprobs is not None,
            "best_of": self.best_of not in (None, 1),
            "suffix": self.suffix is not None,
        }

    @model_validator(mode="after")
    def _one_prompt_to_stream(self) -> CompletionRequest:
        if self.stream and isinstance(self.prompt, list) and len(self.prompt) != 1:
            raise ValueError("stream=true takes one prompt")
        return self

    @property
    def prompts(self) -> list[str]:
        """The prompts as a list."""
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


Request = TypeVar("Request", bound=BaseModel)


def parse_request(schema: type[Request], body: dict[str, Any]) -> Request:
    """Validate a body; a failure is a 400 that names the field."""
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]["loc"]
        raise ApiError(
            400, describe(exc, "body"), param=".".join(str(p) for p in first) or None
        ) from exc


def check_inputs(texts: list[str], field: str, args: RouterArgs) -> None:
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


def max_tokens_of(request: Any, args: RouterArgs, field: str = "max_tokens") -> int:
    """The request's `max_tokens` (or `field`), defaulted and checked against the range."""
    asked = getattr(request, field)
    if asked is None:
        return args.default_max_tokens
    if not 1 <= asked <= args.max_tokens_limit:
        raise ApiError(
            400,
            f"{field} must be within 1..{args.max_tokens_limit}, got {asked}",
            param=field,
        )
    return int(asked)


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
    ids = model_ids(model_name, versions)
    return {
        "object": "list",
        "data": [
            {"id": i, "object": "model", "created": created, "owned_by": "governor"} for i in ids
        ],
    }


class ErrorDetail(BaseModel):
    """What went wrong, in OpenAI's words: `type` is the class, `code` the precise reason."""

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    """Every error answer of the server, whatever its status or route."""

    error: ErrorDetail


class EmbeddingData(BaseModel):
    """One input's vector: floats, or base64 of little-endian float32."""

    object: Literal["embedding"]
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    """Tokens the model read."""

    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    """Answer of `POST /v1/embeddings`."""

    object: Literal["list"]
    model: str
    data: list[EmbeddingData]
    usage: EmbeddingUsage


class CompletionChoice(BaseModel):
    """The text generated for one prompt."""

    index: int
    text: str
    logprobs: None
    finish_reason: Literal["stop", "length"]


class CompletionUsage(BaseModel):
    """Tokens read and generated."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionList(BaseModel):
    """Answer of `POST /v1/completions`."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage


class ModelCard(BaseModel):
    """One model id this application answers to."""

    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    """Answer of `GET /v1/models`."""

    object: Literal["list"]
    data: list[ModelCard]


_ERROR_STATUSES = {
    400: "refused input: not JSON, not UTF-8, too deeply nested, a number that is not "
    "finite or not 64-bit, a string with NUL or a lone surrogate, or a field out of its limits",
    404: "the model or the endpoint is not served by this application",
    413: "the body is over the application's byte limit",
    500: "the version that served the request failed",
    503: "the version is overloaded or has no replica; retry after Retry-After seconds",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for error statuses, all with the OpenAI error body."""
    return {
        status: {"model": ErrorBody, "description": _ERROR_STATUSES[status]} for status in statuses
    }


def model_ids(model_name: str, versions: list[str]) -> list[str]:
    """The model ids an application answers to: its name, then one pinned id per version."""
    return [model_name, *(f"{model_name}:{v}" for v in versions)]


def openapi_document(
    base: dict[str, Any], args: RouterArgs, versions: Sequence[str], limits: BodyLimits
) -> dict[str, Any]:
    """One application's OpenAPI document: its own endpoints, request schemas and limits."""
    served = TASK_PATHS[args.task]
    every = {path for paths in TASK_PATHS.values() for path in paths}
    document = copy.deepcopy(base)
    document["paths"] = {
        path: operations
        for path, operations in document["paths"].items()
        if path in served or path not in every
    }
    for path in served:
        document["paths"][path]["post"]["requestBody"] = {
            "required": True,
            "description": limits.describe(),
            "content": {"application/json": {"schema": request_schema(args, versions, path)}},
        }
    document["info"]["description"] = (
        f"OpenAI-compatible {args.task} for `{args.model_name}`. Limits: "
        f"{limits.describe()}; at most {args.max_inputs} inputs of at most "
        f"{args.max_input_chars} characters each. Every error body is "
        '`{"error": {"message", "type", "param", "code"}}`.'
    )
    document["x-governor-limits"] = _limits(args, limits)
    return document


def _limits(args: RouterArgs, limits: BodyLimits) -> dict[str, Any]:
    described: dict[str, Any] = {
        "max_body_bytes": limits.max_bytes,
        "max_json_depth": limits.max_depth,
        "integer_range": [MIN_JSON_INT, MAX_JSON_INT],
        "refused_characters": REFUSED_CHARACTERS,
        "max_inputs": args.max_inputs,
        "max_input_chars": args.max_input_chars,
    }
    if args.task == "generation":
        described["max_tokens"] = args.max_tokens_limit
    return described


def request_schema(
    args: RouterArgs, versions: Sequence[str], path: str | None = None
) -> dict[str, Any]:
    """The JSON Schema of a served endpoint's body, with this application's limits."""
    from serving.openai_chat import ChatCompletionRequest, bound_messages

    path = path or TASK_PATHS[args.task][0]
    schemas: dict[str, type[BaseModel]] = {
        EMBEDDINGS_PATH: EmbeddingRequest,
        COMPLETIONS_PATH: CompletionRequest,
        CHAT_PATH: ChatCompletionRequest,
    }
    schema = _inline_definitions(schemas[path].model_json_schema())
    properties = schema["properties"]
    text = {"type": "string", "minLength": 1, "maxLength": args.max_input_chars}
    texts = {"type": "array", "items": text, "minItems": 1, "maxItems": args.max_inputs}
    properties["model"]["enum"] = model_ids(args.model_name, list(versions))
    bounded = {"type": "integer", "minimum": 1, "maximum": args.max_tokens_limit}
    if path == EMBEDDINGS_PATH:
        properties["input"]["anyOf"] = [text, texts]
    elif path == COMPLETIONS_PATH:
        properties["prompt"]["anyOf"] = [text, texts]
        properties["max_tokens"]["anyOf"] = [bounded, _NULL]
    else:
        bound_messages(schema, args)
        for field in ("max_tokens", "max_completion_tokens"):
            properties[field]["anyOf"] = [bounded, _NULL]
    _forbid_nul(schema)
    return schema


def _inline_definitions(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with each `$ref` to its own `$defs` replaced by the definition.

    Inside an OpenAPI document `#/$defs/...` would point at the document's root, where
    there is none; the request models nest no deeper than one level and never recurse.
    """
    definitions = schema.pop("$defs", {})

    def inline(item: Any) -> Any:
        if isinstance(item, dict):
            ref = item.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(copy.deepcopy(definitions[ref.removeprefix("#/$defs/")]))
            return {key: inline(value) for key, value in item.items()}
        if isinstance(item, list):
            return [inline(value) for value in item]
        return item

    inlined: dict[str, Any] = inline(schema)
    return inlined


def _forbid_nul(schema: dict[str, Any]) -> None:
    """Give every free string of a schema the pattern that keeps NUL out."""
    pending: list[Any] = [schema]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            if item.get("type") == "string" and "enum" not in item:
                item.setdefault("pattern", TEXT_PATTERN)
            pending.extend(item.values())
