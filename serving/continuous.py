"""Continuous batching: transformers' batching manager behind one async stream per request.

Sequences join and leave the running batch at every decode step (transformers 5.x,
`init_continuous_batching`): a short answer is returned as soon as it ends, and a new
request starts at the next step instead of waiting for a whole batch. The manager runs
its own thread; each request registers a handler that the manager calls on the replica's
event loop with every new token, and the stream turns tokens into text deltas.

What the manager cannot do per request is done here or refused at the API:
- stop strings: the stream watches the decoded text and cancels the sequence at a match;
- greedy decoding: the manager samples (one setting for all sequences), so temperature 0
  is sampled at `GREEDY_TEMPERATURE`, where the most likely token takes all the mass
  (it differs from argmax only on exact ties);
- `seed` and `n` > 1 are one setting for the whole manager: requests asking for them are
  refused with 400 (serving/openai_api.py).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from transformers import GenerationConfig
from transformers.generation.configuration_utils import ContinuousBatchingConfig

from serving.generation import Generator, Prompt

GREEDY_TEMPERATURE = 1e-3
"""The temperature a request of temperature 0 is sampled at (see the module docstring):
a token 0.01 of a logit behind the best is e^10 times less likely, and logits of up to
60 divided by it still fit in float16 (a GPU model's processors run in its dtype)."""
_DEFAULT_TEMPERATURE = 0.5
_DEFAULT_TOP_P = 0.9
"""Values the manager's config must hold for it to build the per-request temperature and
top-p processors at all (a default of 1.0 builds none); every request sets its own."""
PAGE_TOKENS = 256
"""Tokens per page of the paged KV cache: transformers' default."""


@dataclass(frozen=True)
class Delta:
    """What one step of a sequence added: new text, tokens so far, and how it ended."""

    text: str
    completion_tokens: int
    finish_reason: str | None = None
    """`stop` (end of sequence or a stop string) or `length`; None while it runs."""


class SequenceFailedError(RuntimeError):
    """The batching manager failed a sequence (its message says why)."""


class ContinuousEngine:
    """One batching manager over a loaded causal LM, with a stream per request."""

    def __init__(self, generator: Generator, max_sequences: int) -> None:
        self.generator = generator
        self.max_sequences = max_sequences
        self.manager: Any = None
        self.cancelled = 0
        """Sequences ended before their end: a stop string, or a stream closed early."""

    def start(self) -> None:
        """Build and start the manager; its KV cache holds `max_sequences` full contexts on CPU."""
        g = self.generator
        config = GenerationConfig(
            do_sample=True,
            temperature=_DEFAULT_TEMPERATURE,
            top_p=_DEFAULT_TOP_P,
            max_new_tokens=g.context_tokens,
            eos_token_id=sorted(g.eos_ids) or None,
            pad_token_id=g.pad_id,
        )
        sizing: dict[str, Any] = {}
        if g.device.type == "cpu":
            # On a GPU the manager sizes its cache from free memory; on a CPU it would
            # size it from host memory (minutes, and most of it): one full context per
            # sequence is what it can use.
            sizing = {
                "num_blocks": math.ceil(self.max_sequences * g.context_tokens / PAGE_TOKENS) + 1,
                "max_batch_tokens": max(g.context_tokens, self.max_sequences),
            }
        batching = ContinuousBatchingConfig(
            per_request_processors=True,
            max_requests_per_batch=self.max_sequences,
            **sizing,
        )
        self.manager = g.model.init_continuous_batching(
            generation_config=config, continuous_batching_config=batching
        )
        self.manager.start()

    def stop(self) -> None:
        """Stop the manager's thread; sequences still running are dropped."""
        if self.manager is not None:
            self.manager.stop(block=True)
            self.manager = None

    def sequences(self) -> tuple[int, int]:
        """(running, waiting) sequences in the manager now."""
        processor = getattr(self.manager, "batch_processor", None)
        scheduler = getattr(processor, "scheduler", None)
        if scheduler is None:
            return 0, 0
        return len(scheduler.active_requests), len(scheduler.waiting_requests)

    def kv_cache_usage(self) -> float | None:
        """Share of the paged KV cache in use now, 0..1; None when the manager does not say."""
        processor = getattr(self.manager, "batch_processor", None)
        free = getattr(getattr(processor, "cache", None), "compute_free_capacity", None)
        if free is None:
            return None
        return min(1.0, max(0.0, 1.0 - float(free(relative=True))))

    async def stream(self, prompt: Prompt) -> AsyncIterator[Delta]:
        """Generate for `prompt`, yielding text as it comes; closing the stream cancels it."""
        if self.manager is None:
            raise SequenceFailedError("the batching manager is not running")
        request_id = uuid.uuid4().hex
        outputs: asyncio.Queue[Any] = asyncio.Queue()
        self.manager.register_result_handler(request_id, outputs.put_nowait)
        temperature = prompt.temperature if prompt.temperature > 0 else GREEDY_TEMPERATURE
        added = self.manager.add_request(
            list(prompt.token_ids),
            request_id=request_id,
            max_new_tokens=prompt.max_tokens,
            streaming=True,
            temperature=float(temperature),
            top_p=float(prompt.top_p),
        )
        if added is None:
            self._forget(request_id)
            raise SequenceFailedError("the batching manager refused the sequence")
        finished = False
        try:
            text = ""
            while True:
                output = await outputs.get()
                if output.error is not None:
                    finished = True
                    raise SequenceFailedError(str(output.error))
                tokens = list(output.generated_tokens)
                delta = self._delta(prompt, tokens, text, output.is_finished())
                text += delta.text
                if delta.finish_reason is not None:
                    finished = output.is_finished()
                    yield delta
                    return
                if delta.text:
                    yield delta
        finally:
            if not finished:
                self.cancelled += 1
                self.manager.cancel_request(request_id)
                self._forget(request_id)

    def _delta(self, prompt: Prompt, tokens: list[int], sent: str, done: bool) -> Delta:
        """The text `tokens` add to what was `sent`, cut at a stop string or the end."""
        g = self.generator
        ended_by_eos = bool(tokens) and tokens[-1] in g.eos_ids
        text = g.tokenizer.decode(tokens, skip_special_tokens=True)
        for stop in prompt.stop:
            cut = text.find(stop)
            if cut >= 0:
                return Delta(text[:cut][len(sent) :], len(tokens), "stop")
        if done or ended_by_eos or len(tokens) >= prompt.max_tokens:
            reason = "stop" if ended_by_eos else "length"
            return Delta(text[len(sent) :], len(tokens), reason)
        # Hold back a character still being decoded (a multi-byte one split across tokens)
        # and anything a stop string may yet start with.
        safe = text[:-1] if text.endswith("\ufffd") else text
        held = max((len(s) - 1 for s in prompt.stop), default=0)
        safe = safe[: max(len(sent), len(safe) - held)]
        return Delta(safe[len(sent) :], len(tokens))

    def _forget(self, request_id: str) -> None:
        """Drop the handler of a sequence that will deliver nothing more (cancelled, refused).

        The manager removes a handler only with a finished output, and a cancelled
        sequence gets none.
        """
        router = self.manager.output_router
        with router._lock:
            router.result_handlers.pop(request_id, None)


async def coalesced(
    stream: AsyncIterator[Delta], interval_s: float, clock: Callable[[], float] = time.monotonic
) -> AsyncIterator[Delta]:
    """The deltas of `stream`, those that come within `interval_s` of the last sent merged.

    The first text goes out at once (time to first token is kept) and the last delta
    always does; in between, at most one delta per interval.
    """
    pending: Delta | None = None
    sent_at: float | None = None
    async for delta in stream:
        if pending is not None:
            delta = Delta(pending.text + delta.text, delta.completion_tokens, delta.finish_reason)
        now = clock()
        due = sent_at is None or now - sent_at >= interval_s
        if delta.finish_reason is not None or (delta.text and due):
            pending, sent_at = None, now
            yield delta
        else:
            pending = delta
    if pending is not None:
        yield pending


async def collect(stream: AsyncIterator[Delta]) -> tuple[str, Delta, float]:
    """The whole text of a stream, its last delta and the seconds to its first text."""
    started = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    last = Delta("", 0)
    async for delta in stream:
        if first is None and delta.text:
            first = time.perf_counter() - started
        parts.append(delta.text)
        last = delta
    return "".join(parts), last, first if first is not None else time.perf_counter() - started
