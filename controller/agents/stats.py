"""Statistical comparisons of a canary against its stable version.

Errors: a one-sided Farrington-Manning score test of H0 `p_canary - p_stable <= margin`
against H1 `p_canary - p_stable > margin` (the non-inferiority test for two
proportions; with margin 0 it is the pooled two-proportion z-test).

Latency: a one-sided exact binomial test of H0 `P(canary latency > T) <= 5%`, where
`T = ratio x` the stable's p95. Rejecting H0 means the canary's p95 is above `T`. The
stable's p95 is taken at its upper confidence bound (an order-statistic bound), so noise
in the stable's own estimate does not roll a healthy canary back. Where no stable runs
beside the canary, `T` is the SLO's target instead (`slo_breach`). Both tests read only
bucket counts, never a single quantile sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy.optimize import minimize_scalar
from scipy.special import xlogy
from scipy.stats import binom, norm

from controller.snapshot import LatencyHistogram

Outcome = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class Comparison:
    """The outcome of one canary-vs-stable test, with its evidence in words."""

    outcome: Outcome
    detail: str
    p_value: float | None = None


def _restricted_mle(
    x1: float, n1: float, x2: float, n2: float, delta: float
) -> tuple[float, float]:
    """Maximum-likelihood (p1, p2) under the constraint p1 - p2 = delta."""

    def neg_loglik(p2: float) -> float:
        p1 = p2 + delta
        return -float(
            xlogy(x1, p1) + xlogy(n1 - x1, 1 - p1) + xlogy(x2, p2) + xlogy(n2 - x2, 1 - p2)
        )

    lo, hi = max(0.0, -delta), min(1.0, 1.0 - delta)
    if hi - lo < 1e-12:
        return lo + delta, lo
    res = minimize_scalar(neg_loglik, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    p2 = float(res.x)
    return p2 + delta, p2


def error_rate_regression(
    canary_errors: float,
    canary_requests: float,
    stable_errors: float,
    stable_requests: float,
    margin: float,
    confidence: float,
    what: str = "errors",
) -> Comparison:
    """Fail when the canary's error rate is significantly above the stable's plus `margin`.

    `what` names the failures counted (errors, or requests shed) in the verdict.
    """
    n1, n2 = float(canary_requests), float(stable_requests)
    if n1 <= 0 or n2 <= 0:
        return Comparison("inconclusive", f"no requests to compare {what}")
    x1 = min(max(float(canary_errors), 0.0), n1)
    x2 = min(max(float(stable_errors), 0.0), n2)
    r1, r2 = x1 / n1, x2 / n2
    p1, p2 = _restricted_mle(x1, n1, x2, n2, margin)
    variance = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    excess = r1 - r2 - margin
    if variance <= 0:
        p_value = 0.0 if excess > 0 else 1.0
    else:
        p_value = float(norm.sf(excess / math.sqrt(variance)))
    summary = (
        f"{what} canary {r1:.2%} ({x1:.0f}/{n1:.0f}) vs stable {r2:.2%} ({x2:.0f}/{n2:.0f}), "
        f"tolerance +{margin:.2%}, p={p_value:.3g}"
    )
    if p_value < 1 - confidence:
        rate_of = "error" if what == "errors" else what
        return Comparison("fail", f"{rate_of} rate regressed: {summary}", p_value)
    return Comparison("pass", summary, p_value)


def count_above(hist: LatencyHistogram, threshold_ms: float) -> float | None:
    """Requests slower than `threshold_ms` (linear inside a bucket); None when unknowable."""
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in zip(hist.bounds_ms, hist.counts, strict=True):
        if threshold_ms <= bound:
            if math.isinf(bound):
                return None if count > lower_count else hist.total - count
            span = bound - lower_bound
            frac = 1.0 if span <= 0 else (threshold_ms - lower_bound) / span
            below = lower_count + (count - lower_count) * max(0.0, min(1.0, frac))
            return max(0.0, hist.total - below)
        lower_bound, lower_count = bound, count
    return max(0.0, hist.total - lower_count)


def quantile_upper_bound(hist: LatencyHistogram, q: float, confidence: float) -> float | None:
    """Upper confidence bound of the q-quantile: the order statistic a binomial puts above it."""
    n = round(hist.total)
    if n <= 0:
        return None
    rank = float(binom.ppf(confidence, n, q)) + 1
    return hist.quantile(min(1.0, rank / n))


def latency_regression(
    canary: LatencyHistogram,
    stable: LatencyHistogram,
    max_ratio: float,
    confidence: float,
    quantile: float = 0.95,
    what: str = "latency",
) -> Comparison:
    """Fail when the canary's p95 is significantly above `max_ratio` x the stable's p95.

    `what` names the measure (latency, TTFT, TPOT) in the verdict.
    """
    n = round(canary.total)
    if n <= 0 or stable.total <= 0:
        return Comparison("inconclusive", f"no {what} samples to compare")
    stable_q = stable.quantile(quantile)
    stable_hi = quantile_upper_bound(stable, quantile, confidence)
    if stable_q is None or stable_hi is None:
        return Comparison("inconclusive", f"the stable's {what} quantile is unknown")
    threshold = stable_hi * max_ratio
    against = (
        f"stable {stable_q:.1f} ms (bound {stable_hi:.1f} ms x {max_ratio:g} = {threshold:.1f} ms)"
    )
    return _tail_test(canary, threshold, against, confidence, quantile, what)


def slo_breach(
    canary: LatencyHistogram,
    target_ms: float,
    confidence: float,
    quantile: float = 0.95,
    what: str = "latency",
) -> Comparison:
    """Fail when the canary's p95 is significantly above the SLO's `target_ms`.

    For a step with no concurrent stable to compare with (the candidate takes all the
    traffic): an earlier window of the stable ran at another load and another mix.
    """
    if round(canary.total) <= 0:
        return Comparison("inconclusive", f"no {what} samples to compare")
    return _tail_test(canary, target_ms, f"SLO {target_ms:.1f} ms", confidence, quantile, what)


def _tail_test(
    canary: LatencyHistogram,
    threshold: float,
    against: str,
    confidence: float,
    quantile: float,
    what: str,
) -> Comparison:
    """One-sided exact binomial test that more than 1 - `quantile` lie above `threshold`."""
    n = round(canary.total)
    above = count_above(canary, threshold)
    if above is None:
        return Comparison(
            "inconclusive",
            f"{what} threshold {threshold:.0f} ms lies in the histogram's open +Inf bucket",
        )
    k = round(above)
    tail = 1 - quantile
    p_value = float(binom.sf(k - 1, n, tail)) if k > 0 else 1.0
    canary_q = canary.quantile(quantile)
    prefix = "" if what == "latency" else f"{what} "
    summary = (
        f"{prefix}canary p{quantile * 100:.0f} {canary_q or 0:.1f} ms vs {against}; "
        f"{k}/{n} canary samples above it ({k / n:.1%}, allowed {tail:.0%}), p={p_value:.3g}"
    )
    if p_value < 1 - confidence:
        return Comparison("fail", f"{what} regressed: {summary}", p_value)
    return Comparison("pass", summary, p_value)
