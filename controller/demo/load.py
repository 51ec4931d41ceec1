"""Open-loop load from a request trace against the embeddings endpoint, with live stats."""

from __future__ import annotations

import asyncio
import bisect
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from controller.sim.trace import Trace, default_trace_path, load_trace, scale_trace

_WORDS = [
    "model",
    "serving",
    "latency",
    "budget",
    "replica",
    "canary",
    "rollout",
    "traffic",
    "weight",
    "queue",
    "batch",
    "token",
    "request",
    "cluster",
    "gpu",
    "memory",
    "throughput",
    "scale",
    "version",
    "router",
    "metric",
    "signal",
]


def text_of(tokens: int, rng: np.random.Generator, size_scale: float, max_words: int) -> str:
    """A sentence whose length follows a trace's token count (scaled and capped)."""
    words = int(min(max_words, max(1, round(tokens * size_scale))))
    return " ".join(_WORDS[i] for i in rng.integers(0, len(_WORDS), words))


class TraceLoad:
    """Sends one request per trace arrival (time-compressed) from a background thread.

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
        max_in_flight: int = 512,
    ) -> None:
        trace = load_trace(trace_path or default_trace_path())
        self.trace: Trace = scale_trace(
            trace,
            time_scale=max(trace.duration_s, 1.0) / replay_s,
            rate_scale=rate_scale,
            seed=seed,
        )
        rng = np.random.default_rng(seed)
        self.inputs = [
            text_of(int(t), rng, size_scale, max_words) for t in self.trace.prompt_tokens
        ]
        self.url, self.model, self.timeout_s = url, model, timeout_s
        self.max_in_flight = max_in_flight
        self.sent = self.ok = self.failed = 0
        self._done_at: list[float] = []
        self._latency_ms: list[float] = []
        self._errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    def describe(self) -> str:
        """One line about what will be sent."""
        return (
            f"{len(self.trace)} requests over {self.trace.duration_s:.0f}s "
            f"(peak {self._peak():.0f} req/s) from {self.trace.source}"
        )

    def _peak(self) -> float:
        counts = np.bincount(self.trace.arrival_s.astype(int)) if len(self.trace) else [0]
        return float(np.max(counts))

    def start(self) -> None:
        """Begin sending in a background thread."""
        self._t0 = time.monotonic()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._run()), daemon=True, name="trace-load"
        )
        self._thread.start()

    def finished(self) -> bool:
        """True once every request has been answered (or the load was stopped)."""
        return self._thread is not None and not self._thread.is_alive()

    def stop(self) -> None:
        """Stop sending and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 5)

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.max_in_flight)
        async with httpx.AsyncClient(timeout=self.timeout_s, limits=limits) as client:
            tasks = []
            for at, text in zip(self.trace.arrival_s, self.inputs, strict=True):
                if self._stop.is_set():
                    break
                delay = self._t0 + float(at) - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(self._one(client, text)))
                self.sent += 1
            await asyncio.gather(*tasks)

    async def _one(self, client: httpx.AsyncClient, text: str) -> None:
        began = time.monotonic()
        error = None
        try:
            response = await client.post(self.url, json={"model": self.model, "input": text})
            if response.status_code != 200:
                error = f"HTTP {response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as err:
            error = f"{type(err).__name__}: {err}"
        done = time.monotonic()
        with self._lock:
            if error is None:
                self.ok += 1
                self._done_at.append(done - self._t0)
                self._latency_ms.append((done - began) * 1000)
            else:
                self.failed += 1
                self._errors.append(error)

    def recent(self, window_s: float) -> tuple[float, float | None]:
        """(offered req/s by the trace, p95 ms of answers) over the last `window_s` seconds."""
        now = time.monotonic() - self._t0
        arrivals = self.trace.arrival_s
        offered = int(np.searchsorted(arrivals, now) - np.searchsorted(arrivals, now - window_s))
        with self._lock:
            i = bisect.bisect_left(self._done_at, now - window_s)
            recent = sorted(self._latency_ms[i:])
        return offered / window_s, (recent[int(0.95 * (len(recent) - 1))] if recent else None)

    def results(self) -> tuple[list[float], int]:
        """(latencies in ms of answered requests, number of failed requests)."""
        with self._lock:
            return list(self._latency_ms), self.failed

    def errors(self) -> list[str]:
        """Messages of failed requests."""
        with self._lock:
            return list(self._errors)
