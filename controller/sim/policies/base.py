"""The contract between the fleet simulator and a scaling policy under test."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from controller.config import AppConfig
from controller.sim.observe import FleetStatus, Observations, PipelineSettings

PolicyState = dict[str, Any]
"""JSON-able state a policy hands back to itself at its next tick."""


@dataclass(frozen=True)
class PolicyView:
    """Everything a policy may read at one tick: observations as a pipeline has them."""

    t: float
    """Simulated seconds since the trace began."""
    start: datetime
    """Wall-clock time of t = 0."""
    app: AppConfig
    obs: Observations
    statuses: dict[str, FleetStatus]
    weights: dict[str, int]
    pipeline: PipelineSettings
    startup_s: dict[str, float | None]
    """Measured start-up time per version (None until a start was observed)."""


@dataclass(frozen=True)
class Action:
    """What a policy wants: replicas per version and, optionally, new traffic weights."""

    replicas: dict[str, int]
    weights: dict[str, int] | None = None
    note: str = ""


class Policy(Protocol):
    """A scaling policy: a pure function of the view and its own state, run every interval."""

    @property
    def name(self) -> str:
        """The policy's name in reports."""
        ...

    @property
    def interval_s(self) -> float:
        """Seconds between two decisions."""
        ...

    def initial_replicas(self, app: AppConfig) -> dict[str, int]:
        """Replicas per version running when the trace begins."""
        ...

    def decide(self, view: PolicyView, state: PolicyState) -> tuple[Action, PolicyState]:
        """The action for this tick and the policy's next state."""
        ...
