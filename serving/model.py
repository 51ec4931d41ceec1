"""Model deployments: one class per task, one Serve deployment per version.

Embeddings: each request arrives as a list of inputs; every input enters the replica's
`@serve.batch` queue on its own, so inputs of concurrent requests share forward passes
and `max_batch_size` counts inputs. Generation is continuously batched
(serving/continuous.py): every prompt is a sequence that joins and leaves the running
batch at any decode step, and `max_batch_size` counts sequences. The embedding forward
pass runs on the replica's user event loop, blocking it on purpose: Serve forms the next
batch as soon as the previous one is handed over, so a loop left free during the forward
pass would cut the waiting inputs into many small batches instead of one large one.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import numpy as np
from ray import serve

from serving.continuous import ContinuousEngine, Delta, coalesced, collect
from serving.embedding import Embedder
from serving.errors import QueueWaitExceededError
from serving.generation import Generator, Prompt
from serving.live_config import LiveSetting
from serving.loading import set_torch_threads
from serving.metrics import ModelMetrics
from serving.results import (
    Completion,
    CompletionResult,
    EmbeddingResult,
    ServedBy,
    StreamChunk,
)
from serving.spec import ModelUserConfig, VersionSpec, parse

DEFAULT_USER_CONFIG = ModelUserConfig().model_dump()
DEFAULT_MAX_ONGOING_REQUESTS = 64

Result = TypeVar("Result")
Item = TypeVar("Item")

StartBy = float | None
"""The wall time (`time.time()`) by which a request must start computing; None: any time.

The router sets it to its arrival plus `max_queue_wait_ms`. An input still queued past it
is dropped from its batch and the request is shed (503) instead of answered late: under
overload, replicas spend their time on requests that can still be answered in time."""


def _late_by(start_by: StartBy) -> float:
    """Seconds past `start_by` now (0 or less while still in time)."""
    return 0.0 if start_by is None else time.time() - start_by


def _late_error(late_s: float) -> QueueWaitExceededError:
    return QueueWaitExceededError(f"still queued {late_s * 1000:.0f} ms past its start-by time")


def _check_in_time(start_by: StartBy) -> None:
    late = _late_by(start_by)
    if late > 0:
        raise _late_error(late)


def _in_time(items: list[tuple[Item, StartBy]]) -> list[int]:
    """Indexes of the batch's inputs that may still start."""
    now = time.time()
    return [i for i, (_, start_by) in enumerate(items) if start_by is None or now <= start_by]


def _all_started(rows: list[Result | None], start_by: StartBy) -> list[Result]:
    """The rows of one request, or QueueWaitExceededError if any was dropped as late."""
    if any(row is None for row in rows):
        raise _late_error(max(_late_by(start_by), 0.0))
    return [row for row in rows if row is not None]


class _ModelReplica:
    """Life cycle shared by the model deployments: load, warm up, live batching knobs."""

    def _start(self, spec: VersionSpec, model_name: str, load: Callable[[], Any]) -> None:
        set_torch_threads(spec.torch_threads)
        self.spec = spec
        self.served_by = ServedBy(spec.name, os.getpid())
        self.metrics = ModelMetrics(model_name, spec.name)
        self.batching: LiveSetting[ModelUserConfig] = LiveSetting(
            "batching", self.metrics.config_rejected.inc
        )
        started = time.perf_counter()
        load()
        self.metrics.record_model_load(time.perf_counter() - started)

    def _batch_handler(self) -> Any:
        raise NotImplementedError

    def reconfigure(self, user_config: dict[str, Any] | None) -> None:
        """Apply `max_batch_size` and `batch_wait_timeout_s` from the user_config."""
        if self.batching.update(lambda: parse(ModelUserConfig, user_config, "user_config")):
            handler = self._batch_handler()
            handler.set_max_batch_size(self.batching.value.max_batch_size)
            handler.set_batch_wait_timeout_s(self.batching.value.batch_wait_timeout_s)

    def describe(self) -> dict[str, Any]:
        """The version, process and batching settings of this replica."""
        return {
            "version": self.spec.name,
            "replica_pid": self.served_by.replica_pid,
            "batching": self.batching.value.model_dump(),
            "last_config_error": self.batching.last_error,
        }

    @staticmethod
    def _timed(fn: Callable[[], Result]) -> tuple[Result, float]:
        started = time.perf_counter()
        result = fn()
        return result, (time.perf_counter() - started) * 1000.0


@serve.deployment(
    user_config=DEFAULT_USER_CONFIG, max_ongoing_requests=DEFAULT_MAX_ONGOING_REQUESTS
)
class EmbeddingModel(_ModelReplica):
    """Serves sentence embeddings for one model version."""

    def __init__(self, spec: VersionSpec, model_name: str) -> None:
        self._start(spec, model_name, lambda: self._load(spec))

    def _load(self, spec: VersionSpec) -> None:
        self.embedder = Embedder.load(spec)
        self.embedder.embed(["warm-up"])

    def _batch_handler(self) -> Any:
        return self._embed_batch

    async def embed(self, texts: list[str], start_by: StartBy = None) -> EmbeddingResult:
        """Embed every text of one request, unless it can no longer start in time."""
        _check_in_time(start_by)
        found = await asyncio.gather(*(self._embed_batch((text, start_by)) for text in texts))
        rows = _all_started(found, start_by)
        vectors = np.stack([vector for vector, _ in rows])
        return EmbeddingResult(vectors, sum(tokens for _, tokens in rows), self.served_by)

    @serve.batch(max_batch_size=DEFAULT_USER_CONFIG["max_batch_size"])
    async def _embed_batch(
        self, items: list[tuple[str, StartBy]]
    ) -> list[tuple[np.ndarray, int] | None]:
        live = _in_time(items)
        out: list[tuple[np.ndarray, int] | None] = [None] * len(items)
        if not live:
            return out
        texts = [items[i][0] for i in live]
        (vectors, tokens), compute_ms = self._timed(lambda: self.embedder.embed(texts))
        self.metrics.record_batch(len(texts), compute_ms, input_tokens=sum(tokens))
        for i, vector, n in zip(live, vectors, tokens, strict=True):
            out[i] = (vector, n)
        return out


