"""Per-version metrics of the data plane, exported through Ray's metrics API.

Ray prefixes every name with `ray_` and adds `application`, `deployment` and `replica`
tags inside a replica; counters are exported with a `_total` suffix. docs/dataplane.md
lists the exported names, which the control plane's signal sources read.
"""

from __future__ import annotations

import threading
import time
from typing import Any, TypeVar

from ray.serve.metrics import Counter, Gauge, Histogram

LATENCY_BUCKETS_MS = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 500.0,
    750.0, 1000.0, 1500.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0,
]  # fmt: skip
BATCH_SIZE_BUCKETS = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0]
COMPUTE_BUCKETS_MS = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
    10000.0, 30000.0,
]  # fmt: skip
TOKEN_TIME_BUCKETS_MS = [
    0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0,
]  # fmt: skip

NO_VERSION = "none"


def _tag_keys(*keys: str) -> Any:
    """Tag keys as Ray's metric classes take them (annotated there as a 1-tuple)."""
    return keys


_VERSION_TAGS = _tag_keys("model", "version")
_ROUTE_TAGS = _tag_keys("model", "version", "endpoint")


Metric = TypeVar("Metric", Counter, Gauge, Histogram)


def _metric(
    kind: type[Metric], name: str, description: str, tags: dict[str, str], **options: Any
) -> Metric:
    """A Serve metric of `kind` whose tags default to `tags`."""
    metric = kind(name, description=description, **options)
    # set_default_tags adds Serve's own tags into the dict it is given: pass a copy.
    metric.set_default_tags(dict(tags))
    return metric


class HeldGauges:
    """Gauge values re-published every `period_s` until replaced.

    Ray's exporter drops a gauge series that was not set within two report intervals,
    so a value set once (a weight, a load time) would vanish from /metrics.
    """

    def __init__(self, period_s: float = 1.0) -> None:
        self._period_s = period_s
        self._values: dict[tuple[int, tuple[tuple[str, str], ...]], tuple[Gauge, float]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def set(self, gauge: Gauge, value: float, tags: dict[str, str] | None = None) -> None:
        """Set a gauge now and keep re-publishing the value."""
        key = (id(gauge), tuple(sorted((tags or {}).items())))
        with self._lock:
            self._values[key] = (gauge, value)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._republish, name="governor-gauges", daemon=True
                )
                self._thread.start()
        gauge.set(value, tags=dict(tags or {}))

    def drop(self, gauge: Gauge, tags: dict[str, str] | None = None) -> None:
        """Stop re-publishing a series: Ray's exporter then drops it from /metrics."""
        with self._lock:
            self._values.pop((id(gauge), tuple(sorted((tags or {}).items()))), None)

    def _republish(self) -> None:
        while True:
            time.sleep(self._period_s)
            with self._lock:
                values = list(self._values.items())
            for (_, tags), (gauge, value) in values:
                gauge.set(value, tags=dict(tags))


def config_rejected_counter(model_name: str) -> Counter:
    """Counter of user_config updates that a replica refused."""
    return _metric(
        Counter,
        "governor_config_rejected",
        "user_config updates refused; the previous settings stay in force.",
        {"model": model_name},
        tag_keys=_tag_keys("model"),
    )


class RouterMetrics:
    """Metrics the router records per request, labelled by the version that served it."""

    def __init__(self, model_name: str) -> None:
        tags = {"model": model_name}
        self.requests = _metric(
            Counter,
            "governor_requests",
            "Requests answered by the router, by version and endpoint.",
            tags,
            tag_keys=_ROUTE_TAGS,
        )
        self.errors = _metric(
            Counter,
            "governor_request_errors",
            "Requests answered with an error, by version, kind and HTTP status.",
            tags,
            tag_keys=_tag_keys(*_ROUTE_TAGS, "kind", "status"),
        )
        self.shed = _metric(
            Counter,
            "governor_requests_shed",
            "Requests refused with 503 + Retry-After because the version's queue was full.",
            tags,
            tag_keys=_ROUTE_TAGS,
        )
        self.latency_ms = _metric(
            Histogram,
            "governor_request_latency_ms",
            "End-to-end latency of successful requests seen by the router (ms).",
            tags,
            boundaries=LATENCY_BUCKETS_MS,
            tag_keys=_ROUTE_TAGS,
        )
        self.weight = _metric(
            Gauge,
            "governor_route_weight",
            "Current traffic weight of each version (percent).",
            tags,
            tag_keys=_VERSION_TAGS,
        )
        self.config_rejected = config_rejected_counter(model_name)
        self.held = HeldGauges()
        self._weighted: set[str] = set()

    def record_success(self, version: str, endpoint: str, latency_ms: float) -> None:
        """Count a successful request and its latency."""
        tags = {"version": version, "endpoint": endpoint}
        self.requests.inc(tags=tags)
        self.latency_ms.observe(latency_ms, tags=tags)

    def record_error(self, version: str, endpoint: str, kind: str, status: int) -> None:
        """Count a request that ended with an error."""
        tags = {"version": version, "endpoint": endpoint}
        self.requests.inc(tags=tags)
        self.errors.inc(tags={**tags, "kind": kind, "status": str(status)})

    def record_shed(self, version: str, endpoint: str) -> None:
        """Count a request refused for overload before it reached the version's replicas.

        Not an answer of the version: it counts neither in `requests` nor in `errors`, so
        a version's error rate (what canaries are judged on) does not move with load.
        """
        self.shed.inc(tags={"version": version, "endpoint": endpoint})

    def record_weights(self, weights: dict[str, int]) -> None:
        """Publish the weights now in force; a version no longer routed to stops reporting."""
        for version in self._weighted - set(weights):
            self.held.drop(self.weight, tags={"version": version})
        self._weighted = set(weights)
        for version, weight in weights.items():
            self.held.set(self.weight, weight, tags={"version": version})


