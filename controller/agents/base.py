"""The contracts agents keep: pure functions of snapshot, their own state and config."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from controller.config import GovernorConfig
from controller.decisions import Alert, Plan, Proposal
from controller.snapshot import Snapshot

AgentState = dict[str, Any]
"""JSON-able state an agent hands back to itself at the next tick."""


class Agent(Protocol):
    """Proposes changes; never does I/O and never reads a clock other than `snapshot.now`."""

    name: str

    def propose(
        self, snapshot: Snapshot, state: AgentState, config: GovernorConfig
    ) -> tuple[Sequence[Proposal], AgentState]:
        """Return proposals for this tick and the agent's next state."""
        ...


@runtime_checkable
class PlanReviewer(Protocol):
    """Reads the arbiter's plan and adds alerts (e.g. the budget naming SLOs at risk)."""

    name: str

    def review(
        self, snapshot: Snapshot, state: AgentState, config: GovernorConfig, plan: Plan
    ) -> tuple[Sequence[Alert], AgentState]:
        """Return alerts about the plan and the reviewer's next state."""
        ...


def json_copy(value: Any) -> Any:
    """A deep copy of JSON-able data (dicts and lists copied, scalars shared)."""
    # Scalars are copied inline: states hold long lists of numbers (demand histories).
    if isinstance(value, dict):
        return {k: json_copy(v) if isinstance(v, _CONTAINERS) else v for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) if isinstance(v, _CONTAINERS) else v for v in value]
    return value


_CONTAINERS = (dict, list)
