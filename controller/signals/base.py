"""The contract of a signal source."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from controller.config import GovernorConfig
from controller.snapshot import Snapshot


class SignalSource(Protocol):
    """Reads the world into one frozen Snapshot; what it cannot read it leaves missing."""

    def observe(self) -> Snapshot:
        """One snapshot of the fleet, now."""
        ...


@runtime_checkable
class FollowsConfig(Protocol):
    """A source or actuator that works on whatever versions the effective config lists."""

    def use_config(self, config: GovernorConfig) -> None:
        """Work with `config` from now on (releases add and retire versions)."""
        ...
