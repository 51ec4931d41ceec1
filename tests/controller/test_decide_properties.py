"""Property: decide() over random fleets and partly missing signals keeps every invariant.

Several ticks in a row, so agents see their own state again; the state stays plain JSON.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.decide import decide
from tests.controller.invariants import check_plan
from tests.controller.strategies import configs, snapshots


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_decide_keeps_the_invariants_tick_after_tick(data: st.DataObject) -> None:
    config = data.draw(configs())
    states: dict = {}
    for tick in range(3):
        snap = data.draw(snapshots(config, tick))
        decision = decide(snap, states, config)
        check_plan(decision.plan, config, decision.proposals)
        states = json.loads(json.dumps(decision.states, allow_nan=False))
