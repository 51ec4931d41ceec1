"""The contract every agent keeps: a pure function of snapshot, its own state and config."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from controller.config import GovernorConfig
from controller.decisions import Proposal
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
