"""Property: the indexed arbiter and its heap budget fit give the plan the plain rules give."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.arbiter import arbitrate
from controller.config import Budgets, TeamBudget
from tests.controller.reference_arbiter import reference_plan
from tests.controller.strategies import TEAMS, configs, proposal_lists, snapshots

# Multiples of 1/4: sums are exact in binary floating point, so the reference's re-summed
# float costs and the arbiter's integer micro-units agree on every boundary.
QUARTERS = st.integers(0, 80).map(lambda q: q / 4)
PRICES = st.integers(0, 8).map(lambda q: q / 4)
"""Cheap replicas next to budgets up to 20/h: most budgets bind part of the way."""


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_plan_equals_the_straightforward_reference(data: st.DataObject) -> None:
    drawn = data.draw(configs())
    teams = {
        t: TeamBudget(per_hour=data.draw(QUARTERS), priority=data.draw(st.integers(-2, 2)))
        for t in data.draw(st.sets(st.sampled_from(TEAMS)))
    }
    total = data.draw(st.none() | QUARTERS)
    config = drawn.model_copy(
        update={
            "prices": {"cpu": data.draw(PRICES), "a10": data.draw(PRICES)},
            "budgets": Budgets(total_per_hour=total, teams=teams),
        }
    )
    snap = data.draw(snapshots(config))
    proposals = data.draw(proposal_lists(config))
    plan = arbitrate(snap, proposals, config)
    expected = reference_plan(snap, proposals, config)
    assert plan.replicas == expected.replicas
    assert plan.weights == expected.weights
    assert plan.alerts == expected.alerts
    assert plan.cost_per_hour == expected.cost_per_hour
    for cut in plan.budget_cuts:
        decision = plan.replica_decision(cut.app, cut.version)
        assert decision is not None and decision.replicas == cut.allowed < cut.asked
