"""Budget fits sum money in the decimals it was configured in: no rounding error decides."""

from __future__ import annotations

from controller.budget_fit import Claim, fit_to_budget


def claim(price: float, want: int, app: str = "a", priority: int = 0) -> Claim:
    """One version of `app` wanting `want` replicas at `price` per hour."""
    return Claim(app, "v1", "team", (0, priority), price, want, floor=0, hard=0)


def test_three_replicas_at_a_tenth_fit_a_budget_of_three_tenths() -> None:
    fit = fit_to_budget([claim(0.1, 3)], 0.3, {})
    assert fit.replicas[("a", "v1")] == 3 and fit.cuts == {}


def test_a_budget_a_hundredth_short_takes_a_replica() -> None:
    assert fit_to_budget([claim(0.1, 3)], 0.29, {}).replicas[("a", "v1")] == 2


def test_a_price_far_below_a_cent_still_counts_against_a_zero_budget() -> None:
    fit = fit_to_budget([claim(2.4e-07, 3)], 0.0, {})
    assert fit.replicas[("a", "v1")] == 0 and fit.unmet == ()


def test_the_lower_priority_yields_first_across_prices_of_many_decimals() -> None:
    claims = [claim(3.675, 4, "high", priority=1), claim(1.0625, 4, "low", priority=0)]
    fit = fit_to_budget(claims, 3.675 * 4 + 1.0625 * 2, {"team": 100.0})
    assert (fit.replicas[("high", "v1")], fit.replicas[("low", "v1")]) == (4, 2)
