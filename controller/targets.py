"""The local target: Ray's dashboard and metrics endpoints, a local state file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from controller.actuators.base import Actuator
from controller.actuators.local import LocalActuator
from controller.actuators.serve_config import check_serve_config_covers, load_serve_config
from controller.actuators.state_file import FileStateStore
from controller.clock import Clock
from controller.config import GovernorConfig
from controller.signals.base import SignalSource
from controller.signals.commands import CommandInbox, Inbox
from controller.signals.embedded import EmbeddedSource, http_metrics_reader
from controller.signals.prometheus import PrometheusSource
from controller.state_store import StateStore
from controller.target import Target, close_all
from controller.transports.ray_dashboard import RayDashboardClient

__all__ = ["LocalTarget", "Target", "build_local_target", "resolve_path"]


@dataclass
class LocalTarget:
    """A target with parts that need no election: the daemon always acts."""

    source: SignalSource
    actuator: Actuator
    store: StateStore
    inbox: Inbox
    closers: list[object] = field(default_factory=list)

    def is_leader(self) -> bool:
        """Always: one local daemon drives one local Ray."""
        return True

    def close(self) -> None:
        """Release connections."""
        close_all(self.closers)


def resolve_path(path: str, config_path: str | Path | None) -> Path:
    """A path from the config, relative to the working directory or else the config's folder."""
    p = Path(path)
    if p.is_absolute() or p.exists() or config_path is None:
        return p
    beside = Path(config_path).parent / p
    return beside if beside.exists() else p


def build_local_target(
    config: GovernorConfig, clock: Clock, config_path: str | Path | None = None
) -> LocalTarget:
    """The embedded default: Ray's dashboard and metrics endpoints, a local state file."""
    base = load_serve_config(resolve_path(config.local.serve_config, config_path))
    check_serve_config_covers(base, config)
    dashboard = RayDashboardClient(config.local.dashboard_url, config.local.request_timeout_s)
    source: SignalSource = EmbeddedSource(config, dashboard, http_metrics_reader(config), clock)
    if config.signals.kind == "prometheus":
        source = PrometheusSource(config, clock, replicas_from=source)
    actuator = LocalActuator(config, dashboard, base)
    store = FileStateStore(config.state_path)
    inbox = CommandInbox.beside_state(config.state_path)
    return LocalTarget(source, actuator, store, inbox, [source, dashboard])
