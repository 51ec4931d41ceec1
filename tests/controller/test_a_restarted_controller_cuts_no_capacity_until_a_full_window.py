"""After a start, data covers less than a window: the plan holds every count it would cut."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from controller.decide import decide
from tests.controller.fleet import T0, app_doc, make_config, snapshot, version

WINDOW_S = 30.0


def _over_budget():  # type: ignore[no-untyped-def]
    config = make_config(
        app_doc(candidate=None, max_replicas=8),
        budgets={"total_per_hour": 2},
        window_s=WINDOW_S,
    )
    seen = snapshot(
        version("embed", "v1", replicas=4, rate=None, p95_ms=None),
        version("embed", "v2", replicas=1, rate=None, p95_ms=None),
        weights={"v1": 100, "v2": 0},
        window_s=WINDOW_S,
    )
    return config, seen


def test_the_budget_cuts_nothing_while_the_first_window_fills() -> None:
    config, seen = _over_budget()
    started = replace(seen, observing_since=T0 - timedelta(seconds=5))
    plan = decide(started, {}, config).plan
    assert plan.replicas_for("embed", "v1") == 4
    assert plan.replicas_for("embed", "v2") == 1
    assert plan.budget_cuts == ()
    reasons = " ".join(next(d for d in plan.replicas if d.version == "v1").reasons)
    assert "until a full window has been observed" in reasons


def test_the_budget_cuts_once_a_full_window_was_observed() -> None:
    config, seen = _over_budget()
    warmed = replace(seen, observing_since=T0 - timedelta(seconds=WINDOW_S))
    plan = decide(warmed, {}, config).plan
    assert plan.replicas_for("embed", "v1") + plan.replicas_for("embed", "v2") <= 2


def test_scaling_may_add_but_not_remove_replicas_while_warming_up() -> None:
    config = make_config(
        app_doc(candidate=None, max_replicas=8, scaling={"capacity_rps_per_replica": 10}),
        window_s=WINDOW_S,
    )
    states: dict = {}
    quiet = snapshot(version("embed", "v1", replicas=6, rate=1.0), window_s=WINDOW_S)
    busy = snapshot(version("embed", "v1", replicas=2, rate=60.0), window_s=WINDOW_S)
    for seen, expect in ((quiet, lambda n: n == 6), (busy, lambda n: n > 2)):
        started = replace(seen, observing_since=T0)
        plan = decide(started, states, config).plan
        assert expect(plan.replicas_for("embed", "v1")), plan.replicas
