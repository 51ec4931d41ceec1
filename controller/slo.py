"""SLO arithmetic over one observation window: attainment and error-budget burn rate."""

from __future__ import annotations

from controller.config import SLO
from controller.snapshot import AppSnapshot, LatencyHistogram


def count_within(histogram: LatencyHistogram, threshold_ms: float) -> float:
    """Requests of the histogram that took at most `threshold_ms` (interpolated in the bucket)."""
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in zip(histogram.bounds_ms, histogram.counts, strict=True):
        if threshold_ms <= bound:
            if bound == float("inf"):
                return lower_count
            share = (
                (threshold_ms - lower_bound) / (bound - lower_bound) if bound > lower_bound else 1
            )
            return lower_count + (count - lower_count) * share
        lower_bound, lower_count = bound, count
    return lower_count


def attainment(app: AppSnapshot, slo: SLO) -> float | None:
    """Share of the window's requests that succeeded within the latency SLO; None if unknown.

    The latency histogram holds successful requests only, so failed ones count as misses.
    """
    good = total = 0.0
    for v in app.versions:
        if v.request_count is None:
            return None
        if v.request_count <= 0:
            continue
        if v.latency_histogram is None:
            if v.error_count is None or v.error_count < v.request_count:
                return None
        else:
            good += count_within(v.latency_histogram, slo.latency_p95_ms)
        total += v.request_count
    if total <= 0:
        return None
    return min(1.0, max(0.0, good / total))


def burn_rate(attained: float, slo: SLO) -> float:
    """How fast the error budget burns: 1 spends exactly the budget over the SLO period."""
    budget = 1.0 - slo.target_attainment
    if budget <= 0:
        return 0.0 if attained >= 1 else float("inf")
    return (1.0 - attained) / budget


TOKEN_MEASURES = ("ttft", "tpot")
"""Token latencies a generation SLO may set: time to first token, time per output token."""


def token_attainment(app: AppSnapshot, slo: SLO, measure: str) -> float | None:
    """Share of the window's sequences within the SLO's TTFT or TPOT target.

    None when the SLO sets no such target or no version reported that histogram.
    """
    target = slo.ttft_p95_ms if measure == "ttft" else slo.tpot_p95_ms
    if target is None:
        return None
    good = total = 0.0
    for v in app.versions:
        hist = v.ttft_histogram if measure == "ttft" else v.tpot_histogram
        if hist is not None and hist.total > 0:
            good += count_within(hist, target)
            total += hist.total
    if total <= 0:
        return None
    return min(1.0, max(0.0, good / total))
