"""What one replica does within the SLO: learned from breaches and light loads, relaxed back."""

from __future__ import annotations

import pytest

from controller.agents.scaling.capacity import Capacity, learn_capacity, relaxed

SEED = Capacity(1.0, "calibrated")


def known(capacity: Capacity | None) -> tuple[float, str]:
    """Value and kind of a capacity that must be known."""
    assert capacity is not None
    return capacity.per_replica, capacity.kind


def test_a_breach_at_a_load_the_estimate_carries_cuts_half_way_to_load_over_pressure() -> None:
    # 0.8 units/s per replica at p95 = 1.25 x SLO: the knee is at 0.8 / 1.25 = 0.64.
    assert known(learn_capacity(SEED, 0.8, 1.25, 1.0)) == (
        pytest.approx(1.0 + 0.5 * (0.64 - 1.0)), "measured")


def test_a_breach_far_beyond_the_slo_puts_the_knee_no_lower_than_half_the_load() -> None:
    # p95 = 10 x SLO at 0.8: load / pressure would be 0.08, half the load is 0.4.
    assert known(learn_capacity(SEED, 0.8, 10.0, 1.0)) == (pytest.approx(0.7), "measured")
    for pressure in (1.01, 1.5, 2.0, 10.0, 1e6):
        for load in (0.1, 0.5, 1.0):
            cut = learn_capacity(SEED, load, pressure, 1.0)
            assert cut is not None and load / 2 <= cut.per_replica < 1.0, (load, pressure)


def test_one_breach_teaches_once_then_its_load_is_beyond_the_estimate() -> None:
    cut = learn_capacity(SEED, 0.8, 10.0, 1.0)
    assert learn_capacity(cut, 0.8, 10.0, 1.0) is cut, "0.8 is now beyond the estimate 0.7"
    # At a lighter load per replica (more replicas) a breach cuts again.
    assert known(learn_capacity(cut, 0.6, 10.0, 1.0)) == (pytest.approx(0.5), "measured")


def test_a_breach_at_a_light_load_still_teaches() -> None:
    # Some mixes miss the SLO at light loads: only more, less loaded replicas meet it.
    assert known(learn_capacity(SEED, 0.2, 2.0, 1.0)) == (pytest.approx(0.55), "measured")


def test_a_breach_beyond_the_estimate_teaches_nothing() -> None:
    assert learn_capacity(SEED, 1.2, 3.0, 1.0) is SEED
    measured = Capacity(0.6, "measured")
    assert learn_capacity(measured, 0.9, 1.5, 1.0) is measured


def test_a_breach_without_an_estimate_measures_the_knee() -> None:
    assert learn_capacity(None, 2.0, 4.0) == Capacity(1.0, "measured")
    # A lower bound proven before is kept when the breach puts the knee below it.
    assert learn_capacity(Capacity(1.5, "proven"), 2.0, 4.0) == Capacity(1.5, "measured")
    assert learn_capacity(Capacity(0.5, "proven"), 2.0, 1.6) == Capacity(1.25, "measured")


def test_a_load_well_within_the_slo_raises_the_estimate() -> None:
    measured = Capacity(0.6, "measured")
    assert learn_capacity(measured, 0.8, 0.5, 1.0) == Capacity(0.8, "measured")
    assert learn_capacity(None, 3.0, 0.5) == Capacity(3.0, "proven")
    assert learn_capacity(Capacity(2.0, "proven"), 3.0, 0.5) == Capacity(3.0, "proven")


def test_a_load_within_the_slo_never_raises_the_estimate_past_the_seed() -> None:
    measured = Capacity(0.6, "measured")
    assert learn_capacity(measured, 1.3, 0.2, 1.0) == SEED
    assert learn_capacity(measured, 1.0, 0.2, 1.0) == SEED
    assert learn_capacity(SEED, 1.3, 0.2, 1.0) == SEED, "nothing raises the seed itself"


def test_a_load_near_the_knee_or_below_the_estimate_teaches_nothing() -> None:
    measured = Capacity(0.6, "measured")
    assert learn_capacity(measured, 0.9, 0.8, 1.0) is measured, "p95 within 30% of the SLO"
    assert learn_capacity(measured, 0.9, 1.0, 1.0) is measured, "p95 at the SLO is no breach"
    assert learn_capacity(measured, 0.5, 0.2, 1.0) is measured
    assert learn_capacity(None, 3.0, 0.8) is None


def test_a_learned_capacity_relaxes_towards_the_seed() -> None:
    assert relaxed(Capacity(0.5, "measured"), 1.0, 600, 600) == Capacity(0.75, "measured")
    assert relaxed(Capacity(0.5, "measured"), 1.0, 1200, 600) == Capacity(0.875, "measured")
    assert relaxed(Capacity(2.0, "proven"), 1.0, 600, 600) == Capacity(1.5, "proven")


def test_a_capacity_relaxed_within_one_percent_of_the_seed_is_the_seed() -> None:
    assert relaxed(Capacity(0.5, "measured"), 1.0, 6000, 600) == SEED


def test_nothing_relaxes_without_a_seed_time_or_a_learned_value() -> None:
    proven = Capacity(4.0, "proven")
    assert relaxed(proven, None, 6000, 600) is proven
    assert relaxed(Capacity(0.5, "measured"), 1.0, 0, 600) == Capacity(0.5, "measured")
    assert relaxed(SEED, 1.0, 6000, 600) is SEED


def test_the_planned_load_is_the_target_share_except_for_a_lower_bound() -> None:
    assert Capacity(2.0, "calibrated").planned(0.7) == pytest.approx(1.4)
    assert Capacity(2.0, "measured").planned(0.7) == pytest.approx(1.4)
    assert Capacity(2.0, "proven").planned(0.7) == 2.0, "a bound already seen served"
