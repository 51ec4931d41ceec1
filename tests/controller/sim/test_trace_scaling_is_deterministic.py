"""Time and rate scaling of a trace: exact, and the same for the same seed."""

from __future__ import annotations

import numpy as np
import pytest

from controller.sim.capacity import constant_trace
from controller.sim.errors import SimInputError
from controller.sim.trace import peak_rate, scale_trace, slice_trace


def test_time_scale_compresses_arrivals() -> None:
    trace = constant_trace(rate=1.0, duration_s=100)
    fast = scale_trace(trace, time_scale=10)
    assert fast.duration_s == pytest.approx(trace.duration_s / 10)
    assert len(fast) == len(trace)


def test_rate_scale_duplicates_and_thins_deterministically() -> None:
    trace = constant_trace(rate=10.0, duration_s=1000)
    double = scale_trace(trace, rate_scale=2.0, seed=1)
    assert len(double) == 2 * len(trace)
    assert np.all(np.diff(double.arrival_s) >= 0)
    half_a = scale_trace(trace, rate_scale=0.5, seed=7)
    half_b = scale_trace(trace, rate_scale=0.5, seed=7)
    half_c = scale_trace(trace, rate_scale=0.5, seed=8)
    assert np.array_equal(half_a.arrival_s, half_b.arrival_s)
    assert not np.array_equal(half_a.arrival_s, half_c.arrival_s)
    assert abs(len(half_a) - len(trace) / 2) < 0.05 * len(trace)


def test_bad_scales_are_refused() -> None:
    with pytest.raises(SimInputError):
        scale_trace(constant_trace(1.0, 10), time_scale=0)


def test_slice_rebases_and_peak_rate_counts_the_busiest_window() -> None:
    trace = constant_trace(rate=2.0, duration_s=100)
    part = slice_trace(trace, 10.0, 20.0)
    assert part.arrival_s[0] == 0.0
    assert len(part) == 40
    assert peak_rate(trace, 10.0) == pytest.approx(2.0)
