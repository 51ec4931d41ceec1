"""Agent state in a local JSON file with a schema, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.errors import PermanentError
from controller.state_store import STATE_SCHEMA_VERSION, PersistedState


class FileStateStore:
    """Keeps the agents' state in one JSON document at `path`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, dict[str, Any]]:
        """Agent states by agent name; empty when the file does not exist yet."""
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, RecursionError) as err:
            raise PermanentError(
                f"{self.path}: cannot read the saved state ({type(err).__name__}: {err}); "
                "fix it or move it away to start fresh"
            ) from err
        if not isinstance(doc, dict) or doc.get("schema_version") != STATE_SCHEMA_VERSION:
            raise PermanentError(
                f"{self.path}: saved state has schema_version "
                f"{doc.get('schema_version') if isinstance(doc, dict) else None!r}, "
                f"expected {STATE_SCHEMA_VERSION}; move the file away to start fresh"
            )
        agents = doc.get("agents")
        if not isinstance(agents, dict):
            raise PermanentError(f"{self.path}: saved state has no `agents` mapping")
        return agents

    def save(self, agents: dict[str, dict[str, Any]]) -> None:
        """Replace the saved state atomically (a crash never leaves half a file)."""
        doc: PersistedState = {
            "schema_version": STATE_SCHEMA_VERSION,
            "saved_at": datetime.now(UTC).isoformat(),
            "agents": agents,
        }
        # One compact document through json's C encoder: `json.dump` with an indent takes
        # the pure-Python encoder, several times slower on a fleet's state (`jq .` reads it).
        text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
