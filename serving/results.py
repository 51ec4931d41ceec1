"""What a model replica returns to the router; plain data, cheap to serialize."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Completion:
    """The text generated for one prompt."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class StreamChunk:
    """One step of a streamed completion: new text, and the token counts so far."""

    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class ServedBy:
    """Which version and which replica process answered."""

    version: str
    replica_pid: int


@dataclass(frozen=True)
class EmbeddingResult:
    """Vectors for every input of one request (one row per input) and their token count."""

    vectors: np.ndarray
    input_tokens: int
    served_by: ServedBy


@dataclass(frozen=True)
class CompletionResult:
    """Completions for every prompt of one request."""

    completions: list[Completion]
    served_by: ServedBy

    @property
    def prompt_tokens(self) -> int:
        """Tokens over all prompts."""
        return sum(c.prompt_tokens for c in self.completions)

    @property
    def completion_tokens(self) -> int:
        """Tokens generated over all prompts."""
        return sum(c.completion_tokens for c in self.completions)
