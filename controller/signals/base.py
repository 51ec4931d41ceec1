"""The contract of a signal source."""

from __future__ import annotations

from typing import Protocol

from controller.snapshot import Snapshot


class SignalSource(Protocol):
    """Reads the world into one frozen Snapshot; what it cannot read it leaves missing."""

    def observe(self) -> Snapshot:
        """One snapshot of the fleet, now."""
        ...