class ModelMetrics:
    """Metrics a model replica records per batch."""

    def __init__(self, model_name: str, version: str) -> None:
        tags = {"model": model_name, "version": version}
        self.batch_size = _metric(
            Histogram,
            "governor_batch_size",
            "Inputs per forward pass (one batch of @serve.batch).",
            tags,
            boundaries=BATCH_SIZE_BUCKETS,
            tag_keys=_VERSION_TAGS,
        )
        self.batched_inputs = _metric(
            Counter,
            "governor_batched_inputs",
            "Inputs run through the model; over the batch count, the exact mean batch size.",
            tags,
            tag_keys=_VERSION_TAGS,
        )
        self.batch_compute_ms = _metric(
            Histogram,
            "governor_batch_compute_ms",
            "Time the model spent on one batch (ms).",
            tags,
            boundaries=COMPUTE_BUCKETS_MS,
            tag_keys=_VERSION_TAGS,
        )
        self.input_tokens = _metric(
            Counter,
            "governor_input_tokens",
            "Tokens fed to the model (prompts or texts to embed).",
            tags,
            tag_keys=_VERSION_TAGS,
        )
        self.output_tokens = _metric(
            Counter,
            "governor_output_tokens",
            "Tokens generated by the model.",
            tags,
            tag_keys=_VERSION_TAGS,
        )
        self.time_per_output_token_ms = _metric(
            Histogram,
            "governor_time_per_output_token_ms",
            "Time between a sequence's output tokens after its first (ms).",
            tags,
            boundaries=TOKEN_TIME_BUCKETS_MS,
            tag_keys=_VERSION_TAGS,
        )
        self.time_to_first_token_ms = _metric(
            Histogram,
            "governor_time_to_first_token_ms",
            "Time from a sequence reaching the replica to its first output token (ms).",
            tags,
            boundaries=LATENCY_BUCKETS_MS,
            tag_keys=_VERSION_TAGS,
        )
        self.sequences = _metric(
            Gauge,
            "governor_sequences",
            "Sequences in the continuous batching manager, by state (running, waiting).",
            tags,
            tag_keys=_tag_keys(*_VERSION_TAGS, "state"),
        )
        self.kv_cache_usage = _metric(
            Gauge,
            "governor_kv_cache_usage_ratio",
            "Share of the batching manager's paged KV cache in use (0..1).",
            tags,
            tag_keys=_VERSION_TAGS,
        )
        self.model_load_s = _metric(
            Gauge,
            "governor_model_load_seconds",
            "Time this replica took to load and warm up its model (s).",
            tags,
            tag_keys=_VERSION_TAGS,
        )
        self.config_rejected = config_rejected_counter(model_name)
        self.held = HeldGauges()

    def record_model_load(self, seconds: float) -> None:
        """Publish how long this replica took to load and warm up."""
        self.held.set(self.model_load_s, seconds)

    def record_sequence(
        self, prompt_tokens: int, output_tokens: int, ttft_ms: float | None, total_ms: float
    ) -> None:
        """Record one generated sequence: tokens, time to first token, time per token after."""
        self.input_tokens.inc(prompt_tokens)
        if output_tokens:
            self.output_tokens.inc(output_tokens)
        if ttft_ms is not None:
            self.time_to_first_token_ms.observe(ttft_ms)
            if output_tokens > 1:
                self.time_per_output_token_ms.observe((total_ms - ttft_ms) / (output_tokens - 1))

    def record_sequences(self, running: int, waiting: int, kv_cache_usage: float | None) -> None:
        """Publish the sequences the batching manager runs and holds waiting, and its KV use."""
        self.held.set(self.sequences, running, tags={"state": "running"})
        self.held.set(self.sequences, waiting, tags={"state": "waiting"})
        if kv_cache_usage is not None:
            self.held.set(self.kv_cache_usage, kv_cache_usage)

    def record_batch(
        self, size: int, compute_ms: float, input_tokens: int, output_tokens: int = 0
    ) -> None:
        """Record one forward pass: its size, duration and tokens."""
        self.batch_size.observe(size)
        self.batched_inputs.inc(size)
        self.batch_compute_ms.observe(compute_ms)
        if input_tokens:
            self.input_tokens.inc(input_tokens)
        if output_tokens:
            self.output_tokens.inc(output_tokens)
