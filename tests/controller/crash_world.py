"""A fleet under steady client load, and a daemon that can be killed at any point of a tick.

`CrashWorld` keeps what survives a process: the Serve applications (`FakeServe`), the
clients' counters as Ray would export them, the state file and the event log. Each
`daemon()` is a fresh process: a new signal source (no counter baselines), actuator and
store over the same files. `Faults` kills it (raises `Crash`, which no handler of the
daemon catches, like SIGKILL) at named points: the daemon's checkpoints and after every
write the actuator sends, once per point and per state of the world.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from controller.actuators.local import LocalActuator
from controller.actuators.serve_config import deployed_weights
from controller.actuators.state_file import FileStateStore
from controller.config import GovernorConfig, parse_config
from controller.daemon import Daemon
from controller.events import EventLog
from controller.signals.embedded import EmbeddedSource
from controller.transports.ray_dashboard import RayDashboardClient
from tests.controller.clock import ManualClock
from tests.controller.fake_serve import FakeServe
from tests.controller.fleet import BOUNDS_MS, lognormal_histogram
from tests.controller.sample_config import SERVE_CONFIG

APP = "embed"
VERSIONS = {"v1": "model_v1", "v2": "model_v2"}


class Crash(BaseException):
    """The daemon's process died at this point (nothing in the daemon catches it)."""


def canary_config(state_path: Path, **top: Any) -> GovernorConfig:
    """A canary of v2 against v1, scaled by a known capacity, under a total budget."""
    doc: dict[str, Any] = {
        "interval_s": 5,
        "window_s": 30,
        "state_path": str(state_path),
        "prices": {"cpu": 1.0},
        "budgets": {"total_per_hour": 8},
        "applications": [
            {
                "name": APP,
                "slo": {"latency_p95_ms": 200},
                "candidate": "v2",
                "scaling": {"capacity_rps_per_replica": 12},
                "rollout": {"steps": [10, 25, 50, 100], "step_min_duration_s": 30},
                "versions": [
                    {"name": "v1", "deployment": "model_v1", "min_replicas": 1, "max_replicas": 6},
                    {"name": "v2", "deployment": "model_v2", "min_replicas": 0, "max_replicas": 6},
                ],
            }
        ],
    }
    doc.update(top)
    return parse_config(doc)


@dataclass
class Clients:
    """Clients sending `rate` requests per second through the deployed router weights."""

    serve: FakeServe
    rate: float = 30.0
    median_ms: float = 60.0
    requests: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    errors: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    buckets: dict[str, list[float]] = field(default_factory=dict)
    failed: float = 0.0
    """Requests routed to a version with no running replica."""

    def weights(self) -> dict[str, int]:
        """The weights the deployed router uses."""
        doc = self.serve.apps[APP]["deployed_app_config"]
        return deployed_weights(doc, "router") or {}

    def running(self, version: str) -> int:
        """Running replicas of one version."""
        return len(self.serve.apps[APP]["deployments"][VERSIONS[version]]["replicas"])

    def send(self, seconds: float) -> None:
        """`seconds` of traffic split by the deployed weights."""
        for version, weight in self.weights().items():
            n = self.rate * seconds * weight / 100
            if n <= 0:
                continue
            if self.running(version) == 0:
                self.failed += n
                self.errors[version] += n
            hist = lognormal_histogram(n, self.median_ms)
            counts = self.buckets.setdefault(version, [0.0] * len(BOUNDS_MS))
            for i, c in enumerate(hist.counts):
                counts[i] += c
            self.requests[version] += n

    def exposition(self) -> list[str]:
        """The router's counters as Ray's metrics endpoint exports them."""
        lines = [
            "# TYPE ray_governor_requests_total counter",
            "# TYPE ray_governor_request_errors_total counter",
            "# TYPE ray_governor_request_latency_ms histogram",
        ]
        for v, n in self.requests.items():
            labels = f'application="{APP}",deployment="router",version="{v}"'
            lines.append(f"ray_governor_requests_total{{{labels}}} {n}")
            lines.append(f"ray_governor_request_errors_total{{{labels}}} {self.errors[v]}")
            for bound, count in zip(BOUNDS_MS, self.buckets[v], strict=True):
                le = "+Inf" if bound == float("inf") else str(bound)
                lines.append(
                    f'ray_governor_request_latency_ms_bucket{{application="{APP}",'
                    f'version="{v}",le="{le}"}} {count}'
                )
        return ["\n".join(lines) + "\n"]


