"""Replica counts and measured start-up times from Serve's deployment status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

_STARTING = {"STARTING", "UPDATING", "RECOVERING", "PENDING_MIGRATION"}


def replica_counts(deployment_status: dict[str, Any]) -> tuple[int, int]:
    """(running, starting) replicas of one deployment's status entry."""
    replicas = deployment_status.get("replicas") or []
    running = sum(1 for r in replicas if r.get("state") == "RUNNING")
    starting = sum(1 for r in replicas if r.get("state") in _STARTING)
    return running, starting


class ReplicaStartTracker:
    """Measures how long replicas take from actor start to RUNNING (the model load)."""

    def __init__(self, smoothing: float = 0.5) -> None:
        self.smoothing = smoothing
        self._seen_starting: set[str] = set()
        self._measured: set[str] = set()
        self._startup: dict[tuple[str, str], float] = {}

    def observe(self, status: dict[str, Any], now: datetime) -> None:
        """Record replicas that became RUNNING since they were seen starting."""
        present: set[str] = set()
        for app_name, app in (status.get("applications") or {}).items():
            for dep_name, dep in (app.get("deployments") or {}).items():
                for r in dep.get("replicas") or []:
                    rid = str(r.get("replica_id") or r.get("actor_id") or "")
                    if not rid:
                        continue
                    present.add(rid)
                    if rid in self._measured:
                        continue
                    state = r.get("state")
                    if state in _STARTING:
                        self._seen_starting.add(rid)
                    elif state == "RUNNING" and rid in self._seen_starting:
                        started = r.get("start_time_s")
                        if isinstance(started, int | float) and started > 0:
                            took = max(0.0, now.timestamp() - float(started))
                            self._record((app_name, dep_name), took)
                        self._measured.add(rid)
                        self._seen_starting.discard(rid)
        # Forget replicas that are gone: memory follows the fleet, not every replica it ran.
        self._measured &= present
        self._seen_starting &= present

    def _record(self, key: tuple[str, str], took: float) -> None:
        old = self._startup.get(key)
        self._startup[key] = took if old is None else old + self.smoothing * (took - old)

    def startup_s(self, app: str, deployment: str) -> float | None:
        """Smoothed measured start-up time of a deployment's replicas, if any was seen."""
        return self._startup.get((app, deployment))
