"""Operator commands (abort a rollout, release a version) dropped as files beside the state."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from controller.snapshot import OperatorCommand

ACTIONS = ("abort-rollout", "release")


def command_document(action: str, app: str, args: Mapping[str, Any] | None = None) -> str:
    """The JSON text of one command, as every inbox stores it."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    doc: dict[str, Any] = {"action": action, "app": app, "issued_at": datetime.now(UTC).isoformat()}
    if args:
        doc["args"] = dict(args)
    return json.dumps(doc)


def parse_command(text: str) -> OperatorCommand:
    """A command from its JSON text; ValueError or KeyError when it is not one."""
    doc = json.loads(text)
    args = doc.get("args") or {}
    if not isinstance(args, dict):
        raise ValueError("args must be a mapping")
    return OperatorCommand(
        action=str(doc["action"]),
        app=str(doc["app"]),
        issued_at=datetime.fromisoformat(doc["issued_at"]),
        args=args,
    )


def command_name() -> str:
    """A name that sorts commands by the time they were issued and never collides."""
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.json"


class Inbox(Protocol):
    """Where operator commands wait for the daemon; the daemon is their only reader."""

    def submit(self, action: str, app: str, args: Mapping[str, Any] | None = None) -> str:
        """Queue a command for the daemon's next tick; returns where it was written."""
        ...

    def pending(self) -> list[tuple[Any, OperatorCommand]]:
        """Commands not yet handled, oldest first, each with the handle `done` takes."""
        ...

    def done(self, handles: list[Any]) -> None:
        """Forget handled commands."""
        ...


class CommandInbox:
    """A folder of pending commands: the CLI writes one file per command, the daemon reads."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @classmethod
    def beside_state(cls, state_path: str | Path) -> CommandInbox:
        """The inbox that belongs to the daemon keeping its state at `state_path`."""
        return cls(Path(state_path).parent / "commands")

    def submit(self, action: str, app: str, args: Mapping[str, Any] | None = None) -> str:
        """Queue a command for the daemon's next tick; returns the file written."""
        text = command_document(action, app, args)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / command_name()
        # Written whole, then renamed: the daemon never reads half a command.
        partial = path.with_suffix(".part")
        partial.write_text(text)
        os.replace(partial, path)
        return str(path)

    def pending(self) -> list[tuple[Path, OperatorCommand]]:
        """Commands not yet handled, oldest first; unreadable files are skipped."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                cmd = parse_command(path.read_text())
            except (OSError, ValueError, KeyError, TypeError):
                continue
            found.append((path, cmd))
        return found

    def done(self, paths: list[Any]) -> None:
        """Remove handled commands."""
        for p in paths:
            p.unlink(missing_ok=True)
