"""One control tick's decision: agents propose, the arbiter resolves, reviewers annotate.

`decide` is pure: its only clock is `snapshot.now` and it does no I/O. The daemon, the
simulator and the tests all call exactly this function.

Order: the release ledger first settles releases, admits or refuses requested ones, and
gives the effective config (the file's, with released versions added and retired ones
removed: `controller/releases/ledger.py`); proposing agents (rollout, then scaling) then
run on the snapshot under that config; the arbiter merges
their proposals into one plan, fitting it to the budgets as its last stage; plan
reviewers (the budget agent) then read the plan and add alerts. Agents never see each
other, only the snapshot and, for reviewers, the plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from controller.agents.base import Agent, AgentState, PlanReviewer, json_copy
from controller.agents.budget import BudgetAgent
from controller.agents.rollout import RolloutAgent
from controller.agents.scaling import ScalingAgent
from controller.arbiter import arbitrate
from controller.config import GovernorConfig
from controller.decisions import Plan, Proposal
from controller.releases.ledger import LEDGER, ReleaseEvent
from controller.releases.ledger import step as release_step
from controller.snapshot import Snapshot

__all__ = ["AgentFailedError", "TickDecision", "decide", "default_agents"]


class AgentFailedError(Exception):
    """An agent raised while deciding; names it so its state can be rebuilt."""

    def __init__(self, agent: str, error: Exception) -> None:
        super().__init__(f"agent {agent} failed: {type(error).__name__}: {error}")
        self.agent = agent
        self.error = error


@dataclass(frozen=True)
class TickDecision:
    """The plan of one tick, every agent's next state, and everything proposed."""

    plan: Plan
    states: dict[str, AgentState]
    """Next state per agent name (states of agents not run are carried over)."""
    proposals: tuple[Proposal, ...]
    config: GovernorConfig | None = None
    """The effective config the agents decided under (None: the one given)."""
    releases: tuple[ReleaseEvent, ...] = ()
    """What happened to releases in this tick."""


def default_agents() -> tuple[Agent | PlanReviewer, ...]:
    """Rollout and scaling propose; the budget reviews the plan."""
    return (RolloutAgent(), ScalingAgent(), BudgetAgent())


def decide(
    snapshot: Snapshot,
    states: Mapping[str, AgentState],
    config: GovernorConfig,
    agents: Sequence[Agent | PlanReviewer] | None = None,
) -> TickDecision:
    """Run the agents on one snapshot and resolve their proposals into a plan."""
    chosen = default_agents() if agents is None else agents
    released = release_step(snapshot, states, config)
    config = released.config
    ran = {a.name for a in chosen}
    next_states = {k: json_copy(v) for k, v in states.items() if k not in ran}
    next_states.pop(LEDGER, None)
    if released.ledger:
        next_states[LEDGER] = released.ledger
    proposals: list[Proposal] = []
    for agent in chosen:
        if not isinstance(agent, PlanReviewer):
            state = json_copy(states.get(agent.name) or {})
            try:
                made, next_states[agent.name] = agent.propose(snapshot, state, config)
            except Exception as err:
                raise AgentFailedError(agent.name, err) from err
            proposals.extend(made)
    plan = arbitrate(snapshot, proposals, config)
    for agent in chosen:
        if isinstance(agent, PlanReviewer):
            state = json_copy(states.get(agent.name) or {})
            try:
                alerts, next_states[agent.name] = agent.review(snapshot, state, config, plan)
            except Exception as err:
                raise AgentFailedError(agent.name, err) from err
            plan = replace(plan, alerts=plan.alerts + tuple(alerts))
            proposals.extend(alerts)
    return TickDecision(
        plan=plan,
        states=next_states,
        proposals=tuple(proposals),
        config=config,
        releases=released.events,
    )
