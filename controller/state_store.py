"""Where agent state survives a restart: a versioned document with a schema."""

from __future__ import annotations

from typing import Any, Protocol, TypedDict

STATE_SCHEMA_VERSION = 1


class PersistedState(TypedDict):
    """The persisted document: agent states by agent name, times in UTC ISO-8601."""

    schema_version: int
    saved_at: str
    agents: dict[str, dict[str, Any]]


class StateStore(Protocol):
    """Loads and saves the agents' state (a file locally, an annotation on a cluster)."""

    def load(self) -> dict[str, dict[str, Any]]:
        """Agent states by agent name; empty when nothing was saved yet."""
        ...

    def save(self, agents: dict[str, dict[str, Any]]) -> None:
        """Persist agent states by agent name."""
        ...
