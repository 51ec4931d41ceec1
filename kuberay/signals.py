"""The replica and status part of the snapshot: the RayServices, and their heads' Serve API.

Latency, rates and errors come from Prometheus (a separate source merges them in); this
source says what KubeRay and Serve report about applications, replicas and weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from controller.actuators.serve_config import deployed_weights
from controller.clock import Clock
from controller.config import AppConfig, GovernorConfig
from controller.errors import GovernorError
from controller.signals.replicas import ReplicaStartTracker, replica_counts
from controller.snapshot import AppSnapshot, ClusterSnapshot, Snapshot, VersionSnapshot
from kuberay.shards import RayServiceShards, Shard
from kuberay.status import DEPLOYMENT_HEALTHY, ClusterStatus


class ServeStatusReader(Protocol):
    """Reads Serve's status document (`GET /api/serve/applications/` on the head)."""

    def get_applications(self) -> dict[str, Any]:
        """The Serve status document."""
        ...


def parse_quantity(value: str | None) -> float | None:
    """A Kubernetes CPU/GPU quantity ("4", "500m", "2.5") as a number; None if unknown."""
    if not value:
        return None
    text = value.strip()
    try:
        if text.endswith("m"):
            return float(text[:-1]) / 1000
        return float(text)
    except ValueError:
        return None


def cluster_snapshot(active: ClusterStatus) -> ClusterSnapshot:
    """Capacity of the active RayCluster as KubeRay reports it."""
    return ClusterSnapshot(
        total_cpus=parse_quantity(active.desired_cpu),
        total_gpus=parse_quantity(active.desired_gpu),
    )


def _total(values: list[float | None]) -> float | None:
    # One shard of unknown size makes the fleet's size unknown, not smaller.
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def fleet_capacity(shards: Sequence[Shard]) -> ClusterSnapshot:
    """Capacity of every shard's active RayCluster together."""
    parts = [cluster_snapshot(s.service.status.active) for s in shards]
    return ClusterSnapshot(
        total_cpus=_total([p.total_cpus for p in parts]),
        total_gpus=_total([p.total_gpus for p in parts]),
    )


def _num_replicas(app_doc: dict[str, Any] | None, deployment: str) -> int | None:
    for d in (app_doc or {}).get("deployments") or []:
        if isinstance(d, dict) and d.get("name") == deployment:
            n = d.get("num_replicas")
            return n if isinstance(n, int) and not isinstance(n, bool) else None
    return None


class RayServiceSource:
    """One Snapshot per call: application status, replicas and weights of the fleet's shards."""

    def __init__(
        self,
        shards: RayServiceShards,
        config: GovernorConfig,
        clock: Clock,
        serve_status: Callable[[str], ServeStatusReader] | None = None,
    ) -> None:
        self.shards = shards
        self.config = config
        self.clock = clock
        self.serve_status = serve_status
        """Serve's status reader of one shard's head, by RayService name."""
        self.starts = ReplicaStartTracker()

    def use_config(self, config: GovernorConfig) -> None:
        """Work with the versions `config` lists from now on."""
        self.config = config

    def observe(self) -> Snapshot:
        """Read every shard (and Serve's status, if reachable); what fails stays missing."""
        now = self.clock.now()
        index = self.shards.read()
        problems = [f"{u.what}: {u.error}" for u in index.unread]
        for name, homes in sorted(index.duplicates.items()):
            problems.append(f"application {name} is in several rayservices {list(homes)}")
        serve: dict[str, dict[str, Any]] = {}
        if self.serve_status is not None:
            governed = {a.name for a in self.config.applications}
            for s in index.shards:
                if governed.isdisjoint(s.apps):
                    continue
                try:
                    doc = self.serve_status(s.name).get_applications()
                    self.starts.observe(doc, now)
                    serve[s.name] = doc
                except GovernorError as err:
                    problems.append(f"serve status of {s.name}: {err}")
        apps = []
        for app in self.config.applications:
            shard = None if app.name in index.duplicates else index.shard_of(app.name)
            if shard is None and not index.unread and app.name not in index.duplicates:
                problems.append(f"application {app.name} is in none of {self.shards.describe()}")
            apps.append(self._app(app, shard, serve.get(shard.name) if shard else None))
        return Snapshot(
            now=now,
            apps=tuple(apps),
            cluster=fleet_capacity(index.shards) if index.shards else ClusterSnapshot(),
            window_s=self.config.window_s,
            problems=tuple(problems),
        )

    def _app(
        self, app: AppConfig, shard: Shard | None, serve: dict[str, Any] | None
    ) -> AppSnapshot:
        if shard is None:
            return AppSnapshot(
                name=app.name,
                versions=tuple(
                    VersionSnapshot(app.name, v.name, v.deployment) for v in app.versions
                ),
            )
        status = shard.service.status.active.application(app.name)
        app_doc = shard.apps.get(app.name)
        serve_app = ((serve or {}).get("applications") or {}).get(app.name) if serve else None
        weights = None
        if serve_app is not None:
            weights = deployed_weights(
                serve_app.get("deployed_app_config") or {}, app.router_deployment
            )
        elif app_doc is not None:
            weights = deployed_weights(app_doc, app.router_deployment)
        versions = []
        held_apps = ((serve or {}).get("applications") or {}) if serve else {}
        for v in app.versions:
            held_by = app.serve_app(v.name)
            running = starting = target = None
            if serve is not None:
                held = held_apps.get(held_by)
                dep = ((held or {}).get("deployments") or {}).get(v.deployment)
                if dep is not None:
                    running, starting = replica_counts(dep)
                    raw = dep.get("target_num_replicas")
                    target = int(raw) if isinstance(raw, int | float) else None
                else:
                    # Serve answered and the deployment is not there: it has no replicas.
                    running, starting, target = 0, 0, 0
            else:
                target = _num_replicas(shard.apps.get(held_by), v.deployment)
                held_status = shard.service.status.active.application(held_by)
                dep_status = held_status.deployment(v.deployment) if held_status else None
                # Serve calls a deployment HEALTHY only once its target replicas all run.
                if dep_status is not None and dep_status.status == DEPLOYMENT_HEALTHY:
                    running, starting = target, 0
            versions.append(
                VersionSnapshot(
                    app=app.name,
                    version=v.name,
                    deployment=v.deployment,
                    running_replicas=running,
                    starting_replicas=starting,
                    target_replicas=target,
                    startup_s=self.starts.startup_s(held_by, v.deployment),
                )
            )
        app_status = status.status if status is not None else None
        if serve_app is not None:
            app_status = serve_app.get("status")
        return AppSnapshot(
            name=app.name, versions=tuple(versions), weights=weights, status=app_status
        )