@serve.deployment(
    user_config=DEFAULT_USER_CONFIG, max_ongoing_requests=DEFAULT_MAX_ONGOING_REQUESTS
)
class GenerationModel(_ModelReplica):
    """Serves text completions for one model version, continuously batched.

    `max_batch_size` is the most sequences decoded together; a new value takes effect
    when no sequence runs (the manager is rebuilt then). `batch_wait_timeout_s` does not
    apply: a sequence joins the running batch at the next decode step.
    `stream_interval_s` merges a stream's tokens into fewer events (live).
    """

    def __init__(self, spec: VersionSpec, model_name: str) -> None:
        self.engine: ContinuousEngine | None = None
        self.open_streams = 0
        self._start(spec, model_name, lambda: self._load(spec))

    def _load(self, spec: VersionSpec) -> None:
        self.generator = Generator.load(spec)
        self.generator.generate([self.generator.encode("warm-up", max_tokens=2)])

    def describe(self) -> dict[str, Any]:
        """As every replica, plus the sequences the batching manager runs, holds and cut short."""
        running, waiting = self.engine.sequences() if self.engine else (0, 0)
        cancelled = self.engine.cancelled if self.engine else 0
        sequences = {"running": running, "waiting": waiting, "cancelled": cancelled}
        usage = self.engine.kv_cache_usage() if self.engine else None
        return {**super().describe(), "sequences": sequences, "kv_cache_usage": usage}

    def reconfigure(self, user_config: dict[str, Any] | None) -> None:
        """Adopt `max_batch_size` as the most sequences decoded together."""
        if self.batching.update(lambda: parse(ModelUserConfig, user_config, "user_config")):
            self._engine_in_force()

    def _engine_in_force(self) -> ContinuousEngine:
        """The manager for new sequences, rebuilt first if its size changed and it is idle."""
        wanted = self.batching.value.max_batch_size
        engine = self.engine
        if engine is not None and (engine.max_sequences == wanted or self.open_streams):
            return engine
        if engine is not None:
            engine.stop()
        self.engine = ContinuousEngine(self.generator, wanted)
        self.engine.start()
        return self.engine

    async def complete(
        self,
        prompts: list[str],
        max_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: tuple[str, ...] = (),
        start_by: StartBy = None,
    ) -> CompletionResult:
        """Complete every prompt of one request; a prompt over the context is refused."""
        _check_in_time(start_by)
        encoded = [
            self.generator.encode(text, max_tokens, temperature, top_p, stop) for text in prompts
        ]
        completions = await asyncio.gather(*(self._complete_one(p) for p in encoded))
        return CompletionResult(list(completions), self.served_by)

    async def chat(
        self,
        messages: list[dict[str, str]],
        max_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: tuple[str, ...] = (),
        start_by: StartBy = None,
    ) -> CompletionResult:
        """Answer a conversation, rendered with the tokenizer's chat template."""
        return await self.complete(
            [self.generator.render_chat(messages)], max_tokens, temperature, top_p, stop, start_by
        )

    async def stream_completion(
        self,
        prompt: str | None,
        messages: list[dict[str, str]] | None,
        max_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: tuple[str, ...] = (),
        start_by: StartBy = None,
    ) -> AsyncIterator[StreamChunk]:
        """Stream one completion (of `prompt`, or of `messages` as a chat) as it is decoded.

        The first chunk is empty and says how long the prompt is, so that the router
        answers a refused prompt with 400 before it starts its own stream.
        """
        _check_in_time(start_by)
        text = prompt if messages is None else self.generator.render_chat(messages)
        encoded = self.generator.encode(text or "", max_tokens, temperature, top_p, stop)
        yield StreamChunk("", None, len(encoded.token_ids), 0)
        interval = self.batching.value.stream_interval_s
        async for delta in coalesced(self._sequence(encoded), interval):
            yield StreamChunk(
                delta.text, delta.finish_reason, len(encoded.token_ids), delta.completion_tokens
            )

    async def _complete_one(self, prompt: Prompt) -> Completion:
        text, last, _ = await collect(self._sequence(prompt))
        finish = last.finish_reason or "length"
        return Completion(text, finish, len(prompt.token_ids), last.completion_tokens)

    async def _sequence(self, prompt: Prompt) -> AsyncIterator[Delta]:
        """One sequence through the manager, timed and counted."""
        engine = self._engine_in_force()
        self.open_streams += 1
        started = time.perf_counter()
        first_ms: float | None = None
        tokens = 0
        try:
            self.metrics.record_sequences(*engine.sequences(), engine.kv_cache_usage())
            async for delta in engine.stream(prompt):
                if first_ms is None and delta.completion_tokens:
                    first_ms = (time.perf_counter() - started) * 1000.0
                tokens = delta.completion_tokens
                yield delta
        finally:
            self.open_streams -= 1
            total_ms = (time.perf_counter() - started) * 1000.0
            self.metrics.record_sequence(len(prompt.token_ids), tokens, first_ms, total_ms)
            self.metrics.record_sequences(*engine.sequences(), engine.kv_cache_usage())
