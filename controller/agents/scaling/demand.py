"""Demand over time: a Holt forecast, and a history of bucket maxima for head-room.

The history keeps the highest demand of each `window_s` bucket for `burst_memory_s`. The
highest demand within one start-up time after a moment like now (demand no higher than
now) is what a fleet must absorb with replicas it already has: a replica started when a
rise begins serves only after the rise has been missed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from controller.agents.state import (
    QueueReading,
    VersionScalingState,
    from_iso,
    seconds_since,
    to_iso,
)

STALE_AFTER_WINDOWS = 10
"""A forecast older than this many forecast windows starts over."""
MIN_MOMENTS = 4
"""Fewer observed moments than this say nothing about variability."""


@dataclass(frozen=True)
class Forecast:
    """Holt level and trend of demand, and the demand expected at a horizon."""

    level: float
    trend: float

    def at(self, horizon_s: float) -> float:
        """Demand expected `horizon_s` from now (never negative)."""
        return max(0.0, self.level + self.trend * horizon_s)


def update_forecast(
    prev: VersionScalingState, demand: float, now: datetime, window_s: float
) -> Forecast:
    """Holt's linear smoothing with time constants from the forecast window."""
    dt = seconds_since(prev.get("observed_at"), now)
    if "level" not in prev or dt is None or dt > STALE_AFTER_WINDOWS * window_s:
        return Forecast(demand, 0.0)
    level, trend = prev["level"], prev.get("trend_per_s", 0.0)
    if dt <= 0:
        return Forecast(level, trend)
    alpha = 1 - math.exp(-dt / (window_s / 2))
    beta = 1 - math.exp(-dt / window_s)
    new_level = alpha * demand + (1 - alpha) * (level + trend * dt)
    new_trend = beta * (new_level - level) / dt + (1 - beta) * trend
    return Forecast(new_level, new_trend)


def remember_demand(
    st: VersionScalingState, demand: float, now: datetime, bucket_s: float, memory_s: float
) -> list[float]:
    """Record `demand` in the bucket history kept in `st`; returns the history."""
    buckets = list(st.get("demand", []))
    began = st.get("demand_at")
    elapsed = seconds_since(began, now)
    if began is None or elapsed is None or elapsed < 0 or not buckets:
        buckets, start = [demand], now
    elif elapsed < bucket_s:
        buckets[-1] = max(buckets[-1], demand)
        start = from_iso(began)
    else:
        skipped = int(elapsed // bucket_s)
        # Buckets with no observation (a daemon that was down) are unknown, not zero:
        # the history restarts rather than inventing a lull.
        if skipped > 2:
            buckets = []
        buckets.append(demand)
        start = now
    keep = max(1, int(memory_s // bucket_s))
    # Four significant digits: far finer than a window's noise, and the state a daemon
    # writes every tick stays a third of the size.
    buckets = buckets[-keep:]
    buckets[-1] = float(f"{buckets[-1]:.4g}")
    st["demand"], st["demand_at"] = buckets, to_iso(start)
    return buckets


def startup_peaks(buckets: list[float], horizon_buckets: int, at_most: float) -> np.ndarray:
    """The highest demand within the horizon after each bucket whose demand was <= `at_most`."""
    m = np.asarray(buckets, dtype=float)
    k = max(1, horizon_buckets)
    n = m.size - k
    if n <= 0:
        return np.empty(0)
    # The horizon spans a few buckets: k shifted maxima beat a sliding-window view.
    ahead = m[1 : n + 1].copy()
    for j in range(2, k + 1):
        np.maximum(ahead, m[j : n + j], out=ahead)
    return ahead[m[:n] <= at_most]


def startup_peak_quantile(
    buckets: list[float], horizon_s: float, bucket_s: float, q: float, now: float
) -> float | None:
    """The `q` quantile of the highest demand a start-up time brought after a moment with
    demand no higher than `now`, in the remembered history; None with too little of it."""
    peaks = startup_peaks(buckets, math.ceil(horizon_s / bucket_s), now)
    if peaks.size < MIN_MOMENTS:
        return None
    # numpy's "higher" quantile, without its per-call overhead: the ceil((n - 1) q)-th
    # smallest.
    k = min(peaks.size - 1, math.ceil((peaks.size - 1) * q))
    return float(np.partition(peaks, k)[k])


def backlog_growth(
    st: VersionScalingState, backlog: float | None, now: datetime, window_s: float
) -> float:
    """Requests per second the backlog grew (or, negative, drained) by over about a window.

    The backlog is what waits beyond what the running replicas hold (`excess_backlog`):
    below that, the count of requests in service only jitters with the load the answered
    rate already shows. Readings are kept in `st`.
    """
    if backlog is None:
        st.pop("queue", None)
        return 0.0
    kept = [
        r for r in st.get("queue", []) if 0 < (seconds_since(r["at"], now) or 0) <= 2 * window_s
    ]
    st["queue"] = [*kept, QueueReading(at=to_iso(now), queue=backlog)]
    if not kept:
        return 0.0
    older = [r for r in kept if (seconds_since(r["at"], now) or 0) >= window_s]
    first = older[-1] if older else kept[0]
    dt = seconds_since(first["at"], now) or 0.0
    return (backlog - first["queue"]) / dt if dt > 0 else 0.0


def excess_backlog(
    queue: float | None, running: int | None, in_flight: float | None
) -> float | None:
    """Requests waiting beyond what the running replicas hold within the SLO.

    Without knowing what a replica holds (no calibration, nothing learned yet) no count
    can tell waiting from being served: there is no backlog reading then.
    """
    if queue is None or in_flight is None or running is None:
        return None
    return max(0.0, queue - running * in_flight)
