"""Property: for random fleets, prices, budgets and proposals, every plan keeps the invariants."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.arbiter import arbitrate
from tests.controller.invariants import check_plan
from tests.controller.strategies import configs, proposal_lists, snapshots


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_plan_respects_budget_bounds_and_weights(data: st.DataObject) -> None:
    config = data.draw(configs())
    snap = data.draw(snapshots(config))
    proposals = data.draw(proposal_lists(config))
    plan = arbitrate(snap, proposals, config)
    check_plan(plan, config, proposals)
