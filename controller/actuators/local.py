"""The local actuator: applies a plan to a Ray cluster through the dashboard's REST API."""

from __future__ import annotations

from typing import Any

from controller.actuators.base import ApplyResult
from controller.actuators.serve_config import render_serve_config, router_table
from controller.config import AppConfig, GovernorConfig
from controller.decisions import Plan
from controller.snapshot import Snapshot
from controller.transports.ray_dashboard import RayDashboardClient


def covers(desired: Any, deployed: Any) -> bool:
    """True when everything `desired` says is also what `deployed` says.

    Lists of named entries (deployments) are matched by name; keys Ray adds on its
    side are ignored, so the comparison is with what we asked for, not Ray's echo.
    """
    if type(desired) is type(deployed) and desired == deployed:
        return True
    if isinstance(desired, dict):
        if not isinstance(deployed, dict):
            return False
        return all(
            covers(v, deployed[k]) if k in deployed else v is None for k, v in desired.items()
        )
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


def _by_name(entries: Any) -> dict[str, Any]:
    """Named entries of a list (deployments) by name; the first of a repeated name wins."""
    out: dict[str, Any] = {}
    for e in entries if isinstance(entries, list) else ():
        if isinstance(e, dict) and "name" in e:
            out.setdefault(e["name"], e)
    return out


def _names(apps: list[str], shown: int = 10) -> str:
    head = ", ".join(sorted(apps)[:shown])
    return head if len(apps) <= shown else f"{head} and {len(apps) - shown} more"


class LocalActuator:
    """Writes the Serve config (weights, batching) and sets replica counts via the scale API.

    Replica counts change through the scale API alone, scale-downs first, so that a
    plan that fits a budget never runs above it on the way. The config is re-submitted
    only when something else in it changed; it then carries the desired counts too,
    because Ray sets a deployment back to the config's `num_replicas` whenever a
    submission changes its entry, and a count planned at zero (the config says 1) is
    scaled to zero again right after.
    """

    def __init__(
        self, config: GovernorConfig, dashboard: RayDashboardClient, base: dict[str, Any]
    ) -> None:
        self.config = config
        self.dashboard = dashboard
        self.base = base

    def use_config(self, config: GovernorConfig) -> None:
        """Apply plans over the versions `config` lists from now on."""
        self.config = config

    def apply(self, plan: Plan, snapshot: Snapshot) -> ApplyResult:
        """Make the cluster match `plan`, writing only what differs from what is deployed.

        One scale call per deployment whose count differs. Ray's REST API takes the Serve
        config only whole (`PUT /api/serve/applications/` is declarative: an application
        left out of it is deleted), so a change to one application's own config (weights,
        batching) submits every application, and a tick in which no application's own
        config changed submits nothing.
        """
        deployed_apps = self.dashboard.get_applications().get("applications") or {}
        desired_doc = render_serve_config(self.base, plan, self.config)
        desired_apps = _by_name(desired_doc.get("applications"))
        changes: list[str] = []
        current: dict[tuple[str, str], int | None] = {}
        wanted: dict[tuple[str, str], int] = {}
        stale: list[str] = []
        for app_cfg in self.config.applications:
            counted: dict[str, set[str]] = {}
            for v in app_cfg.versions:
                serve_app = app_cfg.serve_app(v.name)
                counted.setdefault(serve_app, set()).add(v.deployment)
                want = plan.replicas_for(app_cfg.name, v.name)
                if want is not None:
                    deployments = (deployed_apps.get(serve_app) or {}).get("deployments") or {}
                    key = (serve_app, v.deployment)
                    wanted[key] = want
                    current[key] = (deployments.get(v.deployment) or {}).get("target_num_replicas")
            for serve_app in app_cfg.serve_apps:
                app_doc = desired_apps.get(serve_app)
                deployed = deployed_apps.get(serve_app) or {}
                if app_doc is not None and not covers(
                    _without_version_counts(app_doc, counted.get(serve_app, set())),
                    deployed.get("deployed_app_config"),
                ):
                    stale.append(serve_app)
            stale += _retired(app_cfg, desired_apps, deployed_apps)
        for key, want in wanted.items():
            have = current[key]
            if have is not None and want < have:
                self._scale(key, have, want, changes)
                current[key] = want
        if stale:
            reset = _reset_by_submission(wanted, set(stale), desired_apps, deployed_apps)
            self.dashboard.put_applications(desired_doc)
            changes.append(f"applied the Serve config (changed: {_names(stale)})")
            for key in reset:
                current[key] = max(1, wanted[key])
        for key, want in wanted.items():
            if current[key] != want:
                self._scale(key, current[key], want, changes)
        return ApplyResult(changes=tuple(changes))

    def _scale(self, key: tuple[str, str], have: int | None, want: int, changes: list[str]) -> None:
        app, deployment = key
        self.dashboard.scale(app, deployment, want)
        changes.append(f"scaled {app}/{deployment}: {have} -> {want}")


def _retired(
    app_cfg: AppConfig, desired_apps: dict[str, Any], deployed_apps: dict[str, Any]
) -> list[str]:
    """Version applications the deployed router names that the desired config leaves out."""
    deployed_router = (deployed_apps.get(app_cfg.name) or {}).get("deployed_app_config") or {}
    named = router_table(deployed_router, app_cfg.router_deployment).values()
    return sorted(a for a in set(named) if a in deployed_apps and a not in desired_apps)


def _reset_by_submission(
    wanted: dict[tuple[str, str], int],
    stale: set[str],
    desired_apps: dict[str, Any],
    deployed_apps: dict[str, Any],
) -> list[tuple[str, str]]:
    """Deployments whose count a submission sets back to the config's `num_replicas`.

    Ray redeploys a deployment whose entry in the submitted config differs from the one
    it last received, in any application: all of a changed application's, and in others
    those whose count was changed through the scale API since the last submission.
    """
    entries: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    reset = []
    for key in wanted:
        app, deployment = key
        if app in stale:
            reset.append(key)
            continue
        if app not in entries:
            deployed_config = (deployed_apps.get(app) or {}).get("deployed_app_config") or {}
            entries[app] = (
                _by_name((desired_apps.get(app) or {}).get("deployments")),
                _by_name(deployed_config.get("deployments")),
            )
        desired, deployed = entries[app]
        if not covers(desired.get(deployment), deployed.get(deployment)):
            reset.append(key)
    return reset
