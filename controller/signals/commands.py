"""Operator commands (e.g. abort a rollout) dropped as files beside the daemon's state."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from controller.snapshot import OperatorCommand

ACTIONS = ("abort-rollout",)


class CommandInbox:
    """A folder of pending commands: the CLI writes one file per command, the daemon reads."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @classmethod
    def beside_state(cls, state_path: str | Path) -> CommandInbox:
        """The inbox that belongs to the daemon keeping its state at `state_path`."""
        return cls(Path(state_path).parent / "commands")

    def submit(self, action: str, app: str) -> Path:
        """Queue a command for the daemon's next tick; returns the file written."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
        self.folder.mkdir(parents=True, exist_ok=True)
        issued = datetime.now(UTC)
        path = self.folder / f"{issued.strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.json"
        path.write_text(json.dumps({"action": action, "app": app, "issued_at": issued.isoformat()}))
        return path

    def pending(self) -> list[tuple[Path, OperatorCommand]]:
        """Commands not yet handled, oldest first; unreadable files are skipped."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                doc = json.loads(path.read_text())
                cmd = OperatorCommand(
                    action=str(doc["action"]),
                    app=str(doc["app"]),
                    issued_at=datetime.fromisoformat(doc["issued_at"]),
                )
            except (OSError, ValueError, KeyError):
                continue
            found.append((path, cmd))
        return found

    def done(self, paths: list[Path]) -> None:
        """Remove handled commands."""
        for p in paths:
            p.unlink(missing_ok=True)
