"""Structured events: what changed and why, one JSON object per line."""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("governor")


class EventLog:
    """Appends events to a JSON-lines file (optional) and keeps the latest in memory."""

    def __init__(self, path: str | Path | None = None, keep: int = 200) -> None:
        self.path = Path(path) if path else None
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self._lock = threading.Lock()
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def logged(self, kind: str, *keys: str) -> set[tuple[Any, ...]]:
        """The `keys` of every event of `kind` in the log file (empty without a file)."""
        found: set[tuple[Any, ...]] = set()
        if self.path is None or not self.path.exists():
            return found
        with self.path.open() as f:
            for line in f:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash
                if isinstance(event, dict) and event.get("kind") == kind:
                    found.add(tuple(event.get(k) for k in keys))
        return found

    def emit(self, at: datetime, kind: str, message: str, **fields: Any) -> None:
        """Record one event."""
        event = {"at": at.isoformat(), "kind": kind, "message": message, **fields}
        with self._lock:
            self.recent.append(event)
            if self.path:
                with self.path.open("a") as f:
                    f.write(json.dumps(event, default=str) + "\n")
        level = logging.WARNING if kind in ("error", "alert") else logging.INFO
        log.log(level, "%s: %s", kind, message)
