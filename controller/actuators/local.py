"""The local actuator: applies a plan to a Ray cluster through the dashboard's REST API."""

from __future__ import annotations

from typing import Any

from controller.actuators.base import ApplyResult
from controller.actuators.serve_config import render_serve_config
from controller.config import GovernorConfig
from controller.decisions import Plan
from controller.snapshot import Snapshot
from controller.transports.ray_dashboard import RayDashboardClient


def covers(desired: Any, deployed: Any) -> bool:
    """True when everything `desired` says is also what `deployed` says.

    Lists of named entries (deployments) are matched by name; keys Ray adds on its
    side are ignored, so the comparison is with what we asked for, not Ray's echo.
    """
    if isinstance(desired, dict):
        if not isinstance(deployed, dict):
            return False
        return all(k in deployed and covers(v, deployed[k]) for k, v in desired.items())
    if isinstance(desired, list) and all(isinstance(x, dict) and "name" in x for x in desired):
        if not isinstance(deployed, list):
            return False
        by_name = {x.get("name"): x for x in deployed if isinstance(x, dict)}
        return all(covers(x, by_name.get(x["name"])) for x in desired)
    if isinstance(desired, int | float) and isinstance(deployed, int | float):
        return float(desired) == float(deployed)
    return bool(desired == deployed)


def _without_version_counts(doc: dict[str, Any], deployments: set[str]) -> dict[str, Any]:
    """An application document without the replica counts the scale API manages."""
    out = dict(doc)
    out["deployments"] = [
        {k: v for k, v in d.items() if not (k == "num_replicas" and d.get("name") in deployments)}
        for d in doc.get("deployments", [])
    ]
    return out


class LocalActuator:
    """Writes the Serve config (weights, batching) and sets replica counts via the scale API.

    Replica counts change through the scale API alone, scale-downs first, so that a
    plan that fits a budget never runs above it on the way. The config is re-submitted
    only when something else in it changed; it then carries the desired counts too,
    because Ray resets counts to the config's `num_replicas` on every submission.
    """

    def __init__(
        self, config: GovernorConfig, dashboard: RayDashboardClient, base: dict[str, Any]
    ) -> None:
        self.config = config
        self.dashboard = dashboard
        self.base = base

    def apply(self, plan: Plan, snapshot: Snapshot) -> ApplyResult:
        """Make the cluster match `plan`; does nothing where it already does."""
        deployed_apps = self.dashboard.get_applications().get("applications") or {}
        desired_doc = render_serve_config(self.base, plan, self.config)
        changes: list[str] = []
        current: dict[tuple[str, str], int | None] = {}
        wanted: dict[tuple[str, str], int] = {}
        stale: list[str] = []
        for app_cfg in self.config.applications:
            deployed = deployed_apps.get(app_cfg.name) or {}
            deployments = deployed.get("deployments") or {}
            for v in app_cfg.versions:
                want = plan.replicas_for(app_cfg.name, v.name)
                if want is not None:
                    key = (app_cfg.name, v.deployment)
                    wanted[key] = want
                    current[key] = (deployments.get(v.deployment) or {}).get("target_num_replicas")
            app_doc = next(
                (a for a in desired_doc["applications"] if a.get("name") == app_cfg.name), None
            )
            counted = {v.deployment for v in app_cfg.versions}
            if app_doc is not None and not covers(
                _without_version_counts(app_doc, counted), deployed.get("deployed_app_config")
            ):
                stale.append(app_cfg.name)
        for key, want in wanted.items():
            have = current[key]
            if have is not None and want < have:
                self._scale(key, have, want, changes)
                current[key] = want
        if stale:
            self.dashboard.put_applications(desired_doc)
            changes.append(f"applied the Serve config (changed: {', '.join(sorted(stale))})")
            for key, want in wanted.items():
                if key[0] in stale:
                    current[key] = max(1, want)
        for key, want in wanted.items():
            if current[key] != want:
                self._scale(key, current[key], want, changes)
        return ApplyResult(changes=tuple(changes))

    def _scale(self, key: tuple[str, str], have: int | None, want: int, changes: list[str]) -> None:
        app, deployment = key
        self.dashboard.scale(app, deployment, want)
        changes.append(f"scaled {app}/{deployment}: {have} -> {want}")