@dataclass
class Faults:
    """Kills the daemon once at each named point of a tick, per state of the world."""

    world: Callable[[], tuple[Any, ...]]
    enabled: bool = True
    crashed: set[tuple[Any, ...]] = field(default_factory=set)
    crashes: list[str] = field(default_factory=list)
    writes_this_tick: int = 0
    before: tuple[Any, ...] = ()

    def begin_tick(self) -> None:
        """A tick starts from the world as it is now."""
        self.writes_this_tick = 0
        self.before = self.world()

    def point(self, name: str) -> None:
        """Crash here unless this point already crashed from this state of the world."""
        key = (self.before, name)
        if self.enabled and key not in self.crashed:
            self.crashed.add(key)
            self.crashes.append(name)
            raise Crash(name)

    def after_write(self, request: httpx.Request) -> None:
        """The point right after the actuator's n-th write of this tick."""
        self.writes_this_tick += 1
        what = request.url.path.rsplit("/", 2)[-2] if request.method == "POST" else "config"
        self.point(f"after write {self.writes_this_tick} ({request.method} {what})")


@dataclass
class CrashWorld:
    """What outlives the daemon's process, and how to start a new one."""

    tmp: Path
    config: GovernorConfig
    clock: ManualClock = field(default_factory=ManualClock)
    serve: FakeServe = field(default_factory=FakeServe)
    events: EventLog = field(default_factory=EventLog)
    faults: Faults | None = None
    clients: Clients = field(init=False)
    scale_calls: list[tuple[float, str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.serve._deploy(SERVE_CONFIG)
        self.clients = Clients(self.serve)
        self.events = EventLog(keep=100_000)
        self.started = self.clock.now()

    def _transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            response = self.serve._handle(request)
            if request.method == "POST":
                n = int(json_body(request)["target_num_replicas"])
                at = (self.clock.now() - self.started).total_seconds()
                self.scale_calls.append((at, request.url.path.split("/")[6], n))
            if request.method != "GET" and self.faults is not None:
                self.faults.after_write(request)
            return response

        return httpx.MockTransport(handle)

    def daemon(self) -> Daemon:
        """A freshly started daemon process over the surviving world."""
        client = RayDashboardClient("http://dash", transport=self._transport(), token="")
        source = EmbeddedSource(self.config, client, self.clients.exposition, self.clock)
        actuator = LocalActuator(self.config, client, SERVE_CONFIG)
        checkpoint = self.faults.point if self.faults is not None else (lambda point: None)
        return Daemon(
            self.config,
            source,
            actuator,
            FileStateStore(self.config.state_path),
            self.clock,
            events=self.events,
            checkpoint=checkpoint,
        )

    def saved_rollout(self) -> dict[str, Any]:
        """The rollout state as saved on disk."""
        saved = FileStateStore(self.config.state_path).load()
        return dict((saved.get("rollout") or {}).get("apps", {}).get(APP, {}))

    def replicas(self) -> dict[str, int]:
        """Target replicas per version as Serve has them."""
        deployments = self.serve.apps[APP]["deployments"]
        return {v: int(deployments[d]["target_num_replicas"]) for v, d in VERSIONS.items()}

    def advance(self, seconds: float) -> None:
        """Time passes and the clients keep sending."""
        self.clients.send(seconds)
        self.clock.advance(seconds)


def json_body(request: httpx.Request) -> dict[str, Any]:
    """The JSON body of a request the actuator sent."""
    import json

    return dict(json.loads(request.content))
