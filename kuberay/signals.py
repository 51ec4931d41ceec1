"""The replica and status part of the snapshot: the RayService, and the head's Serve API.

Latency, rates and errors come from Prometheus (a separate source merges them in); this
source says what KubeRay and Serve report about applications, replicas and weights.
"""

from __future__ import annotations

from typing import Any, Protocol

from controller.actuators.serve_config import deployed_weights
from controller.clock import Clock
from controller.config import AppConfig, GovernorConfig
from controller.errors import GovernorError
from controller.signals.replicas import ReplicaStartTracker, replica_counts
from controller.snapshot import AppSnapshot, ClusterSnapshot, Snapshot, VersionSnapshot
from kuberay.client import RayServiceClient
from kuberay.status import DEPLOYMENT_HEALTHY, ClusterStatus, RayService


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


def _app_doc(service: RayService, name: str) -> dict[str, Any] | None:
    for a in service.serve_config().get("applications") or []:
        if isinstance(a, dict) and a.get("name") == name:
            return a
    return None


def _num_replicas(app_doc: dict[str, Any] | None, deployment: str) -> int | None:
    for d in (app_doc or {}).get("deployments") or []:
        if isinstance(d, dict) and d.get("name") == deployment:
            n = d.get("num_replicas")
            return n if isinstance(n, int) and not isinstance(n, bool) else None
    return None


class RayServiceSource:
    """One Snapshot per call: application status, replicas and weights of a RayService."""

    def __init__(
        self,
        client: RayServiceClient,
        name: str,
        config: GovernorConfig,
        clock: Clock,
        serve_status: ServeStatusReader | None = None,
    ) -> None:
        self.client = client
        self.name = name
        self.config = config
        self.clock = clock
        self.serve_status = serve_status
        self.starts = ReplicaStartTracker()

    def observe(self) -> Snapshot:
        """Read the RayService (and Serve's status, if reachable); what fails stays missing."""
        now = self.clock.now()
        problems: list[str] = []
        service: RayService | None = None
        try:
            service = self.client.get(self.name)
            service.serve_config()
        except GovernorError as err:
            problems.append(f"rayservice: {err}")
            service = None
        serve: dict[str, Any] | None = None
        if self.serve_status is not None:
            try:
                serve = self.serve_status.get_applications()
                self.starts.observe(serve, now)
            except GovernorError as err:
                problems.append(f"serve status: {err}")
        apps = tuple(self._app(a, service, serve) for a in self.config.applications)
        cluster = cluster_snapshot(service.status.active) if service else ClusterSnapshot()
        return Snapshot(
            now=now,
            apps=apps,
            cluster=cluster,
            window_s=self.config.window_s,
            problems=tuple(problems),
        )

    def _app(
        self, app: AppConfig, service: RayService | None, serve: dict[str, Any] | None
    ) -> AppSnapshot:
        if service is None and serve is None:
            return AppSnapshot(
                name=app.name,
                versions=tuple(
                    VersionSnapshot(app.name, v.name, v.deployment) for v in app.versions
                ),
            )
        status = service.status.active.application(app.name) if service else None
        app_doc = _app_doc(service, app.name) if service else None
        serve_app = ((serve or {}).get("applications") or {}).get(app.name) if serve else None
        weights = None
        if serve_app is not None:
            weights = deployed_weights(
                serve_app.get("deployed_app_config") or {}, app.router_deployment
            )
        elif app_doc is not None:
            weights = deployed_weights(app_doc, app.router_deployment)
        versions = []
        for v in app.versions:
            running = starting = target = None
            if serve is not None:
                dep = ((serve_app or {}).get("deployments") or {}).get(v.deployment)
                if dep is not None:
                    running, starting = replica_counts(dep)
                    raw = dep.get("target_num_replicas")
                    target = int(raw) if isinstance(raw, int | float) else None
                else:
                    # Serve answered and the deployment is not there: it has no replicas.
                    running, starting, target = 0, 0, 0
            else:
                target = _num_replicas(app_doc, v.deployment)
                dep_status = status.deployment(v.deployment) if status else None
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
                    startup_s=self.starts.startup_s(app.name, v.deployment),
                )
            )
        app_status = status.status if status is not None else None
        if serve_app is not None:
            app_status = serve_app.get("status")
        return AppSnapshot(
            name=app.name, versions=tuple(versions), weights=weights, status=app_status
        )
