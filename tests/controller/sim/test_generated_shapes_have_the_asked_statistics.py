"""Generated traces have the statistics they were asked for, and are the same for a seed."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from controller.sim.errors import SimInputError
from controller.sim.shapes import SHAPE_START, diurnal, flash_crowd, gamma_arrivals, on_off
from controller.sim.trace import Trace

MIX = Trace(
    arrival_s=np.array([0.0, 1.0, 2.0]),
    prompt_tokens=np.array([100, 200, 300], dtype=np.int64),
    output_tokens=np.array([1, 2, 3], dtype=np.int64),
    start=SHAPE_START,
    source="mix",
)


def rate_between(trace: Trace, start_s: float, end_s: float) -> float:
    t = trace.arrival_s
    return float(((t >= start_s) & (t < end_s)).sum()) / (end_s - start_s)


@pytest.mark.parametrize("cv", [1.0, 2.0, 4.0])
def test_gamma_gaps_have_the_asked_cv_and_mean_rate(cv: float) -> None:
    trace = gamma_arrivals(mean_rate=50.0, cv=cv, duration_s=4000.0, mix=MIX, seed=1)
    gaps = np.diff(trace.arrival_s)
    assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.10)
    assert len(trace) / 4000.0 == pytest.approx(50.0, rel=0.03)
    assert trace.arrival_s.max() < 4000.0
    assert np.all(gaps >= 0)


def test_gamma_cv_1_is_poisson() -> None:
    gaps = np.diff(gamma_arrivals(50.0, 1.0, 4000.0, MIX, seed=2).arrival_s)
    # Exponential gaps: a fraction e^-1 of them are longer than the mean gap.
    assert (gaps > 1 / 50.0).mean() == pytest.approx(math.exp(-1), abs=0.01)


def test_on_off_is_idle_in_the_gaps_and_keeps_the_mean_rate() -> None:
    trace = on_off(mean_rate=10.0, on_s=120.0, off_s=180.0, duration_s=3600.0, mix=MIX, seed=3)
    phase = trace.arrival_s % 300.0
    assert phase.max() < 120.0
    assert len(trace) / 3600.0 == pytest.approx(10.0, rel=0.03)
    # 120 s on out of every 300 s: 25 req/s while on.
    assert rate_between(trace, 300.0, 420.0) == pytest.approx(25.0, rel=0.15)


def test_on_off_keeps_the_mean_rate_over_a_partial_last_cycle() -> None:
    # 12 whole cycles (1,440 s on) and 100 s of a 13th burst: 37,000 requests in 1,540 s on.
    trace = on_off(10.0, 120.0, 180.0, duration_s=3700.0, mix=MIX, seed=4)
    assert len(trace) / 3700.0 == pytest.approx(10.0, rel=0.03)
    assert rate_between(trace, 3600.0, 3700.0) == pytest.approx(37000 / 1540, rel=0.15)


def test_flash_crowd_rises_to_factor_times_base_and_comes_back() -> None:
    trace = flash_crowd(base_rate=20.0, factor=10.0, ramp_s=10.0, hold_s=120.0, at_s=600.0,
                        duration_s=1000.0, mix=MIX, seed=5)
    assert rate_between(trace, 0.0, 600.0) == pytest.approx(20.0, rel=0.05)
    # Linear from 20 to 200 req/s over the ramp: 110 req/s on average.
    assert rate_between(trace, 600.0, 610.0) == pytest.approx(110.0, rel=0.10)
    assert rate_between(trace, 610.0, 730.0) == pytest.approx(200.0, rel=0.03)
    assert rate_between(trace, 730.0, 1000.0) == pytest.approx(20.0, rel=0.05)


def test_diurnal_busiest_and_quietest_windows_differ_by_peak_to_trough() -> None:
    trace = diurnal(mean_rate=20.0, peak_to_trough=4.0, period_s=21600.0, duration_s=21600.0,
                    mix=MIX, seed=6)
    counts, _ = np.histogram(trace.arrival_s, bins=36, range=(0.0, 21600.0))
    assert counts.max() / counts.min() == pytest.approx(4.0, rel=0.07)
    assert np.argmin(counts) in (0, 35)
    assert np.argmax(counts) in (17, 18)
    assert len(trace) / 21600.0 == pytest.approx(20.0, rel=0.02)


SHAPES: dict[str, Callable[[int], Trace]] = {
    "gamma": lambda seed: gamma_arrivals(5.5, 2.0, 600.0, MIX, seed),
    "on-off": lambda seed: on_off(5.5, 120.0, 180.0, 600.0, MIX, seed),
    "flash-crowd": lambda seed: flash_crowd(5.5, 10.0, 10.0, 60.0, 200.0, 600.0, MIX, seed),
    "diurnal": lambda seed: diurnal(5.5, 4.0, 600.0, 600.0, MIX, seed),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_the_same_seed_gives_the_same_trace_and_another_seed_another(shape: str) -> None:
    build = SHAPES[shape]
    a, b, c = build(0), build(0), build(1)
    for field in ("arrival_s", "prompt_tokens", "output_tokens"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.arrival_s, c.arrival_s)
    assert a.start == SHAPE_START


@pytest.mark.parametrize("shape", SHAPES)
def test_tokens_are_drawn_as_pairs_from_the_mix(shape: str) -> None:
    trace = SHAPES[shape](0)
    assert np.array_equal(trace.prompt_tokens, trace.output_tokens * 100)
    assert set(trace.output_tokens.tolist()) == {1, 2, 3}


def test_each_trace_says_what_it_is() -> None:
    assert gamma_arrivals(5.5, 2.0, 60.0, MIX).source == "gamma(cv=2, 5.5/s, seed 0)"
    assert on_off(5.5, 120.0, 180.0, 600.0, MIX, 3).source == (
        "on-off(120 s on, 180 s off, 5.5/s, seed 3)")
    assert flash_crowd(5.5, 10.0, 10.0, 120.0, 100.0, 600.0, MIX).source == (
        "flash-crowd(10x 5.5/s at 100 s, ramp 10 s, hold 120 s, seed 0)")
    assert diurnal(5.5, 4.0, 3600.0, 600.0, MIX).source == (
        "diurnal(4:1, period 3600 s, 5.5/s, seed 0)")


@pytest.mark.parametrize(("build", "words"), [
    (lambda: gamma_arrivals(5.0, 0.0, 60.0, MIX), "cv must be a positive number, got 0.0"),
    (lambda: gamma_arrivals(-1.0, 1.0, 60.0, MIX), "mean_rate must be a positive number"),
    (lambda: gamma_arrivals(5.0, 1.0, math.nan, MIX), "duration_s must be a positive number"),
    (lambda: on_off(5.0, 0.0, 10.0, 60.0, MIX), "on_s must be a positive number"),
    (lambda: on_off(5.0, 10.0, -1.0, 60.0, MIX), "off_s must be at least 0"),
    (lambda: flash_crowd(5.0, 0.5, 10.0, 10.0, 5.0, 60.0, MIX), "factor must be at least 1"),
    (lambda: flash_crowd(5.0, 2.0, -1.0, 10.0, 5.0, 60.0, MIX), "ramp_s must be at least 0"),
    (lambda: flash_crowd(5.0, 2.0, 1.0, 10.0, 60.0, 60.0, MIX), "must fall before the end"),
    (lambda: diurnal(5.0, 0.5, 60.0, 60.0, MIX), "peak_to_trough must be at least 1"),
    (lambda: diurnal(5.0, 2.0, 0.0, 60.0, MIX), "period_s must be a positive number"),
    (lambda: gamma_arrivals(5.0, 1.0, 60.0, Trace(np.zeros(0), np.zeros(0, dtype=np.int64),
                                                   np.zeros(0, dtype=np.int64), SHAPE_START,
                                                   "empty")),
     "the token mix empty has no requests"),
    (lambda: gamma_arrivals(1e-9, 1.0, 1.0, MIX), "generated no requests"),
])
def test_bad_arguments_are_refused_with_the_reason(build: Callable[[], Trace],
                                                   words: str) -> None:
    with pytest.raises(SimInputError, match=words.replace("(", r"\(")):
        build()
