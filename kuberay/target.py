"""Builds the KubeRay target: the fleet's shards, leader election, actuator, state, signals."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import httpx
from kubernetes import client as k8s

from controller.clock import Clock
from controller.config import GovernorConfig
from controller.errors import ConfigError
from controller.signals.base import SignalSource
from controller.signals.commands import Inbox
from controller.signals.prometheus import PrometheusSource
from controller.state_store import StateStore
from controller.target import close_all
from kuberay.actuator import KubeRayActuator
from kuberay.client import RayServiceClient
from kuberay.configmaps import ConfigMapClient
from kuberay.connect import api_client
from kuberay.dashboards import Dashboards
from kuberay.inbox import ConfigMapInbox
from kuberay.leader import LeaderElector, default_identity
from kuberay.shards import RayServiceShards
from kuberay.signals import RayServiceSource
from kuberay.state_store import AnnotationMigration, ConfigMapStateStore


@dataclass
class ClusterTarget:
    """A target whose actuator and state writes run only while this daemon holds the Lease."""

    source: SignalSource
    actuator: KubeRayActuator
    store: StateStore
    inbox: Inbox
    closers: list[object] = field(default_factory=list)
    elector: LeaderElector | None = None

    def is_leader(self) -> bool:
        """Whether this daemon may act now; the first call joins the election."""
        if self.elector is None:
            return True
        self.elector.start()
        return self.elector.is_leader()

    def close(self) -> None:
        """Release the Lease, then the connections."""
        if self.elector is not None:
            self.elector.close()
        close_all(self.closers)


def build_kuberay_target(
    config: GovernorConfig,
    clock: Clock,
    config_path: str | Path | None = None,
    *,
    api: k8s.ApiClient | None = None,
    identity: str | None = None,
    dashboard_transport: httpx.BaseTransport | None = None,
    prometheus_transport: httpx.BaseTransport | None = None,
) -> ClusterTarget:
    """The target for `target: kuberay`; `api` and the transports are injectable for tests."""
    kr = config.kuberay
    if kr is None:
        raise ConfigError("target is kuberay but the kuberay section is missing")
    api = api if api is not None else api_client(kr.kubeconfig)
    client = RayServiceClient(
        k8s.CustomObjectsApi(api),
        kr.namespace,
        request_timeout_s=kr.request_timeout_s,
        sleep=clock.sleep,
    )
    shards = RayServiceShards.from_config(client, kr)
    elector = LeaderElector(
        k8s.CoordinationV1Api(api),
        kr.namespace,
        kr.lease_name,
        identity or default_identity(),
        clock,
        lease_duration_s=kr.lease_duration_s,
        renew_period_s=kr.renew_period_s,
        request_timeout_s=min(kr.request_timeout_s, kr.renew_period_s),
    )
    dashboards = None
    if kr.dashboard_url:
        dashboards = Dashboards(
            kr.dashboard_url, kr.request_timeout_s, transport=dashboard_transport
        )
    closers: list[object] = [api] if dashboards is None else [dashboards, api]
    source: SignalSource = RayServiceSource(
        shards, config, clock, dashboards.for_shard if dashboards else None
    )
    if config.signals.kind == "prometheus":
        # Latency, rates and errors from Prometheus; replicas and weights from the cluster.
        prometheus = PrometheusSource(
            config, clock, replicas_from=source, transport=prometheus_transport
        )
        closers.insert(0, prometheus)
        source = prometheus
    actuator = KubeRayActuator(
        client,
        shards,
        config,
        scaler=dashboards.for_shard if dashboards else None,
        max_serve_config_bytes=kr.max_serve_config_bytes,
    )
    configmaps = ConfigMapClient(
        k8s.CoreV1Api(api),
        kr.namespace,
        request_timeout_s=kr.request_timeout_s,
        sleep=clock.sleep,
    )
    store = ConfigMapStateStore(
        configmaps,
        (a.name for a in config.applications),
        clock,
        name=kr.state_configmap,
        max_bytes=kr.max_state_bytes,
        may_write=elector.is_leader,
        migration=AnnotationMigration(client, shards),
    )
    inbox = ConfigMapInbox(configmaps, kr.commands_configmap)
    return ClusterTarget(source, actuator, store, inbox, closers, elector=elector)
