"""Shared guardrails: clamp, step limits, hysteresis band, per-direction delays."""

from __future__ import annotations

from datetime import timedelta

from controller.agents.guardrails import apply_delay, clamp, limit_step, replicas_for, within_band
from tests.controller.fleet import T0


def test_clamp_keeps_within_bounds_and_lower_bound_wins_when_they_cross() -> None:
    assert clamp(7, 1, 4) == 4
    assert clamp(0, 1, 4) == 1
    assert clamp(3, 5, 4) == 5


def test_step_limits_bound_each_direction() -> None:
    assert limit_step(2, 9, max_up=3, max_down=1) == 5
    assert limit_step(6, 1, max_up=3, max_down=2) == 4
    assert limit_step(3, 4, max_up=3, max_down=1) == 4


def test_hysteresis_band_is_relative_to_the_current_count() -> None:
    assert within_band(10, 10.9, 0.1)
    assert within_band(10, 9.1, 0.1)
    assert not within_band(10, 11.5, 0.1)
    assert not within_band(0, 0.2, 0.1)


def test_replicas_cover_the_need_without_float_noise() -> None:
    assert replicas_for(2.0000000001) == 2
    assert replicas_for(2.01) == 3
    assert replicas_for(0) == 0


def test_downscale_waits_for_its_delay_and_keeps_the_highest_recommendation() -> None:
    first = apply_delay(5, 2, T0, None, up_delay_s=0, down_delay_s=60)
    assert first.replicas == 5 and first.pending is not None
    later = apply_delay(5, 4, T0 + timedelta(seconds=30), first.pending, 0, 60)
    assert later.replicas == 5
    done = apply_delay(5, 2, T0 + timedelta(seconds=60), later.pending, 0, 60)
    assert done.replicas == 4 and done.pending is None


def test_delay_starts_over_when_the_direction_changes() -> None:
    down = apply_delay(5, 4, T0, None, up_delay_s=30, down_delay_s=60)
    up = apply_delay(5, 6, T0 + timedelta(seconds=50), down.pending, 30, 60)
    assert up.replicas == 5
    assert up.pending is not None and up.pending["direction"] == 1
    again = apply_delay(5, 4, T0 + timedelta(seconds=70), up.pending, 30, 60)
    assert again.replicas == 5, "the 50 s spent downward before the flip must not count"


def test_delay_starts_over_when_the_observed_count_moves() -> None:
    down = apply_delay(5, 4, T0, None, 0, 60)
    moved = apply_delay(4, 3, T0 + timedelta(seconds=60), down.pending, 0, 60)
    assert moved.replicas == 4


def test_no_change_clears_the_pending_change() -> None:
    down = apply_delay(5, 4, T0, None, 0, 60)
    steady = apply_delay(5, 5, T0 + timedelta(seconds=10), down.pending, 0, 60)
    assert steady.replicas == 5 and steady.pending is None
