"""The target interface: everything the daemon talks to, for one kind of deployment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from controller.actuators.base import Actuator
from controller.clock import Clock
from controller.config import GovernorConfig
from controller.signals.base import SignalSource
from controller.signals.commands import Inbox
from controller.state_store import StateStore


class Target(Protocol):
    """Where the daemon observes, acts and keeps state, and whether it may act now."""

    @property
    def source(self) -> SignalSource:
        """Builds each tick's snapshot."""
        ...

    @property
    def actuator(self) -> Actuator:
        """Applies a plan."""
        ...

    @property
    def store(self) -> StateStore:
        """Keeps the agents' state across restarts."""
        ...

    @property
    def inbox(self) -> Inbox:
        """Where operator commands wait for the daemon."""
        ...

    def is_leader(self) -> bool:
        """Whether this daemon may act and write state now."""
        ...

    def close(self) -> None:
        """Release what the target opened (connections, a held lease)."""
        ...


TargetBuilder = Callable[[GovernorConfig, Clock, "str | Path | None"], Target]
"""Builds the target of one `target:` kind from the daemon's config."""


def close_all(closers: list[object]) -> None:
    """Call `close()` on each object that has one, in order."""
    for c in closers:
        close = getattr(c, "close", None)
        if callable(close):
            close()
