"""The KubeRay actuator: a plan becomes a `spec.serveConfigV2` patch (and scale API calls).

KubeRay applies a changed `serveConfigV2` in place (no new cluster). The config written
always carries every desired replica count (at least 1), so that KubeRay re-submitting it
(after an operator restart, or to a new cluster) never undoes a scaling decision; zero is
reached only through the dashboard's scale API, when one is configured.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import yaml

from controller.actuators.base import ApplyResult
from controller.actuators.serve_config import (
    check_serve_config_covers,
    deployed_weights,
    render_serve_config,
)
from controller.config import GovernorConfig
from controller.decisions import Plan
from controller.errors import PermanentError
from controller.snapshot import Snapshot
from kuberay.client import RayServiceClient
from kuberay.status import RayService, RayServiceStatus

log = logging.getLogger(__name__)


class Scaler(Protocol):
    """Sets one deployment's replica count at once (the dashboard's external-scaler API)."""

    def scale(self, app: str, deployment: str, replicas: int) -> None:
        """Set `app`/`deployment` to `replicas` replicas (0 allowed)."""
        ...


def hold_reason(name: str, status: RayServiceStatus) -> str | None:
    """Why the actuator must not touch the RayService now, or None."""
    if status.upgrade_in_progress:
        c = status.condition("UpgradeInProgress")
        why = f" ({c.reason})" if c and c.reason else ""
        return f"rayservice {name} reports UpgradeInProgress{why}: holding until it completes"
    pending = status.pending
    if pending.exists and not pending.serving:
        apps = ", ".join(f"{a.name}={a.status}" for a in pending.applications) or "no apps yet"
        return f"pending RayCluster {pending.cluster_name} is not ready ({apps}): holding"
    return None


def dump_serve_config(doc: dict[str, Any]) -> str:
    """The YAML text stored in `spec.serveConfigV2`."""
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def _deployments(app: dict[str, Any]) -> dict[str, dict[str, Any]]:
    entries = app.get("deployments") or []
    return {d["name"]: d for d in entries if isinstance(d, dict) and "name" in d}


def describe_changes(old: dict[str, Any], new: dict[str, Any], config: GovernorConfig) -> list[str]:
    """One line per governed value that differs between two Serve configs."""
    old_apps = {a.get("name"): a for a in old.get("applications") or []}
    new_apps = {a.get("name"): a for a in new.get("applications") or []}
    lines = []
    for app_cfg in config.applications:
        before, after = old_apps.get(app_cfg.name) or {}, new_apps.get(app_cfg.name) or {}
        if before.get("external_scaler_enabled") != after.get("external_scaler_enabled"):
            lines.append(f"serveConfigV2: {app_cfg.name} external_scaler_enabled -> true")
        old_deps, new_deps = _deployments(before), _deployments(after)
        for v in app_cfg.versions:
            was = (old_deps.get(v.deployment) or {}).get("num_replicas")
            now = (new_deps.get(v.deployment) or {}).get("num_replicas")
            if was != now:
                lines.append(
                    f"serveConfigV2: {app_cfg.name}/{v.deployment} num_replicas {was} -> {now}"
                )
        w_old = deployed_weights(before, app_cfg.router_deployment)
        w_new = deployed_weights(after, app_cfg.router_deployment)
        if w_old != w_new:
            lines.append(f"serveConfigV2: {app_cfg.name} weights {w_old} -> {w_new}")
    if not lines and old != new:
        lines.append("serveConfigV2: updated")
    return lines


class KubeRayActuator:
    """Makes a RayService's Serve config (and, optionally, live replica counts) match a plan."""

    def __init__(
        self,
        client: RayServiceClient,
        name: str,
        config: GovernorConfig,
        scaler: Scaler | None = None,
    ) -> None:
        self.client = client
        self.name = name
        self.config = config
        self.scaler = scaler

    def apply(self, plan: Plan, snapshot: Snapshot) -> ApplyResult:
        """Patch `serveConfigV2` to carry the plan; hold during upgrades; scale if configured."""
        held: list[str] = []
        changes: list[str] = []

        def render(current: RayService) -> str | None:
            held.clear()
            changes.clear()
            reason = hold_reason(current.name, current.status)
            if reason is not None:
                held.append(reason)
                return None
            base = current.serve_config()
            if not base.get("applications"):
                raise PermanentError(
                    f"rayservice {current.namespace}/{current.name}: spec.serveConfigV2 has no "
                    "applications; deploy the manifests from `governor render-manifests` first"
                )
            check_serve_config_covers(base, self.config)
            doc = render_serve_config(base, plan, self.config)
            if doc == base:
                return None
            changes.extend(describe_changes(base, doc, self.config))
            return dump_serve_config(doc)

        outcome = self.client.patch_serve_config(self.name, render)
        if held:
            return ApplyResult(held=held[0])
        if self.scaler is not None and not outcome.patched:
            # Right after a config change KubeRay has yet to submit it (and with it
            # external_scaler_enabled); the scale API waits for the next tick.
            changes.extend(self._scale(plan, snapshot))
        return ApplyResult(changes=tuple(changes))

    def _scale(self, plan: Plan, snapshot: Snapshot) -> list[str]:
        assert self.scaler is not None
        done = []
        for d in plan.replicas:
            try:
                deployment = self.config.app(d.app).version(d.version).deployment
            except KeyError:
                continue
            observed = snapshot.version(d.app, d.version)
            target = observed.target_replicas if observed is not None else None
            if target == d.replicas:
                continue
            self.scaler.scale(d.app, deployment, d.replicas)
            done.append(f"scale API: {d.app}/{deployment} {target} -> {d.replicas}")
        return done
