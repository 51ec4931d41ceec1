"""The canary statistics: error-rate and latency-quantile tests on counts."""

from __future__ import annotations

import math

import pytest

from controller.agents.stats import (
    count_above,
    error_rate_regression,
    latency_regression,
    quantile_upper_bound,
)
from controller.snapshot import LatencyHistogram
from tests.controller.fleet import lognormal_histogram


def test_error_regression_fails_a_clearly_worse_canary() -> None:
    result = error_rate_regression(20, 200, 5, 4000, margin=0.01, confidence=0.95)
    assert result.outcome == "fail"
    assert result.p_value is not None and result.p_value < 0.05
    assert "10.00%" in result.detail


def test_error_regression_passes_within_the_tolerance() -> None:
    result = error_rate_regression(2, 200, 20, 4000, margin=0.01, confidence=0.95)
    assert result.outcome == "pass"


def test_error_regression_is_not_fooled_by_one_unlucky_error_in_few_requests() -> None:
    assert error_rate_regression(1, 50, 0, 1000, margin=0.01, confidence=0.95).outcome == "pass"


def test_error_regression_with_zero_margin_and_no_errors_passes() -> None:
    assert error_rate_regression(0, 100, 0, 100, margin=0.0, confidence=0.95).outcome == "pass"


def test_error_regression_without_requests_is_inconclusive() -> None:
    assert error_rate_regression(0, 0, 0, 100, 0.01, 0.95).outcome == "inconclusive"


def test_count_above_interpolates_inside_a_bucket() -> None:
    hist = LatencyHistogram((100.0, 200.0, math.inf), (50.0, 90.0, 100.0))
    assert count_above(hist, 150.0) == pytest.approx(30.0)
    assert count_above(hist, 50.0) == pytest.approx(75.0)
    assert count_above(hist, 300.0) is None


def test_count_above_an_empty_inf_bucket_is_known() -> None:
    hist = LatencyHistogram((100.0, 200.0, math.inf), (50.0, 100.0, 100.0))
    assert count_above(hist, 300.0) == 0.0


def test_quantile_upper_bound_lies_above_the_estimate() -> None:
    hist = lognormal_histogram(400, 80)
    p95 = hist.quantile(0.95)
    bound = quantile_upper_bound(hist, 0.95, 0.95)
    assert p95 is not None and bound is not None and bound > p95


def test_latency_regression_passes_the_same_distribution() -> None:
    result = latency_regression(
        lognormal_histogram(300, 80), lognormal_histogram(3000, 80), 1.2, 0.95
    )
    assert result.outcome == "pass"


def test_latency_regression_fails_a_canary_twice_as_slow() -> None:
    result = latency_regression(
        lognormal_histogram(300, 160), lognormal_histogram(3000, 80), 1.2, 0.95
    )
    assert result.outcome == "fail"
    assert "latency regressed" in result.detail


def test_latency_regression_tolerates_a_slowdown_within_the_ratio() -> None:
    result = latency_regression(
        lognormal_histogram(300, 88), lognormal_histogram(3000, 80), 1.2, 0.95
    )
    assert result.outcome == "pass"
