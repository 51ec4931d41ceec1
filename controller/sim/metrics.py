"""Scoring a run: SLO attainment, latency quantiles, GPU-hours, cost and goodput."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controller.sim.engine import SimResult
from controller.sim.slo import RequestSlo


@dataclass(frozen=True)
class Pricing:
    """What one replica holds and costs."""

    gpus_per_replica: float
    """GPU units one replica holds (a CPU replica counts as one unit)."""
    price_per_replica_hour: float


@dataclass(frozen=True, eq=False)
class Outcomes:
    """Per-request results in milliseconds (NaN where a request got no answer)."""

    latency_ms: np.ndarray
    ttft_ms: np.ndarray
    tpot_ms: np.ndarray
    met: np.ndarray
    answered: np.ndarray


def outcomes(result: SimResult, slo: RequestSlo) -> Outcomes:
    """Latencies of every request and whether each met the SLO."""
    arrival = result.trace.arrival_s
    served = ~result.rejected & ~np.isnan(result.done_s)
    latency = np.where(served, (result.done_s - arrival) * 1000.0, np.nan)
    ttft = np.where(served, (result.first_token_s - arrival) * 1000.0, np.nan)
    out = result.trace.output_tokens
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(
            served & (out > 1),
            (result.done_s - result.first_token_s) * 1000.0 / (out - 1),
            np.nan,
        )
    with np.errstate(invalid="ignore"):
        met = slo.met(latency, ttft, tpot) & served
    return Outcomes(latency_ms=latency, ttft_ms=ttft, tpot_ms=tpot, met=met, answered=served)


def replica_seconds(result: SimResult) -> float:
    """Seconds of replicas held (starting, serving or draining) over the run."""
    return float(sum(stop - start for _, start, _, stop in result.replica_spans))


def _q(values: np.ndarray, q: float) -> float | None:
    finite = values[~np.isnan(values)]
    return float(np.quantile(finite, q)) if finite.size else None


def window_attainment(result: SimResult, met: np.ndarray, window_s: float) -> np.ndarray:
    """SLO attainment per window of arrivals (NaN for windows without requests)."""
    arrival = result.trace.arrival_s
    bins = np.floor(arrival / window_s).astype(np.int64)
    count = np.bincount(bins)
    good = np.bincount(bins, weights=met.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, good / np.maximum(count, 1), np.nan)


Summary = dict[str, float | int | None]


def summarize(result: SimResult, slo: RequestSlo, pricing: Pricing) -> Summary:
    """The benchmark's numbers for one run."""
    o = outcomes(result, slo)
    n = len(result.trace)
    held_s = replica_seconds(result)
    gpu_hours = held_s * pricing.gpus_per_replica / 3600.0
    good = int(o.met.sum())
    per_minute = window_attainment(result, o.met, 60.0)
    summary: Summary = {
        "slo_attainment": good / n if n else 1.0,
        "gpu_hours": gpu_hours,
        "cost_usd": held_s / 3600.0 * pricing.price_per_replica_hour,
        "p50_ms": _q(o.latency_ms, 0.50),
        "p95_ms": _q(o.latency_ms, 0.95),
        "p99_ms": _q(o.latency_ms, 0.99),
        "scaling_actions": result.scaling_actions,
        "goodput_per_gpu_hour": good / gpu_hours if gpu_hours > 0 else 0.0,
        "requests": n,
        "rejected": int(result.rejected.sum()),
        "unanswered": int(n - o.answered.sum() - result.rejected.sum()),
        "replica_hours": held_s / 3600.0,
        "mean_replicas": held_s / result.end_s if result.end_s > 0 else 0.0,
        "max_replicas": _max_concurrent(result),
        "worst_minute_attainment": float(np.nanmin(per_minute)) if per_minute.size else None,
        "simulated_s": result.end_s,
        "wall_s": result.wall_s,
    }
    if result.profile.kind == "generation":
        summary["ttft_p50_ms"] = _q(o.ttft_ms, 0.50)
        summary["ttft_p95_ms"] = _q(o.ttft_ms, 0.95)
        summary["tpot_p50_ms"] = _q(o.tpot_ms, 0.50)
        summary["tpot_p95_ms"] = _q(o.tpot_ms, 0.95)
    return summary


def _max_concurrent(result: SimResult) -> int:
    edges = sorted(
        [(start, 1) for _, start, _, _ in result.replica_spans]
        + [(stop, -1) for _, _, _, stop in result.replica_spans]
    )
    best = level = 0
    for _, step in edges:
        level += step
        best = max(best, level)
    return best
