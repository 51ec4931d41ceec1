"""decide(): agents propose, the arbiter resolves, reviewers read the plan; states as data."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

from controller.agents.base import AgentState, PlanReviewer
from controller.config import GovernorConfig
from controller.decide import decide, default_agents
from controller.decisions import Alert, Plan, Proposal, ReplicaProposal
from controller.snapshot import Snapshot
from tests.controller.fleet import CanaryWorld, Loop, app_doc, make_config, snapshot, version

CONFIG = make_config(app_doc(scaling={"capacity_rps_per_replica": 20}))
SNAP = snapshot(
    version(name="v1", replicas=2, rate=60.0),
    version(name="v2", replicas=1, rate=0.0),
    weights={"v1": 100, "v2": 0},
)


class Fixed:
    """An agent that always proposes the same replica count and counts its calls."""

    name = "fixed"

    def propose(
        self, snapshot: Snapshot, state: AgentState, config: GovernorConfig
    ) -> tuple[Sequence[Proposal], AgentState]:
        """Five replicas of v1."""
        calls = state.get("calls", 0) + 1
        return [ReplicaProposal("embed", "v1", 5, self.name, "always five")], {"calls": calls}


class Echo:
    """A plan reviewer that remembers the planned replicas of v1 and alerts on them."""

    name = "echo"

    def review(
        self, snapshot: Snapshot, state: AgentState, config: GovernorConfig, plan: Plan
    ) -> tuple[Sequence[Alert], AgentState]:
        """One alert naming v1's planned count."""
        seen = plan.replicas_for("embed", "v1")
        return [Alert("embed", self.name, f"v1 planned at {seen}")], {"seen": seen}


def test_default_agents_run_rollout_then_scaling_then_the_budget_reviews_the_plan() -> None:
    names = [a.name for a in default_agents()]
    assert names == ["rollout", "scaling", "budget"]
    assert [isinstance(a, PlanReviewer) for a in default_agents()] == [False, False, True]


def test_decide_returns_the_plan_every_state_and_every_proposal() -> None:
    decision = decide(SNAP, {}, CONFIG)
    assert set(decision.states) == {"rollout", "scaling", "budget"}
    agents = {p.agent for p in decision.proposals}
    assert {"rollout", "scaling"} <= agents
    assert decision.plan.replicas_for("embed", "v1") == 5, (
        "60 req/s at 20 per replica x 70%: ceil(4.29)"
    )
    json.dumps(decision.states, allow_nan=False)


def test_decide_does_not_touch_its_inputs_and_is_deterministic() -> None:
    states: dict[str, Any] = decide(SNAP, {}, CONFIG).states
    frozen = copy.deepcopy(states)
    first = decide(SNAP, states, CONFIG)
    second = decide(SNAP, states, CONFIG)
    assert states == frozen
    assert first == second


def test_custom_agents_and_states_of_agents_not_run_are_carried_over() -> None:
    states = {"fixed": {"calls": 2}, "retired-agent": {"keep": True}}
    decision = decide(SNAP, states, CONFIG, agents=[Echo(), Fixed()])
    assert decision.states["fixed"] == {"calls": 3}
    assert decision.states["echo"] == {"seen": 5}, "reviewers read the plan after every proposer"
    assert decision.states["retired-agent"] == {"keep": True}
    assert decision.plan.replicas_for("embed", "v1") == 5
    assert [a.message for a in decision.plan.alerts if a.agent == "echo"] == ["v1 planned at 5"]


def test_states_survive_a_json_round_trip_every_tick() -> None:
    loop = Loop(make_config(app_doc(candidate="v2")), CanaryWorld())
    for _ in range(60):
        loop.tick()
        text = json.dumps(loop.states, allow_nan=False)
        assert json.loads(text) == loop.states
