"""Builds the signal source, actuator and state store a config's target needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from controller.actuators.base import Actuator
from controller.actuators.local import LocalActuator
from controller.actuators.serve_config import check_serve_config_covers, load_serve_config
from controller.actuators.state_file import FileStateStore
from controller.clock import Clock
from controller.config import GovernorConfig
from controller.errors import ConfigError
from controller.signals.base import SignalSource
from controller.signals.embedded import EmbeddedSource, http_metrics_reader
from controller.state_store import StateStore
from controller.transports.ray_dashboard import RayDashboardClient


@dataclass
class Target:
    """Everything the daemon talks to; `close` releases what was opened."""

    source: SignalSource
    actuator: Actuator
    store: StateStore
    closers: list[object] = field(default_factory=list)

    def close(self) -> None:
        """Release connections."""
        for c in self.closers:
            close = getattr(c, "close", None)
            if callable(close):
                close()


def resolve_path(path: str, config_path: str | Path | None) -> Path:
    """A path from the config, relative to the working directory or else the config's folder."""
    p = Path(path)
    if p.is_absolute() or p.exists() or config_path is None:
        return p
    beside = Path(config_path).parent / p
    return beside if beside.exists() else p


def build_local_target(
    config: GovernorConfig, clock: Clock, config_path: str | Path | None = None
) -> Target:
    """The embedded default: Ray's dashboard and metrics endpoints, a local state file."""
    base = load_serve_config(resolve_path(config.local.serve_config, config_path))
    check_serve_config_covers(base, config)
    dashboard = RayDashboardClient(config.local.dashboard_url, config.local.request_timeout_s)
    source: SignalSource = EmbeddedSource(config, dashboard, http_metrics_reader(config), clock)
    if config.signals.kind == "prometheus":
        source = _prometheus_source(config, clock, source)
    actuator = LocalActuator(config, dashboard, base)
    return Target(source, actuator, FileStateStore(config.state_path), [source, dashboard])


def _prometheus_source(
    config: GovernorConfig, clock: Clock, replicas_from: SignalSource
) -> SignalSource:
    try:
        from controller.signals.prometheus import PrometheusSource
    except ImportError as err:
        raise ConfigError("signals.kind: prometheus is not available in this build") from err
    return PrometheusSource(config, clock, replicas_from=replicas_from)


def build_target(
    config: GovernorConfig, clock: Clock, config_path: str | Path | None = None
) -> Target:
    """The target the config names."""
    if config.target == "local":
        return build_local_target(config, clock, config_path)
    try:
        from kuberay.target import build_kuberay_target
    except ImportError as err:
        raise ConfigError("target: kuberay support is not available in this build") from err
    return build_kuberay_target(config, clock, config_path)
