"""The benchmark's verdict: Pareto against each baseline, 99% where static-peak reaches it."""

from __future__ import annotations

import pytest

from controller.sim.verdict import Outcome, judge_trace, mean_gpu_hours_ratio


def outcomes(gov: tuple[float, float], **others: tuple[float, float]) -> dict[str, Outcome]:
    """Outcomes keyed by policy name from (attainment, GPU-hours) pairs."""
    named = {"governor": gov, **{k.replace("_", "-"): v for k, v in others.items()}}
    return {k: Outcome(*v) for k, v in named.items()}


def test_a_governor_better_and_cheaper_than_every_baseline_meets_every_target() -> None:
    v = judge_trace("t", outcomes((0.995, 2.0), ray_default=(0.99, 6.0), hpa=(0.98, 2.5),
                                  static_peak=(1.0, 4.0)), 0.99)
    assert v.met and v.misses == ()
    assert v.gpu_hours_ratio == pytest.approx(0.5)


def test_cheaper_but_worse_than_a_baseline_is_not_pareto() -> None:
    v = judge_trace("t", outcomes((0.97, 1.0), ray_default=(0.98, 6.0), hpa=(0.96, 2.5),
                                  static_peak=(0.95, 4.0)), 0.99)
    assert not v.met
    assert v.misses == ("attainment 97.0000% < ray-default's 98.0000%",)


def test_more_gpu_hours_than_a_baseline_is_named_with_both_numbers() -> None:
    v = judge_trace("t", outcomes((0.99, 3.0), hpa=(0.98, 2.5)), 0.99)
    assert v.misses == ("GPU-h 3.00 > hpa's 2.50",)


def test_the_attainment_target_applies_only_where_static_peak_reaches_it() -> None:
    reached = judge_trace("t", outcomes((0.985, 1.0), static_peak=(0.995, 4.0)), 0.99)
    assert reached.misses == ("attainment 98.5000% < 99% where static-peak reaches 99.5000%",)
    missed = judge_trace("t", outcomes((0.985, 1.0), static_peak=(0.989, 4.0)), 0.99)
    assert missed.met


def test_the_suite_ratio_is_the_mean_of_the_per_trace_ratios() -> None:
    a = judge_trace("a", outcomes((1.0, 1.0), static_peak=(1.0, 2.0)), 0.99)
    b = judge_trace("b", outcomes((1.0, 3.0), static_peak=(1.0, 3.0)), 0.99)
    assert mean_gpu_hours_ratio([a, b]) == pytest.approx(0.75)
    assert mean_gpu_hours_ratio([]) is None
