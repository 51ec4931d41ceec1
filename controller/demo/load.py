"""The demo's load: a trace replayed open-loop from a background thread, with live stats."""

from __future__ import annotations

import asyncio
import bisect
import threading
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from controller.sim.replay import (
    ReplayRequest,
    ReplayResult,
    StreamResult,
    replay_async,
    stream_replay_async,
)
from controller.sim.trace import Trace, default_trace_path, load_trace, scale_trace


class TraceLoad:
    """Sends one request per trace arrival (time-compressed), sized by its token count.

    Open loop: a slow server does not slow the arrivals down, as with real users.
    """

    def __init__(
        self,
        url: str,
        model: str,
        trace_path: Path | None = None,
        replay_s: float = 170.0,
        rate_scale: float = 0.12,
        seed: int = 0,
        size_scale: float = 0.08,
        max_words: int = 120,
        timeout_s: float = 30.0,
    ) -> None:
        trace = load_trace(trace_path or default_trace_path())
        self.trace: Trace = scale_trace(
            trace,
            time_scale=max(trace.duration_s, 1.0) / replay_s,
            rate_scale=rate_scale,
            seed=seed,
        )
        self.size_scale, self.max_words = size_scale, max_words
        self.requests = self._requests()
        self.base_url, self.model, self.timeout_s = url, model, timeout_s
        self.ok = self.failed = self.shed = 0
        """Answered; not answered (shed included); refused for overload."""
        self._done_at: list[float] = []
        self._latency_ms: list[float] = []
        self._errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _requests(self) -> list[ReplayRequest]:
        """One request per trace arrival, its input scaled from the row's prompt tokens."""
        return [
            ReplayRequest(float(at), self._words(tokens), 0)
            for at, tokens in zip(self.trace.arrival_s, self.trace.prompt_tokens, strict=True)
        ]

    def _words(self, tokens: int) -> int:
        return int(min(self.max_words, max(1, round(tokens * self.size_scale))))

    @property
    def sent(self) -> int:
        """Requests answered or failed so far."""
        return self.ok + self.failed

    def describe(self) -> str:
        """One line about what will be sent."""
        peak = np.bincount(self.trace.arrival_s.astype(int)).max() if len(self.trace) else 0
        return (
            f"{len(self.trace)} requests over {self.trace.duration_s:.0f}s "
            f"(peak {peak} req/s) from {self.trace.source}"
        )

    def start(self) -> None:
        """Begin sending in a background thread."""
        self._thread = threading.Thread(target=self._run, daemon=True, name="trace-load")
        self._thread.start()

    _replay: Callable[..., Coroutine[Any, Any, Sequence[ReplayResult]]] = staticmethod(replay_async)
    """How the requests are sent (streaming clients override it)."""

    def _run(self) -> None:
        asyncio.run(
            self._replay(
                self.base_url,
                self.requests,
                model=self.model,
                concurrency=512,
                timeout_s=self.timeout_s,
                on_result=self._record,
                should_stop=self._stop.is_set,
            )
        )

    def _record(self, result: ReplayResult) -> None:
        with self._lock:
            if result.ok:
                self.ok += 1
                self._done_at.append(result.done_s)
                self._latency_ms.append(result.latency_s * 1000)
            else:
                self.failed += 1
                self.shed += result.shed
                self._errors.append(result.error or f"HTTP {result.status}")

    def finished(self) -> bool:
        """True once every request has been answered (or the load was stopped)."""
        return self._thread is not None and not self._thread.is_alive()

    def stop(self) -> None:
        """Stop sending and wait for the answers of what was sent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 5)

    def recent(self, now_s: float, window_s: float) -> tuple[float, float | None]:
        """(offered req/s by the trace, p95 ms of answers) over the `window_s` before `now_s`."""
        arrivals = self.trace.arrival_s
        offered = int(
            np.searchsorted(arrivals, now_s) - np.searchsorted(arrivals, now_s - window_s)
        )
        with self._lock:
            recent = sorted(self._latency_ms[bisect.bisect_left(self._done_at, now_s - window_s) :])
        return offered / window_s, (recent[int(0.95 * (len(recent) - 1))] if recent else None)

    def results(self) -> tuple[list[float], int]:
        """(latencies in ms of answered requests, number of failed requests)."""
        with self._lock:
            return list(self._latency_ms), self.failed

    def errors(self) -> list[str]:
        """Messages of failed requests."""
        with self._lock:
            return list(self._errors)


class ChatTraceLoad(TraceLoad):
    """Streaming chat clients: each trace row's prompt and output token counts (scaled).

    Each answer streams as server-sent events, so the client sees when its first token
    came (TTFT) and how fast the rest followed (TPOT), as a chat front end's user does.
    """

    def __init__(
        self,
        url: str,
        model: str,
        trace_path: Path | None = None,
        replay_s: float = 170.0,
        rate_scale: float = 0.01,
        seed: int = 1,
        size_scale: float = 0.03,
        max_words: int = 64,
        max_output: int = 256,
        timeout_s: float = 60.0,
    ) -> None:
        self.max_output = max_output
        super().__init__(
            url, model, trace_path, replay_s, rate_scale, seed, size_scale, max_words, timeout_s
        )
        self._ttft_ms: list[float] = []
        self._tpot_ms: list[float] = []

    def _requests(self) -> list[ReplayRequest]:
        trace = self.trace
        return [
            ReplayRequest(float(at), self._words(p), int(min(self.max_output, max(1, o))))
            for at, p, o in zip(
                trace.arrival_s, trace.prompt_tokens, trace.output_tokens, strict=True
            )
        ]

    _replay = staticmethod(stream_replay_async)

    def _record(self, result: ReplayResult) -> None:
        super()._record(result)
        if not result.ok or not isinstance(result, StreamResult):
            return
        with self._lock:
            if result.ttft_s is not None:
                self._ttft_ms.append(result.ttft_s * 1000)
            if result.tpot_s is not None:
                self._tpot_ms.append(result.tpot_s * 1000)

    def token_latencies(self) -> tuple[list[float], list[float]]:
        """(TTFT, TPOT) in ms of the answered streams."""
        with self._lock:
            return list(self._ttft_ms), list(self._tpot_ms)
