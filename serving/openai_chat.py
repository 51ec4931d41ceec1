"""OpenAI chat completions, and the server-sent events of streamed completions and chats."""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from serving.openai_api import CompletionUsage, SamplingRequest, StreamOptions, _only
from serving.results import CompletionResult, StreamChunk
from serving.spec import RouterArgs

ROLES = ("system", "developer", "user", "assistant")
SSE_CONTENT = {
    "text/event-stream": {
        "schema": {
            "description": "with stream=true: one event per chunk, then `data: [DONE]`",
            "type": "object",
            "required": ["data"],
            "properties": {
                "data": {
                    "type": "string",
                    "description": "a chunk as JSON (or an error body), or `[DONE]`",
                },
                "event": {"type": "string"},
            },
        },
    }
}
"""The stream's media type in the OpenAPI document; its schema is one event's, as
OpenAPI 3.1 tools read an event stream's schema (3.2 names it `itemSchema`)."""
DONE = b"data: [DONE]\n\n"


class ChatMessage(BaseModel):
    """One turn of a conversation: who said it and what (text only)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["system", "developer", "user", "assistant"]
    content: StrictStr = Field(min_length=1)
    name: str | None = None


class ChatCompletionRequest(SamplingRequest):
    """Body of `POST /v1/chat/completions` (the features this server supports)."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = None
    logprobs: Annotated[bool | None, _only({"enum": [False, None]})] = None

    def _unsupported(self) -> dict[str, bool]:
        return {**super()._unsupported(), "logprobs": bool(self.logprobs)}

    @model_validator(mode="after")
    def _one_limit(self) -> ChatCompletionRequest:
        if self.max_tokens is not None and self.max_completion_tokens is not None:
            raise ValueError("give max_completion_tokens or max_tokens, not both")
        return self

    @property
    def token_field(self) -> str:
        """Which of the two names for the output limit the request used."""
        return "max_tokens" if self.max_tokens is not None else "max_completion_tokens"

    def plain_messages(self) -> list[dict[str, str]]:
        """The messages as a chat template takes them."""
        return [{"role": m.role, "content": m.content} for m in self.messages]


def bound_messages(schema: dict[str, Any], args: RouterArgs) -> None:
    """Give the documented chat schema this application's limits on messages."""
    properties = schema["properties"]
    properties["messages"]["maxItems"] = args.max_inputs
    message = properties["messages"]["items"]["properties"]["content"]
    message["maxLength"] = args.max_input_chars


class ChatChoiceMessage(BaseModel):
    """The assistant's answer."""

    role: Literal["assistant"]
    content: str


class ChatChoice(BaseModel):
    """The answer generated for the conversation."""

    index: int
    message: ChatChoiceMessage
    logprobs: None
    finish_reason: Literal["stop", "length"]


class ChatCompletion(BaseModel):
    """Answer of `POST /v1/chat/completions` without streaming."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: CompletionUsage


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion_body(result: CompletionResult, model: str) -> dict[str, Any]:
    """The OpenAI chat completion response for a result (one completion)."""
    (completion,) = result.completions
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": completion.text},
                "logprobs": None,
                "finish_reason": completion.finish_reason,
            }
        ],
        "usage": _usage(result.prompt_tokens, result.completion_tokens),
    }


class StreamFormat:
    """Server-sent events of one streamed completion (`chat` or not), in OpenAI's chunk format."""

    def __init__(self, model: str, chat: bool, include_usage: bool) -> None:
        self.model = model
        self.chat = chat
        self.include_usage = include_usage
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.started = False

    def _event(self, choices: list[dict[str, Any]], usage: dict[str, int] | None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = usage
        return f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n".encode()

    def chunk(self, step: StreamChunk) -> bytes:
        """The event of one step (text and, at the end, its finish reason)."""
        if self.chat:
            delta: dict[str, Any] = {"content": step.text}
            if not self.started:
                delta = {"role": "assistant", **delta}
            choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None}
        else:
            choice = {"index": 0, "text": step.text, "logprobs": None}
        choice["finish_reason"] = step.finish_reason
        self.started = True
        return self._event([choice], None)

    def usage(self, last: StreamChunk) -> bytes:
        """The last event before `[DONE]` when usage was asked for: no choices, the counts."""
        return self._event([], _usage(last.prompt_tokens, last.completion_tokens))

    def error(self, message: str, code: str) -> bytes:
        """An error after the stream started: the status is sent, so it travels as an event."""
        body = {"error": {"message": message, "type": "server_error", "param": None, "code": code}}
        return f"data: {json.dumps(body, separators=(',', ':'))}\n\n".encode()


def stream_options_usage(options: StreamOptions | None) -> bool:
    """Whether the stream ends with a usage chunk."""
    return bool(options and options.include_usage)
