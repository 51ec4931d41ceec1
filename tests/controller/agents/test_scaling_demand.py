"""Demand over time: the Holt forecast, the history of bucket maxima, the backlog's growth."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from controller.agents.scaling.demand import (
    MIN_MOMENTS,
    STALE_AFTER_WINDOWS,
    Forecast,
    backlog_growth,
    excess_backlog,
    remember_demand,
    startup_peak_quantile,
    startup_peaks,
    update_forecast,
)
from controller.agents.state import VersionScalingState, to_iso
from tests.controller.fleet import T0


def at(seconds: float) -> datetime:
    """T0 plus `seconds`."""
    return T0 + timedelta(seconds=seconds)


def forecast_state(f: Forecast, t: float) -> VersionScalingState:
    """What the agent keeps of a forecast made at `t`."""
    return {"level": f.level, "trend_per_s": f.trend, "observed_at": to_iso(at(t))}


def test_the_forecast_follows_a_ramp() -> None:
    st: VersionScalingState = {}
    f = Forecast(0.0, 0.0)
    for t in range(0, 301, 5):
        f = update_forecast(st, 10 + 0.5 * t, at(t), 60)
        st = forecast_state(f, t)
    # After five forecast windows of 10 + 0.5 t: level ~ 160, trend ~ 0.5 units/s per s.
    assert f.trend == pytest.approx(0.5, rel=0.02)
    assert f.level == pytest.approx(160.0, rel=0.01)
    assert f.at(30) == pytest.approx(175.0, rel=0.01), "the ramp 30 s on"


def test_the_first_observation_is_the_level_with_no_trend() -> None:
    assert update_forecast({}, 7.0, T0, 60) == Forecast(7.0, 0.0)


def test_a_stale_forecast_starts_over() -> None:
    old = forecast_state(Forecast(100.0, 2.0), 0)
    late = STALE_AFTER_WINDOWS * 60 + 5
    assert update_forecast(old, 7.0, at(late), 60) == Forecast(7.0, 0.0)


def test_a_tick_at_the_same_instant_keeps_the_forecast() -> None:
    kept = forecast_state(Forecast(100.0, 2.0), 0)
    assert update_forecast(kept, 7.0, T0, 60) == Forecast(100.0, 2.0)


def test_a_forecast_is_never_negative() -> None:
    assert Forecast(10.0, -1.0).at(30) == 0.0
    assert Forecast(10.0, -1.0).at(5) == 5.0


def test_the_history_keeps_the_highest_demand_of_each_bucket() -> None:
    st: VersionScalingState = {}
    for t, demand in ((0, 3.0), (10, 5.0), (20, 4.0), (30, 1.0), (45, 2.0), (60, 6.0)):
        buckets = remember_demand(st, demand, at(t), 30, 3600)
    assert buckets == [5.0, 2.0, 6.0]
    assert st["demand"] == [5.0, 2.0, 6.0]
    assert st["demand_at"] == to_iso(at(60)), "the newest bucket began at 60 s"


def test_the_history_forgets_beyond_the_burst_memory() -> None:
    st: VersionScalingState = {}
    for i in range(10):
        buckets = remember_demand(st, float(i), at(30 * i), 30, 120)
    assert buckets == [6.0, 7.0, 8.0, 9.0], "120 s of 30 s buckets"


def test_the_history_restarts_after_a_gap_rather_than_inventing_a_lull() -> None:
    st: VersionScalingState = {}
    for i in range(4):
        remember_demand(st, 5.0, at(30 * i), 30, 3600)
    # One bucket missed (the daemon was down 60 s) is bridged...
    assert remember_demand(st, 6.0, at(90 + 60), 30, 3600) == [5.0] * 4 + [6.0]
    # ...three are not: the history starts over.
    assert remember_demand(st, 7.0, at(150 + 90), 30, 3600) == [7.0]


def test_a_history_from_the_future_starts_over() -> None:
    st: VersionScalingState = {"demand": [1.0, 2.0], "demand_at": to_iso(at(100))}
    assert remember_demand(st, 3.0, at(50), 30, 3600) == [3.0]


def test_startup_peaks_look_ahead_from_moments_with_demand_no_higher_than_now() -> None:
    history = [1.0, 5.0, 2.0, 8.0, 1.0, 3.0, 9.0]
    # Moments 0..5 have a bucket after them; those <= 2 are 0 (1), 2 (2), 4 (1).
    assert list(startup_peaks(history, 1, 2.0)) == [5.0, 8.0, 3.0]
    # Two buckets ahead: from 0 max(5, 2), from 2 max(8, 1), from 4 max(3, 9).
    assert list(startup_peaks(history, 2, 2.0)) == [5.0, 8.0, 9.0]
    assert list(startup_peaks(history, 7, 9.0)) == [], "no moment has a whole horizon after it"


def test_the_startup_peak_quantile_uses_only_moments_like_now() -> None:
    # Lulls at 1 followed by rises to 4, 5, 6, 7; busy moments at 10 followed by 20.
    history = [1.0, 4.0, 1.0, 5.0, 1.0, 6.0, 1.0, 7.0, 10.0, 20.0, 10.0, 20.0]
    assert startup_peak_quantile(history, 30, 30, 0.99, 1.0) == 7.0
    assert startup_peak_quantile(history, 30, 30, 0.5, 1.0) == 6.0, "the higher of 5 and 6"
    # From moments <= 10 the busy rises count too.
    assert startup_peak_quantile(history, 30, 30, 0.99, 10.0) == 20.0
    # A start-up of 31 s looks two buckets ahead.
    assert startup_peak_quantile(history, 31, 30, 0.0, 1.0) == 4.0


def test_the_startup_peak_quantile_needs_enough_history() -> None:
    three_rises = [1.0, 4.0, 1.0, 5.0, 1.0, 6.0, 1.0]
    assert startup_peaks(three_rises, 1, 1.0).size == MIN_MOMENTS - 1
    assert startup_peak_quantile(three_rises, 30, 30, 0.99, 1.0) is None
    assert startup_peak_quantile([*three_rises, 7.0], 30, 30, 0.99, 1.0) == 7.0
    assert startup_peak_quantile([5.0] * 10, 30, 30, 0.99, 1.0) is None, "no moment like now"


def growth_after(readings: list[tuple[float, float]], t: float, backlog: float,
                 window_s: float = 30) -> tuple[float, dict[str, Any]]:
    """The backlog growth at `t` after `readings` of (seconds, backlog), and the state kept."""
    st: VersionScalingState = {"queue": [{"at": to_iso(at(s)), "queue": q} for s, q in readings]}
    return backlog_growth(st, backlog, at(t), window_s), dict(st)


def test_the_backlogs_growth_is_read_over_about_a_window() -> None:
    # 30 s ago 10 waited, 5 s ago 10, now 60: 50 more over the window, whatever the last 5 s.
    growth, _ = growth_after([(0, 10.0), (25, 10.0)], 30, 60.0)
    assert growth == pytest.approx(50 / 30)
    # Over the window 100 -> 40: -2/s; the last 5 s alone fell by 4/s.
    growth, _ = growth_after([(0, 100.0), (25, 60.0)], 30, 40.0)
    assert growth == pytest.approx(-2.0)


def test_without_a_reading_a_window_old_the_oldest_kept_one_is_the_base() -> None:
    growth, _ = growth_after([(10, 10.0), (25, 40.0)], 30, 50.0)
    assert growth == pytest.approx(40 / 20)


def test_only_requests_beyond_what_the_running_replicas_hold_are_a_backlog() -> None:
    assert excess_backlog(60.0, running=4, in_flight=10.0) == 20.0
    assert excess_backlog(30.0, running=4, in_flight=10.0) == 0.0, "all of them in service"
    assert excess_backlog(60.0, running=4, in_flight=None) is None, "no measure of holding"
    assert excess_backlog(None, running=4, in_flight=10.0) is None


def test_readings_older_than_two_windows_are_dropped() -> None:
    growth, st = growth_after([(0, 0.0), (50, 20.0)], 70, 40.0)
    assert [r["queue"] for r in st["queue"]] == [20.0, 40.0]
    assert growth == pytest.approx(1.0), "20 more over the 20 s since the kept reading"


def test_a_missing_backlog_forgets_the_readings() -> None:
    st: VersionScalingState = {"queue": [{"at": to_iso(T0), "queue": 5.0}]}
    assert backlog_growth(st, None, at(5), 30) == 0.0
    assert "queue" not in st
