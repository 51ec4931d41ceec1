"""The embedded signal source: Ray Serve's REST status API plus Ray's own metrics endpoints."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from controller.actuators.serve_config import deployed_weights
from controller.clock import Clock
from controller.config import AppConfig, GovernorConfig
from controller.errors import GovernorError
from controller.signals.counters import (
    CounterBaselines,
    DeploymentCounters,
    FleetCounters,
    VersionCounters,
    VersionWindow,
    increase,
    parse_expositions,
    version_window,
)
from controller.signals.replicas import ReplicaStartTracker, replica_counts
from controller.signals.window import CounterWindow, window_fields
from controller.snapshot import AppSnapshot, ClusterSnapshot, Snapshot, VersionSnapshot
from controller.transports.ray_dashboard import RayDashboardClient, fetch_text

MetricsReader = Callable[[], Sequence[str]]
"""Returns the Prometheus text of every metrics endpoint of the cluster."""
_NO_COUNTERS = VersionCounters()


def metrics_urls_from_service_discovery(path: str | Path) -> list[str]:
    """Metrics URLs listed in Ray's Prometheus file-SD document (empty if absent)."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return []
    urls = []
    for group in doc if isinstance(doc, list) else []:
        for target in group.get("targets", []):
            urls.append(f"http://{target}/metrics")
    return urls


def http_metrics_reader(config: GovernorConfig) -> MetricsReader:
    """Reads the configured metrics URLs, or those in Ray's service-discovery file."""

    def read() -> Sequence[str]:
        urls = config.local.metrics_urls or metrics_urls_from_service_discovery(
            config.local.service_discovery_file
        )
        if not urls:
            raise GovernorError(
                "no Ray metrics endpoint: set local.metrics_urls or start Ray with "
                f"--metrics-export-port (no targets in {config.local.service_discovery_file})"
            )
        return [fetch_text(u, config.local.request_timeout_s) for u in urls]

    return read


class EmbeddedSource:
    """Builds one Snapshot per call from the dashboard and Ray's metrics exporters."""

    def __init__(
        self,
        config: GovernorConfig,
        dashboard: RayDashboardClient,
        read_metrics: MetricsReader,
        clock: Clock,
    ) -> None:
        self.config = config
        self.dashboard = dashboard
        self.read_metrics = read_metrics
        self.clock = clock
        self.governed = frozenset(config.serve_apps)
        self.baselines = CounterBaselines(config.window_s)
        self.starts = ReplicaStartTracker()

    def use_config(self, config: GovernorConfig) -> None:
        """Observe the versions `config` lists from now on."""
        self.config = config
        self.governed = frozenset(config.serve_apps)

    def observe(self) -> Snapshot:
        """Read the world once; anything that could not be read is left missing, with a reason."""
        now = self.clock.now()
        problems: list[str] = []
        status: dict[str, Any] | None = None
        try:
            status = self.dashboard.get_applications()
        except GovernorError as err:
            problems.append(f"serve status: {err}")
        counters: FleetCounters | None = None
        try:
            counters = parse_expositions(self.read_metrics(), self.governed)
        except (GovernorError, ValueError) as err:
            problems.append(f"ray metrics: {err}")
        baseline = None
        if counters is not None:
            baseline = self.baselines.baseline(now)
            self.baselines.add(now, counters)
        if status is not None:
            self.starts.observe(status, now)
        apps = tuple(
            self._app(a, status, counters, baseline, now) for a in self.config.applications
        )
        return Snapshot(
            now=now,
            apps=apps,
            cluster=ClusterSnapshot(),
            window_s=self.config.window_s,
            problems=tuple(problems),
        )

    def _app(
        self,
        app: AppConfig,
        status: dict[str, Any] | None,
        counters: FleetCounters | None,
        baseline: tuple[datetime, FleetCounters] | None,
        now: datetime,
    ) -> AppSnapshot:
        serve_apps = (status or {}).get("applications", {}) if status else {}
        app_status = serve_apps.get(app.name) if status else None
        weights = None
        if app_status is not None:
            weights = deployed_weights(
                app_status.get("deployed_app_config") or {}, app.router_deployment
            )
        versions = []
        for v in app.versions:
            held_by = app.serve_app(v.name)
            held = serve_apps.get(held_by) if app_status is not None else None
            key = (held_by, v.deployment)
            window = None
            dep_now = dep_old = None
            if counters is not None and baseline is not None:
                seconds = (now - baseline[0]).total_seconds()
                old = baseline[1]
                window = version_window(
                    counters.versions.get((app.name, v.name), _NO_COUNTERS),
                    old.versions.get((app.name, v.name)),
                    seconds,
                )
                dep_now = counters.deployments.get(key)
                dep_old = old.deployments.get(key)
            elif counters is not None:
                dep_now = counters.deployments.get(key)
            versions.append(
                _version(
                    app.name,
                    v.name,
                    v.deployment,
                    ((held or {}).get("deployments") or {}).get(v.deployment)
                    if app_status is not None
                    else None,
                    status is not None,
                    window,
                    dep_now,
                    dep_old,
                    self.starts.startup_s(held_by, v.deployment),
                )
            )
        return AppSnapshot(
            name=app.name,
            versions=tuple(versions),
            weights=weights,
            status=(app_status or {}).get("status") if app_status else None,
        )


def _counter_window(
    window: VersionWindow, dep_now: DeploymentCounters | None, dep_old: DeploymentCounters | None
) -> CounterWindow:
    """The router's per-version counters joined with the model deployment's own."""
    if dep_now is None or dep_old is None:
        return CounterWindow(
            window.seconds,
            window.requests,
            window.errors,
            window.histogram,
            ttft=window.ttft,
            tpot=window.tpot,
            shed=window.shed,
        )
    return CounterWindow(
        seconds=window.seconds,
        requests=window.requests,
        errors=window.errors,
        latency=window.histogram,
        ttft=window.ttft,
        tpot=window.tpot,
        shed=window.shed,
        prompt_tokens=increase(dep_now.input_tokens, dep_old.input_tokens),
        output_tokens=increase(dep_now.output_tokens, dep_old.output_tokens),
        batches=increase(dep_now.batch_count, dep_old.batch_count),
        batched_inputs=increase(dep_now.batched_inputs, dep_old.batched_inputs),
    )


def _version(
    app: str,
    version: str,
    deployment: str,
    dep_status: dict[str, Any] | None,
    status_read: bool,
    window: VersionWindow | None,
    dep_now: DeploymentCounters | None,
    dep_old: DeploymentCounters | None,
    startup_s: float | None,
) -> VersionSnapshot:
    running = starting = target = None
    if dep_status is not None:
        running, starting = replica_counts(dep_status)
        raw_target = dep_status.get("target_num_replicas")
        target = int(raw_target) if isinstance(raw_target, int | float) else None
    elif status_read:
        # The status was read and the deployment is not there: it has no replicas.
        running, starting, target = 0, 0, 0
    fields: dict[str, Any] = {}
    if window is not None:
        fields = window_fields(_counter_window(window, dep_now, dep_old))
    if dep_now is not None:
        fields["queue_length"] = dep_now.ongoing
    return VersionSnapshot(
        app=app,
        version=version,
        deployment=deployment,
        running_replicas=running,
        starting_replicas=starting,
        target_replicas=target,
        startup_s=startup_s,
        **fields,
    )
