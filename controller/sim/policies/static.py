"""A fixed fleet: the same replicas from the first request to the last."""

from __future__ import annotations

from dataclasses import dataclass

from controller.config import AppConfig
from controller.sim.policies.base import Action, PolicyState, PolicyView


@dataclass(frozen=True)
class StaticPolicy:
    """Keeps `replicas` replicas of the stable version and never changes them."""

    replicas: int
    name: str = "static"
    interval_s: float = 60.0

    def initial_replicas(self, app: AppConfig) -> dict[str, int]:
        """`replicas` of the stable version, none of the others."""
        return {
            v.name: (self.replicas if v.name == app.stable_version else 0) for v in app.versions
        }

    def decide(self, view: PolicyView, state: PolicyState) -> tuple[Action, PolicyState]:
        """Always the same count."""
        return Action(replicas=self.initial_replicas(view.app)), state
