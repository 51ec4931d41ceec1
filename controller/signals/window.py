"""From the increase of a version's counters over a window to the fields of its snapshot.

Every source that reads counters (Ray's exporters in the embedded source, the simulated
fleet's exporters in `controller.sim.observe`) turns them into `VersionSnapshot` fields
through `window_fields`, so that simulated and real signals cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller.snapshot import LatencyHistogram


@dataclass(frozen=True)
class CounterWindow:
    """How much one version's counters grew over `seconds` (None: the counter is absent)."""

    seconds: float
    requests: float
    errors: float
    latency: LatencyHistogram | None = None
    ttft: LatencyHistogram | None = None
    tpot: LatencyHistogram | None = None
    prompt_tokens: float | None = None
    output_tokens: float | None = None
    batches: float | None = None
    """Batches (encoder) or decode iterations (generation) the model ran."""
    batched_inputs: float | None = None
    """Inputs summed over those batches."""
    shed: float | None = None
    """Requests refused for overload before they reached the version (503 + Retry-After)."""


def _observed(h: LatencyHistogram | None) -> LatencyHistogram | None:
    return h if h is not None and h.total > 0 else None


def window_fields(w: CounterWindow) -> dict[str, Any]:
    """Rates, counts, quantiles and mean batch size of one window, keyed as VersionSnapshot's."""
    fields: dict[str, Any] = {}
    if w.seconds <= 0:
        return fields
    fields["request_rate"] = w.requests / w.seconds
    fields["request_count"] = w.requests
    fields["error_count"] = w.errors
    fields["error_rate"] = w.errors / w.requests if w.requests > 0 else 0.0
    latency = _observed(w.latency)
    if latency is not None:
        fields["latency_histogram"] = latency
        fields["latency_p50_ms"] = latency.quantile(0.50)
        fields["latency_p95_ms"] = latency.quantile(0.95)
        fields["latency_p99_ms"] = latency.quantile(0.99)
    ttft, tpot = _observed(w.ttft), _observed(w.tpot)
    if ttft is not None:
        fields["ttft_histogram"] = ttft
        fields["ttft_ms"] = ttft.quantile(0.95)
    if tpot is not None:
        fields["tpot_histogram"] = tpot
        fields["tpot_ms"] = tpot.quantile(0.95)
    if w.prompt_tokens is not None:
        fields["prompt_token_rate"] = w.prompt_tokens / w.seconds
    if w.output_tokens is not None:
        fields["output_token_rate"] = w.output_tokens / w.seconds
    if w.shed is not None:
        fields["shed_rate"] = w.shed / w.seconds
    if w.batches and w.batched_inputs is not None and w.batches > 0:
        fields["batch_size"] = w.batched_inputs / w.batches
    return fields
