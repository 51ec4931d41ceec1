"""Typed views of a RayService object (`ray.io/v1`) and its status, parsed once at the edge."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import yaml

from controller.errors import PermanentError

READY = "Ready"
UPGRADE_IN_PROGRESS = "UpgradeInProgress"
APP_RUNNING = "RUNNING"
DEPLOYMENT_HEALTHY = "HEALTHY"

# libyaml parses a fleet-sized serveConfigV2 an order of magnitude faster than pure Python.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_serve_config(text: str | None, where: str) -> dict[str, Any]:
    """A `serveConfigV2` text parsed (empty when unset); PermanentError if not a YAML mapping."""
    if not text:
        return {}
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        raise PermanentError(f"{where}: spec.serveConfigV2 is not YAML: {err}") from err
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise PermanentError(f"{where}: spec.serveConfigV2 is not a mapping")
    return doc


@dataclass(frozen=True)
class Condition:
    """One entry of `status.conditions` (a metav1.Condition)."""

    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None

    @property
    def is_true(self) -> bool:
        """Whether the condition's status is "True"."""
        return self.status == "True"


@dataclass(frozen=True)
class DeploymentStatus:
    """A Serve deployment's status as KubeRay copies it from the dashboard."""

    name: str
    status: str | None
    message: str | None = None


@dataclass(frozen=True)
class ApplicationStatus:
    """A Serve application's status and its deployments' statuses."""

    name: str
    status: str | None
    message: str | None = None
    deployments: tuple[DeploymentStatus, ...] = ()

    def deployment(self, name: str) -> DeploymentStatus | None:
        """The status of deployment `name`, if KubeRay reported it."""
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, DeploymentStatus]:
        return {d.name: d for d in self.deployments}


@dataclass(frozen=True)
class ClusterStatus:
    """`activeServiceStatus` or `pendingServiceStatus`: one RayCluster and its Serve apps."""

    cluster_name: str | None = None
    applications: tuple[ApplicationStatus, ...] = ()
    cluster_state: str | None = None
    desired_cpu: str | None = None
    desired_gpu: str | None = None
    ready_worker_replicas: int | None = None
    target_capacity: int | None = None
    traffic_routed_percent: int | None = None

    @property
    def exists(self) -> bool:
        """Whether this slot names a RayCluster."""
        return bool(self.cluster_name)

    @property
    def serving(self) -> bool:
        """Whether the cluster exists and every application on it is RUNNING."""
        return (
            self.exists
            and bool(self.applications)
            and all(a.status == APP_RUNNING for a in self.applications)
        )

    def application(self, name: str) -> ApplicationStatus | None:
        """The status of application `name`, if KubeRay reported it."""
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, ApplicationStatus]:
        # One index per status read, so a fleet-sized status is not scanned per application.
        return {a.name: a for a in self.applications}


@dataclass(frozen=True)
class RayServiceStatus:
    """The parsed `status` of a RayService."""

    active: ClusterStatus = field(default_factory=ClusterStatus)
    pending: ClusterStatus = field(default_factory=ClusterStatus)
    conditions: tuple[Condition, ...] = ()
    service_status: str | None = None
    num_serve_endpoints: int | None = None
    observed_generation: int | None = None

    def condition(self, type_: str) -> Condition | None:
        """The condition of type `type_`, if present."""
        for c in self.conditions:
            if c.type == type_:
                return c
        return None

    @property
    def ready(self) -> bool:
        """The `Ready` condition is True."""
        c = self.condition(READY)
        return c is not None and c.is_true

    @property
    def upgrade_in_progress(self) -> bool:
        """The `UpgradeInProgress` condition is True (a zero-downtime upgrade is running)."""
        c = self.condition(UPGRADE_IN_PROGRESS)
        return c is not None and c.is_true


@dataclass(frozen=True)
class RayService:
    """A RayService as read from the API server: identity, the Serve config, status."""

    name: str
    namespace: str
    resource_version: str
    generation: int | None
    annotations: dict[str, str]
    serve_config_v2: str | None
    status: RayServiceStatus
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def serve_config(self) -> dict[str, Any]:
        """`spec.serveConfigV2` parsed (empty when unset); PermanentError if it is not YAML."""
        return parse_serve_config(self.serve_config_v2, f"rayservice {self.namespace}/{self.name}")


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_conditions(items: Any) -> tuple[Condition, ...]:
    """metav1.Condition entries, skipping malformed ones."""
    out = []
    for c in items if isinstance(items, list) else []:
        if isinstance(c, dict) and c.get("type") and c.get("status"):
            out.append(
                Condition(
                    type=str(c["type"]),
                    status=str(c["status"]),
                    reason=_str(c.get("reason")),
                    message=_str(c.get("message")),
                    last_transition_time=_str(c.get("lastTransitionTime")),
                )
            )
    return tuple(out)


def parse_cluster_status(doc: Any) -> ClusterStatus:
    """One `activeServiceStatus`/`pendingServiceStatus` block."""
    doc = _mapping(doc)
    apps = []
    for app_name, app in sorted(_mapping(doc.get("applicationStatuses")).items()):
        app = _mapping(app)
        deps = tuple(
            DeploymentStatus(dep_name, _str(d.get("status")), _str(d.get("message")))
            for dep_name, d in sorted(_mapping(app.get("serveDeploymentStatuses")).items())
            if isinstance(d, dict)
        )
        apps.append(
            ApplicationStatus(
                name=app_name,
                status=_str(app.get("status")),
                message=_str(app.get("message")),
                deployments=deps,
            )
        )
    cluster = _mapping(doc.get("rayClusterStatus"))
    return ClusterStatus(
        cluster_name=_str(doc.get("rayClusterName")) or None,
        applications=tuple(apps),
        cluster_state=_str(cluster.get("state")),
        desired_cpu=_str(cluster.get("desiredCPU")),
        desired_gpu=_str(cluster.get("desiredGPU")),
        ready_worker_replicas=_int(cluster.get("readyWorkerReplicas")),
        target_capacity=_int(doc.get("targetCapacity")),
        traffic_routed_percent=_int(doc.get("trafficRoutedPercent")),
    )


def parse_status(doc: Any) -> RayServiceStatus:
    """A RayService's `status` block."""
    doc = _mapping(doc)
    return RayServiceStatus(
        active=parse_cluster_status(doc.get("activeServiceStatus")),
        pending=parse_cluster_status(doc.get("pendingServiceStatus")),
        conditions=parse_conditions(doc.get("conditions")),
        service_status=_str(doc.get("serviceStatus")),
        num_serve_endpoints=_int(doc.get("numServeEndpoints")),
        observed_generation=_int(doc.get("observedGeneration")),
    )


def parse_rayservice(obj: Any) -> RayService:
    """A RayService object (as the API server returns it) into its typed view."""
    obj = _mapping(obj)
    meta = _mapping(obj.get("metadata"))
    spec = _mapping(obj.get("spec"))
    serve = spec.get("serveConfigV2")
    return RayService(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        resource_version=str(meta.get("resourceVersion", "")),
        generation=_int(meta.get("generation")),
        annotations={str(k): str(v) for k, v in _mapping(meta.get("annotations")).items()},
        serve_config_v2=serve if isinstance(serve, str) else None,
        status=parse_status(obj.get("status")),
        raw=obj,
    )
