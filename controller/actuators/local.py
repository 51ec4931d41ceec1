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


class LocalActuator:
    """Writes the Serve config (weights, batching, replica counts) and scales via the API."""

    def __init__(
        self, config: GovernorConfig, dashboard: RayDashboardClient, base: dict[str, Any]
    ) -> None:
        self.config = config
        self.dashboard = dashboard
        self.base = base

    def apply(self, plan: Plan, snapshot: Snapshot) -> ApplyResult:
        """Make the cluster match `plan`; does nothing where it already does."""
        status = self.dashboard.get_applications()
        deployed_apps = status.get("applications") or {}
        desired = render_serve_config(self.base, plan, self.config)
        changes: list[str] = []
        stale = [
            app["name"]
            for app in desired["applications"]
            if not covers(app, (deployed_apps.get(app["name"]) or {}).get("deployed_app_config"))
        ]
        if stale:
            self.dashboard.put_applications(desired)
            changes.append(f"applied the Serve config (changed: {', '.join(sorted(stale))})")
        for app_cfg in self.config.applications:
            deployments = (deployed_apps.get(app_cfg.name) or {}).get("deployments") or {}
            for v in app_cfg.versions:
                want = plan.replicas_for(app_cfg.name, v.name)
                if want is None:
                    continue
                observed = (deployments.get(v.deployment) or {}).get("target_num_replicas")
                # After a fresh PUT the config already carries every count above zero.
                current = max(1, want) if app_cfg.name in stale else observed
                if current != want:
                    self.dashboard.scale(app_cfg.name, v.deployment, want)
                    changes.append(f"scaled {app_cfg.name}/{v.deployment}: {observed} -> {want}")
        return ApplyResult(changes=tuple(changes))
