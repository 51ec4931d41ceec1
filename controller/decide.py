"""One control tick's decision: agents propose, the arbiter resolves, states move on.

`decide` is pure: its only clock is `snapshot.now` and it does no I/O. The daemon, the
simulator and the tests all call exactly this function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from controller.agents.base import Agent, AgentState
from controller.agents.budget import BudgetAgent
from controller.agents.rollout import RolloutAgent, current_stable, json_copy, rollout_view
from controller.agents.scaling import ScalingAgent
from controller.arbiter import arbitrate
from controller.config import GovernorConfig
from controller.decisions import Plan, Proposal
from controller.snapshot import Snapshot

__all__ = [
    "ReviewingAgent",
    "TickDecision",
    "current_stable",
    "decide",
    "default_agents",
    "rollout_view",
]


@runtime_checkable
class ReviewingAgent(Protocol):
    """An agent that also sees what the agents before it proposed (e.g. the budget)."""

    name: str

    def review(
        self,
        snapshot: Snapshot,
        state: AgentState,
        config: GovernorConfig,
        proposals: Sequence[Proposal],
    ) -> tuple[Sequence[Proposal], AgentState]:
        """Return proposals in answer to the earlier ones, and the agent's next state."""
        ...


@dataclass(frozen=True)
class TickDecision:
    """The plan of one tick, every agent's next state, and everything proposed."""

    plan: Plan
    states: dict[str, AgentState]
    """Next state per agent name (states of agents not run are carried over)."""
    proposals: tuple[Proposal, ...]


def default_agents() -> tuple[Agent, ...]:
    """Rollout, scaling, then budget (which reviews the other two)."""
    return (RolloutAgent(), ScalingAgent(), BudgetAgent())


def decide(
    snapshot: Snapshot,
    states: Mapping[str, AgentState],
    config: GovernorConfig,
    agents: Sequence[Agent] | None = None,
) -> TickDecision:
    """Run the agents on one snapshot and resolve their proposals into a plan."""
    proposals: list[Proposal] = []
    next_states: dict[str, AgentState] = {k: json_copy(v) for k, v in states.items()}
    for agent in default_agents() if agents is None else agents:
        state = json_copy(states.get(agent.name) or {})
        if isinstance(agent, ReviewingAgent):
            made, next_state = agent.review(snapshot, state, config, tuple(proposals))
        else:
            made, next_state = agent.propose(snapshot, state, config)
        proposals.extend(made)
        next_states[agent.name] = next_state
    plan = arbitrate(snapshot, proposals, config)
    return TickDecision(plan=plan, states=next_states, proposals=tuple(proposals))
