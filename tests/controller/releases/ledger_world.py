"""Snapshots, states and commands for driving the release ledger by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from controller.config import GovernorConfig
from controller.releases.request import ReleaseRequest
from controller.snapshot import AppSnapshot, OperatorCommand, Snapshot, VersionSnapshot
from tests.controller.sample_config import per_version_config

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def config(**overrides: Any) -> GovernorConfig:
    """The per-version sample fleet, with a release policy that any test release meets."""
    overrides.setdefault("releases", {"allowed_sources": ["bundled:", "/models/"]})
    return per_version_config(**overrides)


def release(
    version: str = "v3", model: str = "/models/minilm-v3", **fields: Any
) -> OperatorCommand:
    """A `release` command as the CLI writes it."""
    request = ReleaseRequest(
        id=fields.pop("id", f"r-{version}"),
        app=fields.pop("app", "embed"),
        version=version,
        model=model,
        actor=fields.pop("actor", "ci@example.com"),
        requested_at=T0,
        meta=fields.pop("meta", {"owner": "search-team"}),
        scores=fields.pop("scores", {}),
    )
    return OperatorCommand("release", request.app, T0, args=request.to_json())


def snapshot(
    at: float = 0.0,
    weights: dict[str, int] | None = None,
    replicas: dict[str, int] | None = None,
    commands: tuple[OperatorCommand, ...] = (),
) -> Snapshot:
    """The fleet `at` seconds after T0: versions at `replicas`, the router at `weights`."""
    replicas = replicas or {"v1": 2, "v2": 0}
    versions = tuple(
        VersionSnapshot("embed", v, f"model_{v}", n, 0, n) for v, n in replicas.items()
    )
    return Snapshot(
        now=T0 + timedelta(seconds=at),
        apps=(AppSnapshot("embed", versions, weights or {"v1": 100, "v2": 0}),),
        commands=commands,
    )


def rollout(phase: str, candidate: str, stable: str = "v1", reason: str = "") -> dict[str, Any]:
    """The rollout agent's state with the embed canary at `phase`."""
    result = "pass" if phase == "promoted" else "fail"
    return {
        "apps": {
            "embed": {
                "phase": phase,
                "candidate": candidate,
                "stable": candidate if phase == "promoted" else stable,
                "config_stable": stable,
                "verdict": {"result": result, "reason": reason or f"{phase} by the test"},
                "phase_since": T0.isoformat(),
            }
        }
    }
