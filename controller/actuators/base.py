"""The contract of an actuator: make the world match a plan, idempotently."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from controller.decisions import Plan
from controller.snapshot import Snapshot


@dataclass(frozen=True)
class ApplyResult:
    """What one apply changed, or why it held back."""

    changes: tuple[str, ...] = ()
    held: str | None = None
    """Reason the actuator applied nothing (e.g. an upgrade in progress); None if it acted."""


class Actuator(Protocol):
    """Level-triggered: compares the plan with the observed state, not with its last apply."""

    def apply(self, plan: Plan, snapshot: Snapshot) -> ApplyResult:
        """Change the world so that it matches `plan`; applying the same plan twice is a no-op."""
        ...
